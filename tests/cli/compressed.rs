//! Compressed snapshots: `sample --compress` and `pull --compress` write `messages.jsonl.zst`,
//! and every command reads it as it reads the plain file (docs/snapshot-format.md).

use std::path::Path;

use predicates::prelude::PredicateBooleanExt;
use predicates::str::contains;
use serde_json::Value;

use crate::support::*;

const TOKEN: &str = "sim-parent-token-zstd";

/// The generated sample (6,000 messages) in `dir/snap`, compressed or not.
fn sample(dir: &Path, compress: bool) {
    std::fs::create_dir_all(dir).unwrap();
    let mut args = vec!["sample", "--out", "snap"];
    if compress {
        args.push("--compress");
    }
    run(dir, &args).success();
}

/// `audit` of `dir/snap` with its mapping into `dir/report`: every output file with its bytes.
fn audit(dir: &Path) -> std::collections::BTreeMap<std::path::PathBuf, Vec<u8>> {
    run(
        dir,
        &[
            "audit",
            "--snapshot",
            "snap",
            "--map",
            "snap/mapping.csv",
            "--out",
            "report",
        ],
    )
    .success();
    tree(&dir.join("report"))
}

#[test]
fn a_compressed_snapshot_gives_the_same_outputs_as_the_plain_one() {
    let tmp = tempfile::tempdir().unwrap();
    let (plain, packed) = (tmp.path().join("plain"), tmp.path().join("packed"));
    sample(&plain, false);
    sample(&packed, true);
    let zst = packed.join("snap/messages.jsonl.zst");
    assert!(!packed.join("snap/messages.jsonl").exists());
    let manifest: Value = read_json(&packed.join("snap/manifest.json"));
    assert_eq!(
        manifest["resources"]["messages"]["files"][0]["path"],
        "messages.jsonl.zst"
    );
    let plain_size = std::fs::metadata(plain.join("snap/messages.jsonl"))
        .unwrap()
        .len();
    let packed_size = std::fs::metadata(&zst).unwrap().len();
    assert!(
        packed_size * 5 < plain_size,
        "{packed_size} of {plain_size}"
    );
    let (a, b) = (audit(&plain), audit(&packed));
    assert!(a.len() > 5, "{:?}", a.keys());
    assert_eq!(a.keys().collect::<Vec<_>>(), b.keys().collect::<Vec<_>>());
    for (name, bytes) in &a {
        assert!(bytes == &b[name], "{} differs", name.display());
    }
}

#[test]
fn a_damaged_compressed_file_is_an_error_naming_it_and_nothing_is_written() {
    let tmp = tempfile::tempdir().unwrap();
    sample(tmp.path(), true);
    let zst = tmp.path().join("snap/messages.jsonl.zst");
    let bytes = std::fs::read(&zst).unwrap();
    std::fs::write(&zst, &bytes[..bytes.len() * 2 / 3]).unwrap();
    run(
        tmp.path(),
        &[
            "optouts",
            "--snapshot",
            "snap",
            "--all",
            "--out",
            "out/optouts.csv",
        ],
    )
    .code(BAD_INPUT)
    .stderr(contains("messages.jsonl.zst").and(contains("not a valid zstd file")));
    assert_nothing_written(&tmp.path().join("out"));
}

#[test]
fn a_plain_and_a_compressed_file_side_by_side_are_refused_as_ambiguous() {
    let tmp = tempfile::tempdir().unwrap();
    sample(&tmp.path().join("plain"), false);
    sample(tmp.path(), true);
    std::fs::copy(
        tmp.path().join("plain/snap/messages.jsonl"),
        tmp.path().join("snap/messages.jsonl"),
    )
    .unwrap();
    run(
        tmp.path(),
        &[
            "optouts",
            "--snapshot",
            "snap",
            "--all",
            "--out",
            "out/optouts.csv",
        ],
    )
    .code(BAD_INPUT)
    .stderr(contains("both exist").and(contains("ambiguous")));
    assert_nothing_written(&tmp.path().join("out"));
    // Compressing the plain file by hand (what `zstd --rm` leaves) reads as the manifest's.
    std::fs::remove_file(tmp.path().join("snap/messages.jsonl.zst")).unwrap();
    let plain_manifest = tmp.path().join("plain/snap/manifest.json");
    std::fs::copy(&plain_manifest, tmp.path().join("snap/manifest.json")).unwrap();
    run(tmp.path(), &["optouts", "--snapshot", "snap", "--all"]).success();
}

#[test]
fn the_twin_serves_a_compressed_snapshot_and_pull_compress_writes_one() {
    let tmp = tempfile::tempdir().unwrap();
    sample(&tmp.path().join("plain"), false);
    sample(tmp.path(), true);
    let manifest: Value = serde_json::from_str(
        &std::fs::read_to_string(tmp.path().join("snap/manifest.json")).unwrap(),
    )
    .unwrap();
    let parent = manifest["parent_account_sid"].as_str().unwrap().to_string();
    let day = |k: &str| manifest["window"][k].as_str().unwrap()[..10].to_string();
    let (mut child, url) = spawn_twilio_sim(&tmp.path().join("snap"), &parent, TOKEN, &[]);
    let pulled = subaudit(tmp.path())
        .args(["pull", "--out", "pulled", "--compress", "--quiet"])
        .args(["--since", &day("since"), "--until", &day("until")])
        .env_remove("TWILIO_API_KEY")
        .env_remove("TWILIO_API_SECRET")
        .env_remove("TWILIO_REGION")
        .env_remove("TWILIO_EDGE")
        .env("TWILIO_ACCOUNT_SID", &parent)
        .env("TWILIO_AUTH_TOKEN", TOKEN)
        .env("SUBAUDIT_TWILIO_BASE_URL", &url)
        .assert();
    let _ = child.kill();
    let _ = child.wait();
    pulled.success();
    let manifest: Value = serde_json::from_str(
        &std::fs::read_to_string(tmp.path().join("pulled/manifest.json")).unwrap(),
    )
    .unwrap();
    let files = manifest["resources"]["messages"]["files"]
        .as_array()
        .unwrap();
    assert!(!files.is_empty());
    for file in files {
        let path = file["path"].as_str().unwrap();
        assert!(path.ends_with(".jsonl.zst"), "{path}");
        assert!(tmp.path().join("pulled").join(path).is_file());
    }
    // The small resources stay plain.
    assert!(tmp.path().join("pulled/accounts.jsonl").is_file());
    let optouts = |snapshot: &str| {
        let out = run(
            tmp.path(),
            &[
                "optouts",
                "--snapshot",
                snapshot,
                "--map",
                "snap/mapping.csv",
            ],
        )
        .success();
        out.get_output().stdout.clone()
    };
    let from_plain = optouts("plain/snap");
    assert!(from_plain.len() > 1000);
    assert!(from_plain == optouts("pulled"));
}
