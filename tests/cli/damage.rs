//! Nothing the user has is ever damaged (issue 12): report folders replaced as one set,
//! outputs that would clobber inputs or devices refused or written in place.

use std::fs;

use crate::errors::{audit, setup};
use crate::support::*;

#[test]
fn a_folder_in_the_way_fails_the_audit_before_any_report_is_replaced() {
    let dir = setup();
    audit(&dir).success();
    fs::remove_file(dir.path().join("report/plan.csv")).unwrap();
    fs::create_dir(dir.path().join("report/plan.csv")).unwrap();
    fs::write(dir.path().join("report/plan.csv/keep.txt"), "mine").unwrap();
    // A different mapping: the new set would differ from the old one in every opt-out file.
    fs::write(dir.path().join("map.csv"), "number,customer\n").unwrap();
    let before = tree(&dir.path().join("report"));
    audit(&dir)
        .code(BAD_INPUT)
        .stderr(predicates::str::contains("a folder is in the way"));
    assert_eq!(tree(&dir.path().join("report")), before);
}

#[test]
fn a_new_audit_replaces_the_whole_set_and_leaves_no_staging_behind() {
    let dir = setup();
    audit(&dir).success();
    // A customer file of a customer that no longer moves must not linger.
    fs::write(
        dir.path().join("map.csv"),
        "number,customer\n+14155550101,Zeta\n",
    )
    .unwrap();
    audit(&dir).success();
    let mut names: Vec<String> = fs::read_dir(dir.path().join("report/optouts"))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    assert_eq!(names, ["Zeta.csv", "Zeta.suppression.csv"]);
    let hidden: Vec<_> = tree(dir.path())
        .into_keys()
        .filter(|p| p.to_string_lossy().contains("/.") || p.to_string_lossy().starts_with('.'))
        .collect();
    assert!(hidden.is_empty(), "{hidden:?}");
}

#[test]
fn a_failed_plan_leaves_no_folder_and_no_file() {
    let dir = setup();
    fs::write(
        dir.path().join("bad.csv"),
        "number,customer\nnot-a-number,Acme\n",
    )
    .unwrap();
    subaudit(dir.path())
        .args([
            "plan",
            "--snapshot",
            "snap",
            "--map",
            "bad.csv",
            "--out",
            "new/plans/plan.json",
        ])
        .assert()
        .code(BAD_INPUT);
    assert!(!dir.path().join("new").exists());
}

#[test]
fn a_plan_that_cannot_be_placed_keeps_the_previous_plan_files() {
    let dir = setup();
    let plan = |dir: &tempfile::TempDir| on_snap(dir.path(), "plan", "out/plan.json", &[]).assert();
    plan(&dir).success();
    fs::remove_file(dir.path().join("out/plan.sh")).unwrap();
    fs::create_dir(dir.path().join("out/plan.sh")).unwrap();
    fs::write(dir.path().join("map.csv"), "number,customer\n").unwrap();
    let before = tree(&dir.path().join("out"));
    plan(&dir).code(BAD_INPUT);
    assert_eq!(tree(&dir.path().join("out")), before);
}

#[cfg(unix)]
#[test]
fn a_device_output_is_written_in_place_never_replaced() {
    use std::os::unix::fs::FileTypeExt;
    let dir = setup();
    on_snap(dir.path(), "optouts", "/dev/null", &[])
        .assert()
        .success();
    run(
        dir.path(),
        &["usage", "--snapshot", "snap", "--out", "/dev/null"],
    )
    .success();
    let null = fs::metadata("/dev/null").unwrap().file_type();
    assert!(null.is_char_device(), "/dev/null is still a device");
    // The usage files that go beside --out are not written into /dev.
    assert!(!std::path::Path::new("/dev/usage_pivot.csv").exists());

    // A FIFO: the reader gets the CSV, the FIFO stays a FIFO.
    let fifo = dir.path().join("lost.fifo");
    assert!(std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .unwrap()
        .success());
    let reader = {
        let fifo = fifo.clone();
        std::thread::spawn(move || fs::read_to_string(fifo).unwrap())
    };
    on_snap(dir.path(), "optouts", "lost.fifo", &[])
        .assert()
        .success();
    let text = reader.join().unwrap();
    assert!(text.starts_with("end_user,twilio_number,"), "{text}");
    assert!(text.contains("+12065552001"), "{text}");
    assert!(fs::metadata(&fifo).unwrap().file_type().is_fifo());
}

