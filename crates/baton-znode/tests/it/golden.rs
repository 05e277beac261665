//! Data-driven tests: every `tests/testdata/*.txt` is a script of commands, each
//! followed by the output it must produce (format in `script.rs`).
//!
//! `BATON_UPDATE_GOLDEN=1 cargo test -p baton-znode --test it golden` rewrites the
//! expected outputs from the actual ones; review the diff before keeping it.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use crate::script::Runner;

/// One command and its expected output, with the comment lines above it.
struct Case {
    comments: Vec<String>,
    input: Vec<String>,
    line: usize,
    expected: Vec<String>,
}

fn parse(text: &str) -> Vec<Case> {
    let mut cases = Vec::new();
    let mut lines = text.lines().enumerate().peekable();
    let mut comments = Vec::new();
    while let Some((i, line)) = lines.next() {
        if line.trim().is_empty() || line.starts_with('#') {
            comments.push(line.to_owned());
            continue;
        }
        let mut input = vec![line.to_owned()];
        for (_, line) in lines.by_ref() {
            if line == "----" {
                break;
            }
            input.push(line.to_owned());
        }
        let mut expected = Vec::new();
        for (_, line) in lines.by_ref() {
            if line.is_empty() {
                break;
            }
            expected.push(line.to_owned());
        }
        cases.push(Case { comments: std::mem::take(&mut comments), input, line: i + 1, expected });
    }
    cases
}

fn render(cases: &[Case], outputs: &[Vec<String>]) -> String {
    let mut text = String::new();
    for (case, output) in cases.iter().zip(outputs) {
        for line in case.comments.iter().chain(&case.input) {
            writeln!(text, "{line}").unwrap();
        }
        writeln!(text, "----").unwrap();
        for line in output {
            writeln!(text, "{line}").unwrap();
        }
        writeln!(text).unwrap();
    }
    text
}

fn run_file(path: &Path) -> Result<(), String> {
    let text = std::fs::read_to_string(path).unwrap();
    let cases = parse(&text);
    let mut runner = Runner::default();
    let mut outputs = Vec::new();
    let mut failures = String::new();
    for case in &cases {
        let output = runner.run(&case.input);
        if output != case.expected {
            writeln!(
                failures,
                "{}:{}: {}\n--- expected\n{}\n--- actual\n{}\n",
                path.display(),
                case.line,
                case.input.join("\n"),
                case.expected.join("\n"),
                output.join("\n")
            )
            .unwrap();
        }
        outputs.push(output);
    }
    runner.check_snapshot_round_trip();
    if failures.is_empty() {
        return Ok(());
    }
    if std::env::var_os("BATON_UPDATE_GOLDEN").is_some_and(|v| v == "1") {
        std::fs::write(path, render(&cases, &outputs)).unwrap();
        return Ok(());
    }
    Err(failures)
}

fn testdata_files() -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/testdata");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "txt"))
        .collect();
    files.sort();
    files
}

#[test]
fn golden_scripts() {
    let files = testdata_files();
    assert!(files.len() >= 8, "testdata files missing: {files:?}");
    let failures: Vec<String> = files.iter().filter_map(|f| run_file(f).err()).collect();
    assert!(
        failures.is_empty(),
        "{}\n(rerun with BATON_UPDATE_GOLDEN=1 to accept the actual output)",
        failures.join("\n")
    );
}

#[test]
fn parse_keeps_comments_and_round_trips() {
    let text = "# about a\ncreate /a x\n----\nok\n\nmulti\n  check /a\n----\nok\n";
    let cases = parse(text);
    assert_eq!(cases.len(), 2);
    assert_eq!(cases[1].input, ["multi", "  check /a"]);
    let outputs: Vec<Vec<String>> = cases.iter().map(|c| c.expected.clone()).collect();
    assert_eq!(render(&cases, &outputs), format!("{text}\n"));
}
