//! docs/opt-out-rule.md's opt-out rule, end to end through `subaudit optouts` and `subaudit audit`, on
//! hand-made snapshots whose every expected row is written out here.

use std::fs;

use predicates::prelude::*;
use predicates::str::contains;
use serde_json::json;
use tempfile::TempDir;

use crate::support::*;

const N1: &str = "+14155550101";
const N2: &str = "+14155550102";
const U1: &str = "+12065552001";
const U2: &str = "+12065552002";
const HEADER: &str = "end_user,twilio_number,twilio_number_sid,scope,messaging_service_sid,opted_out_at,keyword,evidence,evidence_message_sid,target_customer,target_account_sid\n";

fn pn(n: u64) -> String {
    sid("PN", n)
}
fn sm(n: u64) -> String {
    sid("SM", n)
}
fn mg(n: u64) -> String {
    sid("MG", n)
}

fn inbound(
    n: u64,
    from: &str,
    to: &str,
    body: &str,
    day: u32,
    service: Option<&str>,
) -> serde_json::Value {
    Msg {
        sid: &sm(n),
        direction: "inbound",
        from,
        to,
        body: Some(body),
        date_sent: &jan(day, 12, 0, 0),
        service,
        ..Msg::default()
    }
    .json()
}

/// Two numbers of the parent, N1 (pn 1) and N2 (pn 2).
fn two_numbers() -> SnapshotBuilder {
    let mut b = SnapshotBuilder::default();
    b.numbers.push(number(&pn(1), N1));
    b.numbers.push(number(&pn(2), N2));
    b
}

/// A folder holding the snapshot (`snap`) and the mapping (`map.csv`), as `on_snap` reads them.
fn lay_out(b: &SnapshotBuilder, mapping: &str) -> TempDir {
    let dir = TempDir::new().unwrap();
    b.write(&dir.path().join("snap"));
    fs::write(dir.path().join("map.csv"), mapping).unwrap();
    dir
}

/// The two numbers, and U1's STOP on N1.
fn one_stop() -> SnapshotBuilder {
    let mut b = two_numbers();
    b.messages.push(inbound(1, U1, N1, "STOP", 2, None));
    b
}

/// Writes the snapshot and a mapping, runs `subaudit optouts`, returns the CSV text.
fn lost_csv(b: &SnapshotBuilder, mapping: &str, extra: &[&str]) -> String {
    let dir = lay_out(b, mapping);
    on_snap(dir.path(), "optouts", "lost.csv", &[])
        .args(extra)
        .assert()
        .success();
    fs::read_to_string(dir.path().join("lost.csv")).unwrap()
}

#[allow(clippy::too_many_arguments)] // to become a struct literal (issue 12)
fn row(
    user: &str,
    number: &str,
    pn_sid: &str,
    scope: &str,
    service: &str,
    at: &str,
    keyword: &str,
    evidence: &str,
    sm_sid: &str,
    customer: &str,
) -> String {
    format!("{user},{number},{pn_sid},{scope},{service},{at},{keyword},{evidence},{sm_sid},{customer},\n")
}

const MAP_BOTH_TO_ACME: &str =
    "number,customer,subaccount_sid\n+14155550101,Acme,\n+14155550102,Acme,\n";

#[test]
fn a_whole_body_keyword_in_any_case_or_padding_opts_out_and_moves_with_the_number() {
    let mut b = two_numbers();
    b.messages.push(inbound(1, U1, N1, "  sToP \n", 2, None));
    b.messages.push(inbound(2, U2, N1, "Stop please", 3, None)); // near miss: review only
    b.messages.push(inbound(3, U2, N2, "unsubscribe", 4, None));
    let csv = lost_csv(&b, MAP_BOTH_TO_ACME, &[]);
    let expected = String::from(HEADER)
        + &row(
            U1,
            N1,
            &pn(1),
            "number",
            "",
            "2026-01-02T12:00:00Z",
            "STOP",
            "inbound-keyword",
            &sm(1),
            "Acme",
        )
        + &row(
            U2,
            N2,
            &pn(2),
            "number",
            "",
            "2026-01-04T12:00:00Z",
            "UNSUBSCRIBE",
            "inbound-keyword",
            &sm(3),
            "Acme",
        );
    assert_eq!(csv, expected);
}

