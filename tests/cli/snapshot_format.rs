//! The snapshot format as docs/snapshot-format.md documents it, written by hand.

use std::fs;

use predicates::str::contains;
use tempfile::TempDir;

use crate::support::*;

/// A manifest with only what has no default: the parent, the window, and a count per
/// resource whose data sits in `<resource>.jsonl`.
#[test]
fn a_minimal_hand_written_manifest_is_enough() {
    let dir = TempDir::new().unwrap();
    let snap = dir.path().join("snap");
    fs::create_dir_all(&snap).unwrap();
    let line = |v: serde_json::Value| v.to_string() + "\n";
    fs::write(
        snap.join("accounts.jsonl"),
        line(account(PARENT, "Owlie", "active", None)),
    )
    .unwrap();
    fs::write(
        snap.join("incoming_phone_numbers.jsonl"),
        line(number(&sid("PN", 1), "+14155550101")),
    )
    .unwrap();
    fs::write(
        snap.join("messages.jsonl"),
        line(
            Msg {
                sid: &sid("SM", 1),
                direction: "inbound",
                from: "+12065552001",
                to: "+14155550101",
                body: Some("STOP"),
                date_sent: &jan(2, 3, 4, 5),
                ..Msg::default()
            }
            .json(),
        ),
    )
    .unwrap();
    // The other resources have no file at all: a count of 0 (or no entry fields) is enough.
    fs::write(
        snap.join("manifest.json"),
        format!(
            r#"{{"parent_account_sid": "{PARENT}",
                "window": {{"since": "2025-12-01T00:00:00Z", "until": "2026-02-01T00:00:00Z"}},
                "resources": {{"accounts": {{"count": 1}}, "incoming_phone_numbers": {{"count": 1}},
                  "messaging_services": {{}}, "messaging_service_phone_numbers": {{}},
                  "a2p_campaigns": {{}}, "messages": {{"count": 1}}, "usage_records": {{}}}}}}"#
        ),
    )
    .unwrap();
    fs::write(
        dir.path().join("map.csv"),
        "number,customer\n+14155550101,Acme\n",
    )
    .unwrap();
    subaudit(dir.path())
        .args(["optouts", "--snapshot", "snap", "--map", "map.csv"])
        .assert()
        .success()
        .stdout(contains(format!(
            "+12065552001,+14155550101,{},number,,2026-01-02T03:04:05Z,STOP,inbound-keyword,{},Acme,",
            sid("PN", 1),
            sid("SM", 1)
        )));
    // A count that the file does not hold is still caught.
    let manifest = fs::read_to_string(snap.join("manifest.json")).unwrap();
    fs::write(
        snap.join("manifest.json"),
        manifest.replace(r#""messages": {"count": 1}"#, r#""messages": {"count": 2}"#),
    )
    .unwrap();
    subaudit(dir.path())
        .args(["optouts", "--snapshot", "snap"])
        .assert()
        .code(BAD_INPUT)
        .stderr(contains(
            "messages.jsonl: holds 1 messages records but manifest.json says 2",
        ));
}
