//! `subaudit map`: the proposed mapping, and its way back in through `--map`.

use serde_json::json;

use crate::support::*;

#[test]
fn sample_proposal_matches_customers_and_round_trips_through_plan() {
    let dir = tempfile::tempdir().unwrap();
    let sample = repo_root().join("sample-data/owlie");
    let out = subaudit(dir.path())
        .args(["map", "--snapshot"])
        .arg(&sample)
        .args(["--out", "proposed.csv"])
        .assert()
        .success();
    let stdout = String::from_utf8_lossy(&out.get_output().stdout).to_string();
    assert!(
        stdout.contains("103 of 120 numbers matched to 50 customers"),
        "{stdout}"
    );
    let text = std::fs::read_to_string(dir.path().join("proposed.csv")).unwrap();
    insta::assert_snapshot!("sample_mapping_proposed", text);

    let rows = read_csv_skipping_comments(&dir.path().join("proposed.csv"));
    assert_eq!(
        rows[0],
        [
            "number",
            "customer",
            "subaccount_sid",
            "number_sid",
            "friendly_name",
            "reason",
            "confidence"
        ]
    );
    // Falcon Flights has a subaccount: matched by name, its sid filled in.
    let falcon = rows.iter().find(|r| r[0] == "+14155550100").unwrap();
    assert_eq!(falcon[1], "Falcon Flights");
    assert_eq!(falcon[2], "ACe549fa4eacf5327750ad35472f7777b2");
    assert_eq!(falcon[6], "high");
    // A customer without a subaccount, found from a webhook slug and a host on two numbers.
    let condor: Vec<_> = rows.iter().filter(|r| r[1] == "Condor Storage").collect();
    assert_eq!(condor.len(), 2);
    assert!(condor.iter().all(|r| r[2].is_empty()));
    // The closed subaccount is proposed, with a warning in the reason.
    let magpie = rows.iter().find(|r| r[1] == "Magpie Media").unwrap();
    assert!(magpie[5].contains("which is closed"), "{}", magpie[5]);
    // Owlie's own lines are unmatched comment lines.
    assert!(text.contains("# +14155550210,,,"), "{text}");

    // Back in through --map: every proposed number is planned for its customer.
    subaudit(dir.path())
        .args(["plan", "--snapshot"])
        .arg(&sample)
        .args(["--map", "proposed.csv", "--out", "plan.json"])
        .assert()
        .success();
    let plan = read_json(&dir.path().join("plan.json"));
    assert_eq!(plan["summary"]["transfer"], 103);
    assert_eq!(plan["summary"]["stay"], 17);
    let n = plan["numbers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|n| n["phone_number"] == "+14155550100")
        .unwrap();
    assert_eq!(
        n["target_account_sid"],
        "ACe549fa4eacf5327750ad35472f7777b2"
    );
}

/// The CSV rows of a file, comment lines left out (as the mapping reader does).
fn read_csv_skipping_comments(path: &std::path::Path) -> Vec<Vec<String>> {
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .comment(Some(b'#'))
        .from_path(path)
        .unwrap();
    reader
        .records()
        .map(|r| r.unwrap().iter().map(str::to_string).collect())
        .collect()
}

#[test]
fn hand_made_clues_agree_and_unmatched_numbers_stay_out_of_the_mapping() {
    let dir = tempfile::tempdir().unwrap();
    let mut b = SnapshotBuilder::default();
    b.accounts.push(account(
        &sid("AC", 1),
        "Heron Health",
        "active",
        Some(PARENT),
    ));
    let mut records = Vec::new();
    for (n, name, sms) in [
        (1, "Heron Health - alerts", ""),
        (
            2,
            "(415) 555-0002",
            "https://hooks.owlie.io/sms/heron-health",
        ),
        (
            3,
            "owlie-falcon-flights-1",
            "https://falconflights.example.com/twilio/sms",
        ),
        (
            4,
            "(415) 555-0004",
            "https://falconflights.example.com/twilio/sms",
        ),
        (
            5,
            "Owlie support line",
            "https://hooks.owlie.io/sms/inbound",
        ),
        (6, "Lonely Llama, Inc", ""),
    ] {
        let mut r = number(&sid("PN", n), &format!("+1415555{n:04}"));
        r["friendly_name"] = json!(name);
        r["sms_url"] = json!(sms);
        records.push(r);
    }
    b.numbers = records;
    b.write(&dir.path().join("snap"));
    subaudit(dir.path())
        .args(["map", "--snapshot", "snap", "--out", "proposed.csv"])
        .assert()
        .success();
    let text = std::fs::read_to_string(dir.path().join("proposed.csv")).unwrap();
    let rows = read_csv_skipping_comments(&dir.path().join("proposed.csv"));
    let row = |phone: &str| rows.iter().find(|r| r[0] == phone).cloned();
    let r1 = row("+14155550001").unwrap();
    assert_eq!(
        (r1[1].as_str(), r1[2].as_str(), r1[6].as_str()),
        ("Heron Health", sid("AC", 1).as_str(), "high")
    );
    let r2 = row("+14155550002").unwrap();
    assert_eq!((r2[1].as_str(), r2[6].as_str()), ("Heron Health", "high"));
    // The friendly name's spelling names the customer the host only hints at.
    let r3 = row("+14155550003").unwrap();
    assert_eq!(
        (r3[1].as_str(), r3[2].as_str(), r3[6].as_str()),
        ("Falcon Flights", "", "high")
    );
    let r4 = row("+14155550004").unwrap();
    assert_eq!(
        (r4[1].as_str(), r4[6].as_str()),
        ("Falcon Flights", "medium")
    );
    assert!(
        r4[5].contains("sms_url host falconflights.example.com"),
        "{}",
        r4[5]
    );
    // A one-off name is proposed, with low confidence.
    let r6 = row("+14155550006").unwrap();
    assert_eq!(
        (r6[1].as_str(), r6[6].as_str()),
        ("Lonely Llama Inc", "low")
    );
    assert!(row("+14155550005").is_none());
    assert!(text.contains("\n# +14155550005,,,"), "{text}");

    // The proposal is a valid mapping; its unmatched line, uncommented, is refused until a
    // customer is filled in.
    subaudit(dir.path())
        .args([
            "plan",
            "--snapshot",
            "snap",
            "--map",
            "proposed.csv",
            "--out",
            "plan.json",
        ])
        .assert()
        .success();
    let uncommented = text.replace("\n# +14155550005", "\n+14155550005");
    std::fs::write(dir.path().join("edited.csv"), uncommented).unwrap();
    let out = subaudit(dir.path())
        .args([
            "plan",
            "--snapshot",
            "snap",
            "--map",
            "edited.csv",
            "--out",
            "plan2.json",
        ])
        .assert()
        .code(BAD_INPUT);
    let stderr = String::from_utf8_lossy(&out.get_output().stderr).to_string();
    assert!(stderr.contains("customer is empty"), "{stderr}");
}