#[test]
fn unmapped_numbers_stay_and_lose_nothing() {
    let mut b = one_stop();
    b.messages.push(inbound(2, U1, N2, "STOP", 2, None));
    let csv = lost_csv(&b, "number,customer\n+14155550102,Acme\n", &[]);
    assert_eq!(
        csv,
        String::from(HEADER)
            + &row(
                U1,
                N2,
                &pn(2),
                "number",
                "",
                "2026-01-02T12:00:00Z",
                "STOP",
                "inbound-keyword",
                &sm(2),
                "Acme"
            )
    );
}

#[test]
fn re_opt_in_clears_and_the_first_stop_after_the_last_start_is_cited() {
    let mut b = two_numbers();
    // U1: STOP, START -> subscribed again.
    b.messages.push(inbound(1, U1, N1, "STOP", 2, None));
    b.messages.push(inbound(2, U1, N1, "start", 3, None));
    // U2: STOP, START, QUIT, STOP -> opted out since the QUIT.
    b.messages.push(inbound(3, U2, N1, "STOP", 2, None));
    b.messages.push(inbound(4, U2, N1, "Yes", 3, None));
    b.messages.push(inbound(5, U2, N1, "quit", 5, None));
    b.messages.push(inbound(6, U2, N1, "STOP", 6, None));
    b.messages.push(inbound(7, U2, N1, "HELP", 7, None)); // help changes nothing
    let csv = lost_csv(&b, MAP_BOTH_TO_ACME, &[]);
    assert_eq!(
        csv,
        String::from(HEADER)
            + &row(
                U2,
                N1,
                &pn(1),
                "number",
                "",
                "2026-01-05T12:00:00Z",
                "QUIT",
                "inbound-keyword",
                &sm(5),
                "Acme"
            )
    );
}

#[test]
fn same_second_events_are_ordered_by_sid() {
    let mut b = two_numbers();
    let t = jan(2, 8, 0, 0);
    // On N1 the START has the larger sid: it is later, U1 is subscribed.
    b.messages.push(
        Msg {
            sid: &sm(0x20),
            direction: "inbound",
            from: U1,
            to: N1,
            body: Some("START"),
            date_sent: &t,
            ..Msg::default()
        }
        .json(),
    );
    b.messages.push(
        Msg {
            sid: &sm(0x10),
            direction: "inbound",
            from: U1,
            to: N1,
            body: Some("STOP"),
            date_sent: &t,
            ..Msg::default()
        }
        .json(),
    );
    // On N2 the STOP has the larger sid: U1 is opted out.
    b.messages.push(
        Msg {
            sid: &sm(0x30),
            direction: "inbound",
            from: U1,
            to: N2,
            body: Some("START"),
            date_sent: &t,
            ..Msg::default()
        }
        .json(),
    );
    b.messages.push(
        Msg {
            sid: &sm(0x40),
            direction: "inbound",
            from: U1,
            to: N2,
            body: Some("STOP"),
            date_sent: &t,
            ..Msg::default()
        }
        .json(),
    );
    let csv = lost_csv(&b, MAP_BOTH_TO_ACME, &[]);
    assert_eq!(
        csv,
        String::from(HEADER)
            + &row(
                U1,
                N2,
                &pn(2),
                "number",
                "",
                "2026-01-02T08:00:00Z",
                "STOP",
                "inbound-keyword",
                &sm(0x40),
                "Acme"
            )
    );
}

