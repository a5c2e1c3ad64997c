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

/// Every flag of every command, and of `twilio-sim`, says what it does in `--help`.
#[test]
fn every_flag_has_help_text() {
    fn collect(cmd: &clap::Command, path: &str, missing: &mut Vec<String>) {
        for arg in cmd.get_arguments() {
            let id = arg.get_id().as_str();
            if id == "help" || id == "version" {
                continue;
            }
            if arg.get_help().is_none() && arg.get_long_help().is_none() {
                missing.push(format!("{path} --{}", arg.get_long().unwrap_or(id)));
            }
        }
        for sub in cmd.get_subcommands().filter(|c| c.get_name() != "help") {
            collect(sub, &format!("{path} {}", sub.get_name()), missing);
        }
    }
    let mut missing = Vec::new();
    collect(
        &subaudit::commands::Cli::command(),
        "subaudit",
        &mut missing,
    );
    collect(
        &subaudit::sim::SimArgs::command(),
        "twilio-sim",
        &mut missing,
    );
    assert!(missing.is_empty(), "flags without help text: {missing:?}");
}

/// The `subaudit ...` lines of a command's examples (`--help`'s text after the options).
fn example_lines(cmd: &clap::Command) -> Vec<String> {
    cmd.get_after_help()
        .map(|text| text.to_string())
        .unwrap_or_default()
        .lines()
        .map(str::trim)
        .filter(|line| line.starts_with("subaudit "))
        .map(str::to_string)
        .collect()
}

/// Every command's `--help` ends with examples; those that need no Twilio account run as pasted
/// (through `sh`, in a folder holding the sample as `sample-data/owlie`, in their order) and
/// succeed: exit 0, or 3 where the example asks for `--fail-on`.
#[test]
fn the_offline_help_examples_run_as_pasted() {
    const OFFLINE: [&str; 6] = ["audit", "optouts", "map", "plan", "usage", "sample"];
    let root = subaudit::commands::Cli::command();
    let mut commands: Vec<(String, Vec<String>)> = vec![("subaudit".into(), example_lines(&root))];
    for sub in root.get_subcommands().filter(|c| c.get_name() != "help") {
        let lines = example_lines(sub);
        assert!(
            !lines.is_empty(),
            "subaudit {} --help has no example",
            sub.get_name()
        );
        if OFFLINE.contains(&sub.get_name()) {
            commands.push((sub.get_name().to_string(), lines));
        }
    }
    let bin_dir = std::path::Path::new(env!("CARGO_BIN_EXE_subaudit"))
        .parent()
        .unwrap()
        .to_path_buf();
    let path = format!(
        "{}:{}",
        bin_dir.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let mut ran = 0;
    for (name, lines) in commands {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("sample-data")).unwrap();
        std::os::unix::fs::symlink(
            repo_root().join("sample-data/owlie"),
            dir.path().join("sample-data/owlie"),
        )
        .unwrap();
        for line in lines {
            let mut cmd = std::process::Command::new("sh");
            cmd.arg("-c").arg(&line).current_dir(dir.path());
            for (var, _) in std::env::vars() {
                if var.starts_with("TWILIO_") || var.starts_with("SUBAUDIT_") {
                    cmd.env_remove(var);
                }
            }
            cmd.env("PATH", &path)
                .env("XDG_CACHE_HOME", dir.path().join("cache"))
                .env_remove("COLUMNS");
            let output = cmd.output().unwrap();
            let expected = if line.contains("--fail-on") {
                vec![OK, FINDINGS]
            } else {
                vec![OK]
            };
            assert!(
                output.status.code().is_some_and(|c| expected.contains(&c)),
                "`{line}` (from {name}'s --help) exited {:?}:\n{}",
                output.status.code(),
                String::from_utf8_lossy(&output.stderr)
            );
            ran += 1;
        }
    }
    assert!(ran >= 10, "only {ran} examples ran");
}
