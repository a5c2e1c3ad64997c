//! Every `--help` as users see it (insta snapshots: a changed option or text shows in review),
//! and clap's own consistency checks of the command line.

use clap::CommandFactory;

use crate::support::*;

#[test]
fn the_command_line_passes_clap_checks() {
    subaudit::commands::Cli::command().debug_assert();
}

/// `subaudit [SUBCOMMAND] --help`, 100 columns, with no Twilio variable of the machine shown.
fn help(subcommand: Option<&str>) -> String {
    let dir = tempfile::tempdir().unwrap();
    let mut cmd = subaudit(dir.path());
    for (name, _) in std::env::vars() {
        if name.starts_with("TWILIO_") || name.starts_with("SUBAUDIT_") {
            cmd.env_remove(name);
        }
    }
    cmd.env("COLUMNS", "100");
    cmd.args(subcommand).arg("--help");
    let output = cmd.output().unwrap();
    assert_eq!(output.status.code(), Some(OK));
    String::from_utf8(output.stdout).unwrap()
}

#[test]
fn every_help_is_snapshotted() {
    insta::assert_snapshot!("help", help(None));
    let names: Vec<String> = subaudit::commands::Cli::command()
        .get_subcommands()
        .map(|c| c.get_name().to_string())
        .filter(|n| n != "help")
        .collect();
    assert!(names.len() >= 8, "{names:?}");
    for name in names {
        insta::assert_snapshot!(format!("help_{name}"), help(Some(&name)));
    }
}