#[test]
fn error_21610_is_evidence_timed_by_date_created_when_never_sent() {
    let mut b = two_numbers();
    let mut failed = Msg {
        sid: &sm(1),
        direction: "outbound-api",
        from: N1,
        to: U1,
        body: None,
        date_sent: &jan(9, 10, 0, 0),
        error_code: Some(21610),
        ..Msg::default()
    }
    .json();
    failed["date_sent"] = json!(null);
    b.messages.push(failed);
    // A STOP before a later 21610 is the one cited: the user's own words, and earlier.
    b.messages.push(inbound(2, U2, N2, "STOP", 3, None));
    b.messages.push(
        Msg {
            sid: &sm(3),
            direction: "outbound-api",
            from: N2,
            to: U2,
            body: None,
            date_sent: &jan(4, 10, 0, 0),
            error_code: Some(21610),
            ..Msg::default()
        }
        .json(),
    );
    // Null bodies and outbound messages without 21610 are not evidence.
    b.messages.push(
        Msg {
            sid: &sm(4),
            direction: "inbound",
            from: U2,
            to: N1,
            body: None,
            date_sent: &jan(4, 10, 0, 0),
            ..Msg::default()
        }
        .json(),
    );
    let csv = lost_csv(&b, MAP_BOTH_TO_ACME, &[]);
    assert_eq!(
        csv,
        String::from(HEADER)
            + &row(
                U1,
                N1,
                &pn(1),
                "number",
                "",
                "2026-01-09T10:00:00Z",
                "",
                "error-21610",
                &sm(1),
                "Acme"
            )
            + &row(
                U2,
                N2,
                &pn(2),
                "number",
                "",
                "2026-01-03T12:00:00Z",
                "STOP",
                "inbound-keyword",
                &sm(2),
                "Acme"
            )
    );
}

#[test]
fn a_service_opt_out_is_lost_by_every_number_leaving_that_service() {
    let mut b = two_numbers();
    let alerts = mg(1);
    b.services.push(service(&alerts, "Alerts"));
    b.service_numbers.push(service_number(&alerts, &pn(1), N1));
    b.service_numbers.push(service_number(&alerts, &pn(2), N2));
    b.messages
        .push(inbound(1, U1, N1, "STOP", 2, Some(&alerts)));
    let csv = lost_csv(&b, MAP_BOTH_TO_ACME, &[]);
    assert_eq!(
        csv,
        String::from(HEADER)
            + &row(
                U1,
                N1,
                &pn(1),
                "service",
                &alerts,
                "2026-01-02T12:00:00Z",
                "STOP",
                "inbound-keyword",
                &sm(1),
                "Acme"
            )
            + &row(
                U1,
                N2,
                &pn(2),
                "service",
                &alerts,
                "2026-01-02T12:00:00Z",
                "STOP",
                "inbound-keyword",
                &sm(1),
                "Acme"
            )
    );
}

#[test]
fn a_stop_under_another_service_than_the_numbers_current_one_stays_behind() {
    let mut b = two_numbers();
    let (old, current) = (mg(1), mg(2));
    b.services.push(service(&old, "Old"));
    b.services.push(service(&current, "Current"));
    b.service_numbers.push(service_number(&current, &pn(1), N1));
    // U1 opted out while N1 sent through the old service: that opt-out belongs to the old
    // service, which N1 no longer sits in, so moving N1 does not lose it.
    b.messages.push(inbound(1, U1, N1, "STOP", 2, Some(&old)));
    // U2 opted out under the current service: lost.
    b.messages
        .push(inbound(2, U2, N1, "STOP", 3, Some(&current)));
    let csv = lost_csv(&b, "number,customer\n+14155550101,Acme\n", &[]);
    assert_eq!(
        csv,
        String::from(HEADER)
            + &row(
                U2,
                N1,
                &pn(1),
                "service",
                &current,
                "2026-01-03T12:00:00Z",
                "STOP",
                "inbound-keyword",
                &sm(2),
                "Acme"
            )
    );
}