/// A staged output given as a symlink stays a symlink, the file or folder it names gets the
/// new content: `plan`'s three files, `usage`'s four, a file and the `optouts/` folder of
/// `audit --out DIR` (a link to a file not there yet, a relative and an absolute link).
#[cfg(unix)]
#[test]
fn staged_outputs_given_as_symlinks_stay_links() {
    use std::os::unix::fs::symlink;
    let dir = setup();
    let at = |name: &str| dir.path().join(name);
    fs::create_dir(at("kept")).unwrap();
    fs::write(at("kept/plan.json"), "old").unwrap();
    let assert_links = |names: &[String]| {
        for name in names {
            let meta = fs::symlink_metadata(at(name)).unwrap();
            assert!(meta.file_type().is_symlink(), "{name} is no longer a link");
        }
    };
    let under = |dir: &str, names: &[&str]| -> Vec<String> {
        names.iter().map(|n| format!("{dir}/{n}")).collect()
    };

    fs::create_dir(at("out")).unwrap();
    for name in ["plan.json", "plan.csv", "plan.sh"] {
        symlink(format!("../kept/{name}"), at(&format!("out/{name}"))).unwrap();
    }
    on_snap(dir.path(), "plan", "out/plan.json", &[])
        .assert()
        .success();
    assert_links(&under("out", &["plan.json", "plan.csv", "plan.sh"]));
    let plan = read_json(&at("kept/plan.json"));
    assert!(plan["steps"].is_array(), "{plan}");
    assert!(fs::read_to_string(at("kept/plan.csv"))
        .unwrap()
        .starts_with("phone_number,"));
    assert!(fs::read_to_string(at("kept/plan.sh"))
        .unwrap()
        .starts_with("#!"));

    fs::create_dir(at("u")).unwrap();
    let usage_files = [
        "usage_summary.csv",
        "usage_pivot.csv",
        "usage_attribution.csv",
        "usage_straddling.csv",
    ];
    for name in usage_files {
        // Absolute links this time.
        symlink(at(&format!("kept/{name}")), at(&format!("u/{name}"))).unwrap();
    }
    run(
        dir.path(),
        &[
            "usage",
            "--snapshot",
            "snap",
            "--out",
            "u/usage_summary.csv",
        ],
    )
    .success();
    assert_links(&under("u", &usage_files));
    for name in usage_files {
        let text = fs::read_to_string(at(&format!("kept/{name}"))).unwrap();
        assert!(text.lines().count() >= 1, "{name}: {text:?}");
    }

    // audit: a report file, and the optouts/ folder as a link to a folder of the user's
    // holding a file of an earlier run (replaced whole, as without the link).
    fs::create_dir_all(at("kept/optouts")).unwrap();
    fs::write(at("kept/optouts/Gone.csv"), "old").unwrap();
    fs::create_dir(at("report")).unwrap();
    symlink("../kept/report-plan.csv", at("report/plan.csv")).unwrap();
    symlink("../kept/optouts", at("report/optouts")).unwrap();
    audit(&dir).success();
    assert_links(&under("report", &["plan.csv", "optouts"]));
    assert!(fs::read_to_string(at("kept/report-plan.csv"))
        .unwrap()
        .starts_with("phone_number,"));
    assert!(!at("kept/optouts/Gone.csv").exists());
    assert!(at("kept/optouts/Acme.csv").is_file());
    // Nothing of the staging is left beside the named files.
    let hidden: Vec<String> = fs::read_dir(at("kept"))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n.starts_with('.'))
        .collect();
    assert!(hidden.is_empty(), "{hidden:?}");
}

