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

/// Every line of every `--help`'s closing text (examples, exit codes) fits 80 columns with its
/// indent, so that a terminal that narrow shows it as written: clap wraps a longer line, and a
/// wrapped example no longer pastes (long commands continue over lines with ` \\`).
#[test]
fn every_help_footer_fits_80_columns() {
    fn walk(cmd: &clap::Command, path: &str, wide: &mut Vec<String>) {
        let text = cmd
            .get_after_help()
            .map(|t| t.to_string())
            .unwrap_or_default();
        for line in text.lines().filter(|l| l.chars().count() > 80) {
            wide.push(format!("{path}: {line:?}"));
        }
        for sub in cmd.get_subcommands() {
            walk(sub, &format!("{path} {}", sub.get_name()), wide);
        }
    }
    let mut wide = Vec::new();
    walk(&subaudit::commands::Cli::command(), "subaudit", &mut wide);
    walk(&subaudit::sim::SimArgs::command(), "twilio-sim", &mut wide);
    assert!(wide.is_empty(), "wider than 80 columns: {wide:#?}");
}

/// The `subaudit ...` commands of a command's examples (`--help`'s text after the options), a
/// command continued over lines (` \\` at a line's end) joined into one.
fn example_lines(cmd: &clap::Command) -> Vec<String> {
    let text = cmd
        .get_after_help()
        .map(|text| text.to_string())
        .unwrap_or_default();
    let mut commands = Vec::new();
    let mut pending: Option<String> = None;
    for line in text.lines() {
        let trimmed = line.trim();
        let joined = match pending.take() {
            Some(start) => format!("{start} {trimmed}"),
            None if trimmed.starts_with("subaudit ") => trimmed.to_string(),
            None => continue,
        };
        match joined.strip_suffix('\\') {
            Some(start) => pending = Some(start.trim_end().to_string()),
            None => commands.push(joined),
        }
    }
    assert!(
        pending.is_none(),
        "{}: an example ends with \\",
        cmd.get_name()
    );
    commands
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
    let mut ran = 0;
    for (name, lines) in commands {
        let dir = folder_with_sample();
        for line in lines {
            let output = run_example(dir.path(), &line, &[]);
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

/// A temporary folder holding the sample as `sample-data/owlie`, as the examples name it.
fn folder_with_sample() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("sample-data")).unwrap();
    std::os::unix::fs::symlink(
        repo_root().join("sample-data/owlie"),
        dir.path().join("sample-data/owlie"),
    )
    .unwrap();
    dir
}

/// Runs one example line as pasted, through `sh` in `dir`, with the built binaries first on
/// PATH, none of the machine's Twilio or subaudit variables, and `env` set.
fn run_example(dir: &std::path::Path, line: &str, env: &[(&str, &str)]) -> std::process::Output {
    let bin_dir = std::path::Path::new(env!("CARGO_BIN_EXE_subaudit"))
        .parent()
        .unwrap()
        .to_path_buf();
    let path = format!(
        "{}:{}",
        bin_dir.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let mut cmd = std::process::Command::new("sh");
    cmd.arg("-c").arg(line).current_dir(dir);
    for (var, _) in std::env::vars() {
        if var.starts_with("TWILIO_") || var.starts_with("SUBAUDIT_") {
            cmd.env_remove(var);
        }
    }
    cmd.env("PATH", &path)
        .env("XDG_CACHE_HOME", dir.join("cache"))
        .env_remove("COLUMNS")
        .envs(env.iter().copied());
    cmd.output().unwrap()
}

/// The examples of the commands that talk to Twilio run as pasted against the twin serving
/// the sample, in the order a user follows them (audit first, for the plan they apply): the
/// credentials come from the environment, as each example's `export` line says, and the API
/// address from `SUBAUDIT_TWILIO_BASE_URL`; a `BU...`-style placeholder is the only text
/// filled in (with a bundle the twin knows). `doctor` and `pull` must pass; `apply` and
/// `verify` may also end with "work left" (3: the sample has blocked numbers), never with a
/// failed request or bad input.
#[test]
fn the_online_help_examples_run_against_the_twin() {
    const PARENT: &str = "AC4167c593eb1e01abd9fe399d07823a05";
    const TOKEN: &str = "help-example-token";
    let sample = repo_root().join("sample-data/owlie");
    let (mut twin, url) = spawn_twilio_sim(&sample, PARENT, TOKEN, &[]);
    let dir = folder_with_sample();
    let env = [
        ("TWILIO_ACCOUNT_SID", PARENT),
        ("TWILIO_AUTH_TOKEN", TOKEN),
        ("SUBAUDIT_TWILIO_BASE_URL", url.as_str()),
    ];
    let root = subaudit::commands::Cli::command();
    let examples = |name: &str| example_lines(root.find_subcommand(name).unwrap());
    let bundle = sample_bundle_sid(&sample);
    let mut ran = Vec::new();
    for name in ["audit", "doctor", "pull", "apply", "verify"] {
        for line in examples(name) {
            let line = line.replace("=BU...", &format!("={bundle}"));
            assert!(
                !line.contains("..."),
                "{name}: an unfilled placeholder in `{line}`"
            );
            let output = run_example(dir.path(), &line, &env);
            let code = output.status.code();
            let allowed: &[i32] = match line.split_whitespace().nth(1) {
                Some("apply" | "verify") => &[OK, FINDINGS],
                _ => &[OK],
            };
            assert!(
                code.is_some_and(|c| allowed.contains(&c)),
                "`{line}` (from {name}'s --help) exited {code:?}:\n{}\n{}",
                String::from_utf8_lossy(&output.stdout),
                String::from_utf8_lossy(&output.stderr)
            );
            ran.push(line);
        }
    }
    twin.kill().ok();
    twin.wait().ok();
    for command in ["doctor", "pull", "apply", "verify"] {
        assert!(
            ran.iter()
                .any(|l| l.starts_with(&format!("subaudit {command} "))
                    || l == &format!("subaudit {command}")),
            "no {command} example ran: {ran:?}"
        );
    }
    // The verify example read the applied plan against the snapshot pulled after the move.
    assert!(dir.path().join("report/verify.csv").is_file());
    assert!(dir.path().join("after/manifest.json").is_file());
}

/// A regulatory bundle sid of the sample (the twin accepts it for a number that needs one).
fn sample_bundle_sid(sample: &std::path::Path) -> String {
    let numbers = std::fs::read_to_string(sample.join("incoming_phone_numbers.jsonl")).unwrap();
    numbers
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .find_map(|n| n["bundle_sid"].as_str().map(str::to_string))
        .expect("the sample has a number with a bundle")
}