#[test]
fn where_both_scopes_hold_an_opt_out_the_earlier_stands_and_a_tie_goes_to_the_number() {
    let mut b = two_numbers();
    let alerts = mg(1);
    b.services.push(service(&alerts, "Alerts"));
    b.service_numbers.push(service_number(&alerts, &pn(1), N1));
    b.service_numbers.push(service_number(&alerts, &pn(2), N2));
    // U1: service STOP on day 2, number STOP on day 5 -> service row (earlier).
    b.messages
        .push(inbound(1, U1, N2, "STOP", 2, Some(&alerts)));
    b.messages.push(inbound(2, U1, N1, "END", 5, None));
    // U2: both at the same time -> the number row.
    b.messages
        .push(inbound(3, U2, N1, "STOP", 3, Some(&alerts)));
    b.messages.push(inbound(4, U2, N1, "CANCEL", 3, None));
    let csv = lost_csv(&b, "number,customer\n+14155550101,Acme\n", &[]);
    assert_eq!(
        csv,
        String::from(HEADER)
            + &row(
                U1,
                N1,
                &pn(1),
                "service",
                &alerts,
                "2026-01-02T12:00:00Z",
                "STOP",
                "inbound-keyword",
                &sm(1),
                "Acme"
            )
            + &row(
                U2,
                N1,
                &pn(1),
                "number",
                "",
                "2026-01-03T12:00:00Z",
                "CANCEL",
                "inbound-keyword",
                &sm(4),
                "Acme"
            )
    );
}

#[test]
fn a_number_mapped_to_two_customers_moves_nowhere() {
    let b = one_stop();
    let csv = lost_csv(
        &b,
        "number,customer\n+14155550101,Acme\n+14155550101,Globex\n",
        &[],
    );
    assert_eq!(csv, HEADER);
}

#[test]
fn rows_name_the_existing_subaccount_matched_by_name_and_sort_by_customer() {
    let mut b = two_numbers();
    let zeta = sid("AC", 0x2e7a);
    b.accounts
        .push(account(&zeta, "Zeta Dental", "active", Some(PARENT)));
    b.messages.push(inbound(1, U1, N1, "STOP", 2, None));
    b.messages.push(inbound(2, U1, N2, "STOP", 2, None));
    let csv = lost_csv(
        &b,
        "number,customer\n+14155550101,  zeta dental \n+14155550102,Acme\n",
        &[],
    );
    let zeta_row = row(
        U1,
        N1,
        &pn(1),
        "number",
        "",
        "2026-01-02T12:00:00Z",
        "STOP",
        "inbound-keyword",
        &sm(1),
        "zeta dental",
    );
    let zeta_row = zeta_row.trim_end_matches(",\n").to_string() + &format!(",{zeta}\n");
    assert_eq!(
        csv,
        String::from(HEADER)
            + &row(
                U1,
                N2,
                &pn(2),
                "number",
                "",
                "2026-01-02T12:00:00Z",
                "STOP",
                "inbound-keyword",
                &sm(2),
                "Acme"
            )
            + &zeta_row
    );
}

#[test]
fn extra_keywords_count_as_opt_out_and_opt_in() {
    let mut b = two_numbers();
    b.messages.push(inbound(1, U1, N1, "Arrêt", 2, None));
    b.messages.push(inbound(2, U2, N1, "baja", 2, None));
    b.messages.push(inbound(3, U2, N1, "ALTA", 3, None));
    let csv = lost_csv(
        &b,
        MAP_BOTH_TO_ACME,
        &[
            "--opt-out-keyword",
            "ARRÊT,BAJA",
            "--opt-in-keyword",
            "alta",
        ],
    );
    assert_eq!(
        csv,
        String::from(HEADER)
            + &row(
                U1,
                N1,
                &pn(1),
                "number",
                "",
                "2026-01-02T12:00:00Z",
                "ARRÊT",
                "inbound-keyword",
                &sm(1),
                "Acme"
            )
    );
    // Without the extras nothing is an opt-out.
    assert_eq!(lost_csv(&b, MAP_BOTH_TO_ACME, &[]), HEADER);
}

