//! End-to-end tests of `trm-train data check` and `trm-train data generate`, run as a user would.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use trm_testkit::require_sudoku_data;

fn trm_train(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_trm-train"))
        .args(args)
        .output()
        .expect("run trm-train")
}

fn text(out: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn scratch(name: &str) -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(name);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn check_set(file: &Path, count: usize) {
    let out = trm_train(&["data", "check", file.to_str().unwrap()]);
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stdout}\n{stderr}");
    assert!(stdout.contains(&format!("puzzles: {count}\n")), "{stdout}");
    assert!(
        stdout.contains(&format!("uniquely solvable: {count} of {count}\n")),
        "{stdout}"
    );
}

#[test]
fn check_accepts_top1465_and_forum_hardest() {
    let Some(dir) = require_sudoku_data() else {
        return;
    };
    check_set(&dir.join("top1465.txt"), 1465);
    check_set(&dir.join("forum_hardest_1905_11plus.txt"), 48_766);
}

#[test]
fn check_names_every_broken_line() {
    let dir = scratch("broken");
    let good = "4.....8.5.3..........7......2.....6.....8.4......1.......6.3.7.5..2.....1.4......";
    let short = &good[..80];
    let letter = good.replacen('.', "a", 1);
    let twice = good.replacen("4.....", "44....", 1); // two 4s in row 1
    let multi = ".".repeat(81); // many solutions
    let file = dir.join("broken.txt");
    std::fs::write(
        &file,
        format!("{good}\n{short}\n{good}\n{letter}\n{twice}\n{multi}\n"),
    )
    .unwrap();
    let out = trm_train(&["data", "check", file.to_str().unwrap()]);
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(1), "{stdout}\n{stderr}");
    assert!(stdout.contains("uniquely solvable: 2 of 6"), "{stdout}");
    for needle in [
        "broken.txt:2: puzzle: expected 81 characters, found 80",
        "broken.txt:4: puzzle: bad character 'a' at position 2",
        "broken.txt:5: puzzle has conflicting givens: digit 4 appears twice in row 1",
        "broken.txt:6: more than one solution",
        "4 bad line(s)",
    ] {
        assert!(stderr.contains(needle), "missing {needle:?} in:\n{stderr}");
    }
}

#[test]
fn generate_is_byte_identical_and_checks() {
    let dir = scratch("generate");
    let run = |name: &str, threads: &str| {
        let out_file = dir.join(name);
        let out = trm_train(&[
            "--threads",
            threads,
            "data",
            "generate",
            "--count",
            "40",
            "--seed",
            "11",
            "--clues",
            "30..40",
            "--out",
            out_file.to_str().unwrap(),
        ]);
        assert!(out.status.success(), "{:?}", text(&out));
        std::fs::read(out_file).unwrap()
    };
    let (a, b) = (run("a.csv", "2"), run("b.csv", "1"));
    assert_eq!(
        a, b,
        "same arguments must give the same bytes, whatever the thread count"
    );
    let body = String::from_utf8(a).unwrap();
    assert!(body.starts_with("source,question,answer,rating\n"));
    assert_eq!(body.lines().count(), 41);
    let out = trm_train(&["data", "check", dir.join("a.csv").to_str().unwrap()]);
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stdout}\n{stderr}");
    assert!(stdout.contains("uniquely solvable: 40 of 40"), "{stdout}");
    assert!(stdout.contains("Sudoku-Extreme CSV"), "{stdout}");
    // Every puzzle has 30..=40 givens.
    for line in body.lines().skip(1) {
        let givens = line
            .split(',')
            .nth(1)
            .unwrap()
            .bytes()
            .filter(|b| b.is_ascii_digit())
            .count();
        assert!((30..=40).contains(&givens), "{line}");
    }
}

#[test]
fn check_rejects_an_empty_file() {
    let file = scratch("empty").join("empty.txt");
    std::fs::write(&file, "\n").unwrap();
    let out = trm_train(&["data", "check", file.to_str().unwrap()]);
    let (_, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr.contains("holds no puzzle"), "{stderr}");
}

