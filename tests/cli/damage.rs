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
    let names: Vec<String> = fs::read_dir(dir.path().join("report/optouts"))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    assert_eq!(names, ["Zeta.csv"]);
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
    let plan = |dir: &tempfile::TempDir| {
        subaudit(dir.path())
            .args([
                "plan",
                "--snapshot",
                "snap",
                "--map",
                "map.csv",
                "--out",
                "out/plan.json",
            ])
            .assert()
    };
    plan(&dir).success();
    fs::remove_file(dir.path().join("out/plan.sh")).unwrap();
    fs::create_dir(dir.path().join("out/plan.sh")).unwrap();
    fs::write(dir.path().join("map.csv"), "number,customer\n").unwrap();
    let before = tree(&dir.path().join("out"));
    plan(&dir).code(BAD_INPUT);
    assert_eq!(tree(&dir.path().join("out")), before);
}