#[test]
fn all_lists_every_opt_out_in_force_moving_or_not() {
    let mut b = one_stop();
    b.messages.push(inbound(2, U2, N2, "STOP", 3, None));
    // A number the parent no longer holds keeps its opt-outs too.
    b.messages
        .push(inbound(3, U1, "+14155550199", "STOP", 4, None));
    let csv = lost_csv(&b, "number,customer\n+14155550102,Acme\n", &["--all"]);
    assert_eq!(
        csv,
        String::from(HEADER)
            + "+12065552001,+14155550101,PN00000000000000000000000000000001,number,,2026-01-02T12:00:00Z,STOP,inbound-keyword,SM00000000000000000000000000000001,,\n"
            + "+12065552001,+14155550199,,number,,2026-01-04T12:00:00Z,STOP,inbound-keyword,SM00000000000000000000000000000003,,\n"
            + &row(U2, N2, &pn(2), "number", "", "2026-01-03T12:00:00Z", "STOP", "inbound-keyword", &sm(2), "Acme")
    );
}

#[test]
fn audit_writes_possible_opt_outs_violations_and_per_customer_files() {
    let dir = TempDir::new().unwrap();
    let mut b = two_numbers();
    let alerts = mg(1);
    b.services.push(service(&alerts, "Alerts"));
    b.service_numbers.push(service_number(&alerts, &pn(1), N1));
    b.messages
        .push(inbound(1, U1, N1, "STOP", 2, Some(&alerts)));
    // Sent into the opt-out, same scope: a violation. Refused (21610): the block working.
    b.messages.push(
        Msg {
            sid: &sm(2),
            direction: "outbound-api",
            from: N1,
            to: U1,
            body: None,
            date_sent: &jan(3, 9, 0, 0),
            service: Some(&alerts),
            ..Msg::default()
        }
        .json(),
    );
    b.messages.push(
        Msg {
            sid: &sm(3),
            direction: "outbound-api",
            from: N1,
            to: U1,
            body: None,
            date_sent: &jan(4, 9, 0, 0),
            service: Some(&alerts),
            error_code: Some(21610),
        }
        .json(),
    );
    // Another scope (no service): not a violation of the service opt-out.
    b.messages.push(
        Msg {
            sid: &sm(4),
            direction: "outbound-api",
            from: N1,
            to: U1,
            body: None,
            date_sent: &jan(5, 9, 0, 0),
            ..Msg::default()
        }
        .json(),
    );
    // After START: fine again.
    b.messages
        .push(inbound(5, U1, N1, "START", 6, Some(&alerts)));
    b.messages.push(
        Msg {
            sid: &sm(6),
            direction: "outbound-api",
            from: N1,
            to: U1,
            body: None,
            date_sent: &jan(7, 9, 0, 0),
            service: Some(&alerts),
            ..Msg::default()
        }
        .json(),
    );
    b.messages.push(inbound(7, U2, N2, "please STOP.", 8, None));
    b.messages.push(inbound(8, U2, N2, "opt-out", 8, None));
    b.write(&dir.path().join("snap"));
    fs::write(
        dir.path().join("map.csv"),
        "number,customer\n+14155550101,Acme & Co\n+14155550102,Beta\n",
    )
    .unwrap();
    on_snap(dir.path(), "audit", "out/report", &[])
        .assert()
        .success()
        .stdout(contains("Acme & Co"))
        .stdout(contains("Reports written to out/report"));
    let out = dir.path().join("out/report");
    assert_eq!(
        fs::read_to_string(out.join("optout_violations.csv")).unwrap(),
        format!(
            "message_sid,sent_at,twilio_number,end_user,scope,messaging_service_sid,status,opted_out_at,keyword,evidence,evidence_message_sid\n\
             {},2026-01-03T09:00:00Z,{N1},{U1},service,{alerts},delivered,2026-01-02T12:00:00Z,STOP,inbound-keyword,{}\n",
            sm(2),
            sm(1)
        )
    );
    assert_eq!(
        fs::read_to_string(out.join("optouts_possible.csv")).unwrap(),
        format!(
            "message_sid,received_at,end_user,twilio_number,messaging_service_sid,body,reason\n\
             {},2026-01-08T12:00:00Z,{U2},{N2},,please STOP.,contains opt-out keyword STOP\n\
             {},2026-01-08T12:00:00Z,{U2},{N2},,opt-out,contains the phrase OPT OUT\n",
            sm(7),
            sm(8)
        )
    );
    // After the START the service opt-out is gone; nothing is lost, but every moving
    // customer still gets its (header-only) re-import file.
    assert_eq!(
        fs::read_to_string(out.join("optouts_lost.csv")).unwrap(),
        HEADER
    );
    let mut files: Vec<String> = fs::read_dir(out.join("optouts"))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    files.sort();
    assert_eq!(
        files,
        [
            "Acme___Co.csv",
            "Acme___Co.suppression.csv",
            "Beta.csv",
            "Beta.suppression.csv"
        ]
    );
}