#[test]
fn check_reports_a_missing_file() {
    let out = trm_train(&["data", "check", "/nonexistent/puzzles.txt"]);
    let (_, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr.contains("/nonexistent/puzzles.txt"), "{stderr}");
    // The cause once, not repeated as its own source.
    assert_eq!(
        stderr.matches("No such file or directory").count(),
        1,
        "{stderr}"
    );
}

/// `-` is standard input, as in trm-solve: the same counts as the file, and an empty stdin is
/// the empty-file error.
#[test]
fn check_reads_stdin_for_a_dash() {
    use std::io::Write as _;
    use std::process::Stdio;
    let grid = "53..7....6..195....98....6.8...6...34..8.3..17...2...6.6....28....419..5....8..79";
    let run = |input: &str| {
        let mut child = Command::new(env!("CARGO_BIN_EXE_trm-train"))
            .args(["data", "check", "-"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("run trm-train");
        child
            .stdin
            .take()
            .unwrap()
            .write_all(input.as_bytes())
            .unwrap();
        child.wait_with_output().unwrap()
    };
    let out = run(&format!("{grid}\n# a comment\n{grid}\n"));
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(stdout.contains("stdin: plain list"), "{stdout}");
    assert!(stdout.contains("puzzles: 2"), "{stdout}");
    let out = run("");
    let (_, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr.contains("stdin: the file holds no puzzle"),
        "{stderr}"
    );
}

/// `--out` naming a device node, a FIFO or a symlink: the device and the FIFO are written
/// through (never replaced by a regular file: as root this once replaced `/dev/null`), the
/// symlink's target gets the file and the link stays.
#[cfg(unix)]
#[test]
fn generate_writes_through_devices_fifos_and_symlinks() {
    use std::os::unix::fs::FileTypeExt;
    let dir = scratch("special_out");
    let generate = |out: &Path| {
        trm_train(&[
            "data",
            "generate",
            "--count",
            "3",
            "--seed",
            "1",
            "--out",
            out.to_str().unwrap(),
        ])
    };
    // A null device of our own (root only; /dev itself is never touched).
    let node = dir.join("fakenull");
    let made = Command::new("mknod")
        .arg(&node)
        .args(["c", "1", "3"])
        .stderr(std::process::Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if made {
        let out = generate(&node);
        assert!(out.status.success(), "{}", text(&out).1);
        let meta = std::fs::symlink_metadata(&node).unwrap();
        assert!(meta.file_type().is_char_device(), "replaced: {meta:?}");
    } else {
        eprintln!("SKIPPED the device-node case: mknod needs root (the FIFO case runs)");
    }
    // A FIFO (no root needed): the reader gets the whole file.
    let fifo = dir.join("pipe");
    assert!(
        Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .unwrap()
            .success()
    );
    let reader = {
        let fifo = fifo.clone();
        std::thread::spawn(move || std::fs::read_to_string(fifo).unwrap())
    };
    let out = generate(&fifo);
    assert!(out.status.success(), "{}", text(&out).1);
    let piped = reader.join().unwrap();
    assert!(
        piped.starts_with("source,question,answer,rating\n"),
        "{piped}"
    );
    assert_eq!(piped.lines().count(), 4);
    assert!(
        std::fs::symlink_metadata(&fifo)
            .unwrap()
            .file_type()
            .is_fifo()
    );
    // A symlink: its target is written, the link stays a link.
    std::fs::create_dir_all(dir.join("data")).unwrap();
    std::os::unix::fs::symlink("data/puzzles.csv", dir.join("link.csv")).unwrap();
    let out = generate(&dir.join("link.csv"));
    assert!(out.status.success(), "{}", text(&out).1);
    assert_eq!(
        std::fs::read_to_string(dir.join("data/puzzles.csv")).unwrap(),
        piped
    );
    assert!(
        std::fs::symlink_metadata(dir.join("link.csv"))
            .unwrap()
            .file_type()
            .is_symlink()
    );
    // A directory is refused, naming it.
    let out = generate(&dir.join("data"));
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out).1.contains("is a directory"), "{}", text(&out).1);
}