#[test]
fn an_output_that_is_an_input_or_inside_the_snapshot_is_refused() {
    let dir = setup();
    let before = tree(dir.path());
    for args in [
        &[
            "usage",
            "--snapshot",
            "snap",
            "--out",
            "snap/usage_records.jsonl",
        ][..],
        &["usage", "--snapshot", "snap", "--out", "snap/new.csv"],
        &["map", "--snapshot", "snap", "--out", "snap/manifest.json"],
        &[
            "optouts",
            "--snapshot",
            "snap",
            "--map",
            "map.csv",
            "--out",
            "map.csv",
        ],
        // Another spelling of the same file.
        &[
            "optouts",
            "--snapshot",
            "snap",
            "--map",
            "map.csv",
            "--out",
            "snap/../map.csv",
        ],
        &[
            "optouts",
            "--snapshot",
            "snap",
            "--map",
            "map.csv",
            "--possible",
            "map.csv",
        ],
        &["optouts", "--snapshot", "snap", "--per-customer", "snap"],
        &["audit", "--snapshot", "snap", "--out", "snap"],
        &["audit", "--snapshot", "snap", "--out", "snap/reports"],
        &[
            "plan",
            "--snapshot",
            "snap",
            "--map",
            "map.csv",
            "--out",
            "map.json",
        ],
    ] {
        run(dir.path(), args)
            .code(BAD_INPUT)
            .stderr(predicates::str::contains("this output would replace"));
        assert_eq!(tree(dir.path()), before, "{args:?}");
    }
    // The snapshot folder itself, for a command whose --out is a file.
    run(
        dir.path(),
        &["usage", "--snapshot", "snap", "--out", "snap"],
    )
    .code(BAD_INPUT);
    assert_eq!(tree(dir.path()), before);
}

#[test]
fn a_long_customer_name_gets_a_short_stable_file_name() {
    let dir = setup();
    let long = format!(
        "Stork Veterinary Clinics {}",
        "of the Greater Metropolitan Area ".repeat(9)
    );
    assert!(long.len() > 300);
    fs::write(
        dir.path().join("map.csv"),
        format!("number,customer\n+14155550101,{long}\n"),
    )
    .unwrap();
    audit(&dir).success();
    let mut names: Vec<String> = fs::read_dir(dir.path().join("report/optouts"))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    assert_eq!(names.len(), 2, "the opt-out file and the suppression list");
    assert_eq!(
        names[1],
        format!("{}.suppression.csv", names[0].trim_end_matches(".csv"))
    );
    assert!(
        names[0].starts_with("Stork_Veterinary_Clinics_of_the_Greater"),
        "{names:?}"
    );
    assert!(names[0].len() <= 104, "{names:?}");
    // The same name on the next run: the same file.
    audit(&dir).success();
    assert!(dir.path().join("report/optouts").join(&names[0]).is_file());
}

#[test]
fn a_customer_name_with_a_control_character_is_refused_with_its_line() {
    let dir = setup();
    fs::write(
        dir.path().join("map.csv"),
        "number,customer\n+14155550101,Stork\u{1b}[2JVets\n",
    )
    .unwrap();
    audit(&dir)
        .code(BAD_INPUT)
        .stderr(predicates::str::contains("map.csv:2: customer"))
        .stderr(predicates::str::contains("control character"));
    assert_nothing_written(&dir.path().join("report"));
}

/// The setup's snapshot with the STOP's `direction` replaced (None removes it).
fn with_stop_direction(direction: Option<&str>) -> tempfile::TempDir {
    let dir = setup();
    let path = dir.path().join("snap/messages.jsonl");
    let text = fs::read_to_string(&path).unwrap();
    let mut lines: Vec<serde_json::Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let stop = lines.iter_mut().find(|m| m["body"] == "STOP").unwrap();
    match direction {
        Some(d) => stop["direction"] = serde_json::json!(d),
        None => {
            stop.as_object_mut().unwrap().remove("direction");
        }
    }
    let text: String = lines.iter().map(|l| format!("{l}\n")).collect();
    fs::write(&path, text).unwrap();
    dir
}

#[test]
fn a_message_without_a_valid_direction_is_refused_with_file_and_line() {
    for (direction, want) in [
        (None, "has no \"direction\""),
        (
            Some("Inbound"),
            "\"direction\" \"Inbound\" is not one of Twilio's values",
        ),
        (Some("incoming"), "\"direction\" \"incoming\""),
    ] {
        let dir = with_stop_direction(direction);
        audit(&dir)
            .code(BAD_INPUT)
            .stderr(predicates::str::contains("messages.jsonl:1: "))
            .stderr(predicates::str::contains(want));
        assert_nothing_written(&dir.path().join("report"));
    }
}