#[test]
fn per_customer_files_split_the_lost_rows_and_stale_files_go() {
    let mut b = one_stop();
    b.messages.push(inbound(2, U2, N2, "STOP", 2, None));
    let dir = lay_out(
        &b,
        "number,customer\n+14155550101,Acme\n+14155550102,Beta\n",
    );
    fs::create_dir_all(dir.path().join("report/optouts")).unwrap();
    fs::write(dir.path().join("report/optouts/Old.csv"), "stale").unwrap();
    on_snap(dir.path(), "audit", "report", &[])
        .assert()
        .success();
    let all = read_csv(&dir.path().join("report/optouts_lost.csv"));
    let acme = read_csv(&dir.path().join("report/optouts/Acme.csv"));
    let beta = read_csv(&dir.path().join("report/optouts/Beta.csv"));
    assert_eq!(acme.len(), 2);
    assert_eq!(beta.len(), 2);
    assert_eq!(all, vec![all[0].clone(), acme[1].clone(), beta[1].clone()]);
    assert!(!dir.path().join("report/optouts/Old.csv").exists());
}

#[test]
fn the_csv_goes_to_stdout_by_default() {
    let dir = lay_out(&one_stop(), MAP_BOTH_TO_ACME);
    subaudit(dir.path())
        .args(["optouts", "--snapshot", "snap", "--all"])
        .assert()
        .success()
        .stdout(predicates::str::starts_with(HEADER))
        .stdout(contains(sm(1)))
        .stderr(contains("1 opt-out in force"));
}

/// The snapshot files never hold a token, even though the accounts came with one.
#[test]
fn no_auth_token_reaches_a_snapshot() {
    let dir = TempDir::new().unwrap();
    let b = two_numbers();
    let snap = b.write(&dir.path().join("snap"));
    for entry in fs::read_dir(&snap).unwrap() {
        let text = fs::read_to_string(entry.unwrap().path()).unwrap();
        assert!(!text.contains("auth_token"));
        assert!(!text.contains("secret-token"));
    }
}

/// REVOKE and OPTOUT are Twilio defaults only from 2025-05-14T00:00:00Z: a second before, they
/// opt out only when the user passes them as extra keywords.
#[test]
fn revoke_and_optout_count_from_2025_05_14_on_or_when_passed_as_extras() {
    let message = |n: u64, from: &str, body: &str, date: String| {
        Msg {
            sid: &sm(n),
            direction: "inbound",
            from,
            to: N1,
            body: Some(body),
            date_sent: &date,
            ..Msg::default()
        }
        .json()
    };
    let mut b = two_numbers();
    b.messages
        .push(message(1, U1, "Revoke", at(2025, 5, 13, 23, 59, 59)));
    b.messages
        .push(message(2, U2, " optout ", at(2025, 5, 14, 0, 0, 0)));
    let before = row(
        U1,
        N1,
        &pn(1),
        "number",
        "",
        "2025-05-13T23:59:59Z",
        "REVOKE",
        "inbound-keyword",
        &sm(1),
        "Acme",
    );
    let after = row(
        U2,
        N1,
        &pn(1),
        "number",
        "",
        "2025-05-14T00:00:00Z",
        "OPTOUT",
        "inbound-keyword",
        &sm(2),
        "Acme",
    );
    let defaults_only = lost_csv(&b, MAP_BOTH_TO_ACME, &[]);
    assert_eq!(defaults_only, String::from(HEADER) + &after);
    let with_extra = lost_csv(&b, MAP_BOTH_TO_ACME, &["--opt-out-keyword", "revoke"]);
    assert_eq!(with_extra, String::from(HEADER) + &before + &after);
}

/// Customer names that differ in case sort the same way everywhere (case-folded): the lost
/// opt-outs, the usage attribution and the audit's terminal summary list "Alpha Dental",
/// "beta Pets", "Carrot Co" in that order (byte order would put "beta Pets" last).
#[test]
fn customers_sort_case_folded_in_every_output() {
    const N3: &str = "+14155550103";
    let dir = TempDir::new().unwrap();
    let mut b = two_numbers();
    b.numbers.push(number(&pn(3), N3));
    b.messages.push(inbound(1, U1, N1, "STOP", 2, None));
    b.messages.push(inbound(2, U1, N2, "STOP", 3, None));
    b.messages.push(inbound(3, U1, N3, "STOP", 4, None));
    b.write(&dir.path().join("snap"));
    fs::write(
        dir.path().join("map.csv"),
        format!("number,customer,subaccount_sid\n{N1},beta Pets,\n{N2},Carrot Co,\n{N3},Alpha Dental,\n"),
    )
    .unwrap();
    let out = on_snap(dir.path(), "audit", "report", &[])
        .assert()
        .success();
    let expected = ["Alpha Dental", "beta Pets", "Carrot Co"];
    let report = dir.path().join("report");
    let lost: Vec<String> = read_csv(&report.join("optouts_lost.csv"))[1..]
        .iter()
        .map(|r| r[9].clone())
        .collect();
    assert_eq!(lost, expected);
    let attributed: Vec<String> = read_csv(&report.join("usage_attribution.csv"))[1..]
        .iter()
        .filter(|r| r[0] == "customer")
        .map(|r| r[1].clone())
        .collect();
    assert_eq!(attributed, expected);
    let stdout = String::from_utf8(out.get_output().stdout.clone()).unwrap();
    let at: Vec<usize> = expected
        .iter()
        .map(|name| {
            stdout
                .find(name)
                .unwrap_or_else(|| panic!("{name} missing:\n{stdout}"))
        })
        .collect();
    assert!(at[0] < at[1] && at[1] < at[2], "{stdout}");
}