#[test]
fn an_unclosed_quote_in_the_mapping_is_refused_with_its_line() {
    let dir = setup();
    fs::write(
        dir.path().join("map.csv"),
        "number,customer\n\n+14155550101,\"Stork Vets,\n",
    )
    .unwrap();
    audit(&dir)
        .code(BAD_INPUT)
        .stderr(predicates::str::contains(
            "map.csv:3: the quoted field at column 14 is not closed",
        ));
    fs::write(
        dir.path().join("map.csv"),
        "number,customer\n+14155550101,\"Stork\nVets\"\n",
    )
    .unwrap();
    audit(&dir)
        .code(BAD_INPUT)
        .stderr(predicates::str::contains("map.csv:2: the quoted field"));
    assert_nothing_written(&dir.path().join("report"));
}

#[test]
fn a_region_or_edge_that_is_not_a_host_label_is_refused() {
    let dir = setup();
    for (flag, value) in [
        ("--region", "a b"),
        ("--region", "x.example/#"),
        ("--edge", "evil.example:443/"),
    ] {
        subaudit(dir.path())
            .env("TWILIO_ACCOUNT_SID", PARENT)
            .env("TWILIO_AUTH_TOKEN", "not-a-real-token")
            .args(["pull", "--out", "pulled", flag, value])
            .assert()
            .code(BAD_INPUT)
            .stderr(predicates::str::contains(
                "must be letters, digits and '-' only",
            ));
    }
    assert_nothing_written(&dir.path().join("pulled"));
}

#[test]
fn a_closed_stdout_is_a_quiet_successful_end() {
    use std::io::{BufRead, BufReader};
    use std::process::{Command, Stdio};
    let mut child = Command::new(env!("CARGO_BIN_EXE_subaudit"))
        .current_dir(repo_root())
        .args(["optouts", "--all", "--out", "-"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut first = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut first)
        .unwrap();
    // The reader is gone (`| head -1`); the CSV is far larger than a pipe's buffer.
    let out = child.wait_with_output().unwrap();
    assert!(first.starts_with("end_user,"), "{first}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(OK), "{stderr}");
    assert!(
        !stderr.contains("Broken pipe") && !stderr.contains("error"),
        "{stderr}"
    );
}

/// `plan`'s files given as links to files on another file system (`/dev/shm`, a tmpfs, where
/// the machine has one apart from the temporary folder): each file is copied beside the file
/// its link names, replaces it there, and the link stays a link; nothing of the staging is
/// left on either side. Where `/dev/shm` shares the temporary folder's file system the test
/// says so and checks the same through a second folder. (A move that fails halfway is checked
/// by output.rs's unit tests, on the same file system and on `/dev/shm`.)
#[cfg(unix)]
#[test]
fn plan_files_linked_to_another_file_system_are_replaced_through_their_links() {
    use std::os::unix::fs::{symlink, MetadataExt};
    let dir = setup();
    let shm = std::path::Path::new("/dev/shm");
    let device = |p: &std::path::Path| fs::metadata(p).map(|m| m.dev()).ok();
    let elsewhere = if device(shm).is_some() && device(shm) != device(dir.path()) {
        tempfile::tempdir_in(shm).unwrap()
    } else {
        eprintln!("note: /dev/shm is missing or on the test folder's file system: the copy across file systems is not exercised");
        tempfile::tempdir().unwrap()
    };
    let names = ["plan.json", "plan.csv", "plan.sh"];
    fs::create_dir(dir.path().join("out")).unwrap();
    for name in names {
        fs::write(elsewhere.path().join(name), "old").unwrap();
        symlink(
            elsewhere.path().join(name),
            dir.path().join("out").join(name),
        )
        .unwrap();
    }
    on_snap(dir.path(), "plan", "out/plan.json", &[])
        .assert()
        .success();
    for name in names {
        let link = fs::symlink_metadata(dir.path().join("out").join(name)).unwrap();
        assert!(link.file_type().is_symlink(), "{name} is no longer a link");
        let text = fs::read_to_string(elsewhere.path().join(name)).unwrap();
        assert_ne!(text, "old", "{name} was not replaced");
    }
    let plan = read_json(&elsewhere.path().join("plan.json"));
    assert!(plan["steps"].is_array(), "{plan}");
    let mut left: Vec<String> = fs::read_dir(elsewhere.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    left.sort();
    assert_eq!(left, ["plan.csv", "plan.json", "plan.sh"]);
    let hidden: Vec<String> = fs::read_dir(dir.path().join("out"))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n.starts_with('.'))
        .collect();
    assert!(hidden.is_empty(), "{hidden:?}");
}