/// `optouts` reads the lines of possible violations again while it writes the rows: a bad
/// line met then fails the run, and the previous CSV and per-customer folder stay as they
/// were (nothing staged is left behind).
#[test]
fn a_bad_line_met_when_reading_violations_again_leaves_the_previous_outputs() {
    let mut b = one_stop();
    let mut sent = Msg {
        sid: &sm(2),
        direction: "outbound-api",
        from: N1,
        to: U1,
        body: Some("hi"),
        date_sent: &jan(3, 9, 0, 0),
        ..Msg::default()
    }
    .json();
    sent["date_sent"] = json!("yesterday");
    b.messages.push(sent);
    let dir = lay_out(&b, MAP_BOTH_TO_ACME);
    fs::write(dir.path().join("lost.csv"), "the previous run's rows\n").unwrap();
    fs::create_dir(dir.path().join("per")).unwrap();
    fs::write(dir.path().join("per/Acme.csv"), "the previous run's file\n").unwrap();
    // The folder's entries (a staging folder left behind would show) and the outputs' text.
    let outputs = || {
        let mut names: Vec<String> = fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        let text = |path: &str| fs::read_to_string(dir.path().join(path)).unwrap();
        (
            names,
            text("lost.csv"),
            tree(&dir.path().join("per")).len(),
            text("per/Acme.csv"),
        )
    };
    let before = outputs();
    for extra in [&[][..], &["--per-customer", "per"][..]] {
        on_snap(dir.path(), "optouts", "lost.csv", extra)
            .assert()
            .failure()
            .stderr(contains("messages.jsonl:2:").and(contains("\"yesterday\"")));
        assert_eq!(outputs(), before, "{extra:?}");
    }
}

/// `--per-customer DIR` is replaced whole: an output file inside it would be taken away again
/// by that folder's commit (while the summary said it was written), so it is refused first.
#[test]
fn an_output_inside_the_per_customer_folder_is_refused_before_any_work() {
    let dir = lay_out(&one_stop(), MAP_BOTH_TO_ACME);
    for (out, extra) in [
        ("per/lost.csv", &["--per-customer", "per"][..]),
        ("per", &["--per-customer", "per"][..]),
        (
            "lost.csv",
            &["--per-customer", ".", "--violations", "v.csv"][..],
        ),
        (
            "lost.csv",
            &["--per-customer", "per", "--possible", "per/p.csv"][..],
        ),
    ] {
        on_snap(dir.path(), "optouts", out, extra)
            .assert()
            .code(2)
            .stderr(contains("inside --per-customer"));
        let mut left: Vec<String> = fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        left.sort();
        assert_eq!(left, ["map.csv", "snap"], "{out} {extra:?}");
    }
    // Beside the folder is fine.
    on_snap(
        dir.path(),
        "optouts",
        "lost.csv",
        &["--per-customer", "per"],
    )
    .assert()
    .success();
    assert!(dir.path().join("lost.csv").is_file());
    assert!(dir.path().join("per/Acme.csv").is_file());
}

/// An output given as a symlink stays a symlink: the file it names gets the new content.
#[cfg(unix)]
#[test]
fn an_output_given_as_a_symlink_writes_the_file_it_names() {
    let dir = lay_out(&one_stop(), MAP_BOTH_TO_ACME);
    fs::create_dir(dir.path().join("kept")).unwrap();
    fs::write(dir.path().join("kept/lost.csv"), "old\n").unwrap();
    std::os::unix::fs::symlink("kept/lost.csv", dir.path().join("lost.csv")).unwrap();
    // A link to a file not there yet, through a second link.
    std::os::unix::fs::symlink("kept/possible.csv", dir.path().join("p1.csv")).unwrap();
    std::os::unix::fs::symlink("p1.csv", dir.path().join("p.csv")).unwrap();
    for extra in [&[][..], &["--per-customer", "per"][..]] {
        on_snap(
            dir.path(),
            "optouts",
            "lost.csv",
            &[&["--possible", "p.csv"][..], extra].concat(),
        )
        .assert()
        .success();
        for link in ["lost.csv", "p1.csv", "p.csv"] {
            let meta = fs::symlink_metadata(dir.path().join(link)).unwrap();
            assert!(meta.file_type().is_symlink(), "{link} {extra:?}");
        }
        let lost = fs::read_to_string(dir.path().join("kept/lost.csv")).unwrap();
        assert!(lost.starts_with(HEADER), "{lost}");
        assert!(lost.contains(&sm(1)), "{lost}");
        let possible = fs::read_to_string(dir.path().join("kept/possible.csv")).unwrap();
        assert!(possible.starts_with("message_sid,"), "{possible}");
    }
}
