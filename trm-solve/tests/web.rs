//! The web page (`web/`: trm-edge in WebAssembly) in a real browser: `web/build.sh` builds
//! it, a small static server serves it, headless Chromium loads it and solves puzzles through
//! the UI (the puzzle typed into the text box, options chosen, the Solve button clicked), and
//! the answers read from the page equal `trm-solve --no-simd`'s for the same model, budget and
//! policy, with and without test-time scaling. A screenshot is kept in `target/web/`.
//!
//! Chromium is driven over the DevTools protocol on a pipe (`--remote-debugging-pipe`: JSON
//! messages ending in a NUL byte on file descriptors 3 and 4), so no driver library is
//! needed. Needs Chromium (`/usr/bin/chromium`, or `$TRM_CHROMIUM`) and the Rust target
//! `wasm32-unknown-unknown` (see `.ci/run`); without them it prints SKIPPED, or fails under
//! `CI=true`. Run alone with `cargo test -p trm-solve --release --test web -- --nocapture`
//! (it prints the page's load and step times).

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc::{self, Receiver};
use std::time::{Duration, Instant};

use common::{code, run, stderr, stdout};
use serde_json::{Value, json};

/// The workspace root.
fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// What keeps the test from running here, if anything.
fn missing() -> Option<String> {
    let chromium = chromium();
    if Command::new(&chromium).arg("--version").output().is_err() {
        return Some(format!(
            "{} not found (apt-get install chromium, or set TRM_CHROMIUM)",
            chromium.display()
        ));
    }
    let sysroot = Command::new("rustc")
        .args(["--print", "sysroot"])
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_default();
    if !Path::new(&sysroot)
        .join("lib/rustlib/wasm32-unknown-unknown")
        .is_dir()
    {
        return Some(
            "the wasm32-unknown-unknown target is missing (rustup target add wasm32-unknown-unknown)"
                .into(),
        );
    }
    None
}

fn chromium() -> PathBuf {
    std::env::var_os("TRM_CHROMIUM").map_or("/usr/bin/chromium".into(), PathBuf::from)
}

/// Builds the site with `web/build.sh` into `out`.
fn build_site(out: &Path) {
    let o = Command::new(root().join("web/build.sh"))
        .env("TRM_WEB_OUT", out)
        .env_remove("CARGO_TARGET_DIR")
        .env_remove("CARGO_BUILD_TARGET")
        .env_remove("RUSTFLAGS")
        .env_remove("CARGO_ENCODED_RUSTFLAGS")
        .output()
        .expect("run web/build.sh");
    assert!(
        o.status.success(),
        "web/build.sh failed:\n{}",
        String::from_utf8_lossy(&o.stderr)
    );
}

/// Serves the files of `dir` on 127.0.0.1 (a thread per connection, GET only); returns the
/// base URL.
fn serve(dir: PathBuf) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("address");
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let dir = dir.clone();
            std::thread::spawn(move || {
                let mut reader = BufReader::new(&stream);
                let mut request = String::new();
                if reader.read_line(&mut request).is_err() {
                    return;
                }
                // Skip the headers.
                let mut line = String::new();
                while reader.read_line(&mut line).is_ok_and(|n| n > 2) {
                    line.clear();
                }
                let path = request.split_whitespace().nth(1).unwrap_or("/");
                let name = match path.trim_start_matches('/') {
                    "" => "index.html",
                    p => p,
                };
                let file = (!name.contains("..") && !name.contains('/'))
                    .then(|| std::fs::read(dir.join(name)).ok())
                    .flatten();
                let kind = match name.rsplit('.').next() {
                    Some("html") => "text/html; charset=utf-8",
                    Some("js") => "text/javascript",
                    Some("css") => "text/css",
                    Some("wasm") => "application/wasm",
                    _ => "application/octet-stream",
                };
                let mut out = &stream;
                let _ = match file {
                    Some(body) => out
                        .write_all(
                            format!(
                                "HTTP/1.1 200 OK\r\nContent-Type: {kind}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                                body.len()
                            )
                            .as_bytes(),
                        )
                        .and_then(|()| out.write_all(&body)),
                    None => out.write_all(
                        b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
                    ),
                };
            });
        }
    });
    format!("http://{addr}/")
}

/// A headless Chromium and one page, driven over the DevTools protocol on a pipe.
struct Browser {
    child: Child,
    to: ChildStdin,
    from: Receiver<Value>,
    next_id: u64,
    session: String,
}

impl Browser {
    fn launch(profile: &Path, log: &Path) -> Self {
        // The shell hands our pipes to Chromium as descriptors 3 (commands) and 4 (replies).
        let mut child = Command::new("sh")
            .arg("-c")
            .arg("exec \"$0\" \"$@\" 3<&0 4>&1 </dev/null >/dev/null")
            .arg(chromium())
            .args([
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-quic",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--remote-debugging-pipe",
                "--window-size=1200,1000",
            ])
            .arg(format!("--user-data-dir={}", profile.display()))
            .arg("about:blank")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(log).expect("browser log"))
            .spawn()
            .expect("start chromium");
        let to = child.stdin.take().expect("pipe");
        let mut out = child.stdout.take().expect("pipe");
        let (tx, from) = mpsc::channel();
        std::thread::spawn(move || {
            let mut buf = Vec::new();
            let mut chunk = [0u8; 65536];
            while let Ok(n) = out.read(&mut chunk) {
                if n == 0 {
                    break;
                }
                buf.extend_from_slice(&chunk[..n]);
                while let Some(end) = buf.iter().position(|&b| b == 0) {
                    let msg: Vec<u8> = buf.drain(..=end).collect();
                    if let Ok(v) = serde_json::from_slice(&msg[..end])
                        && tx.send(v).is_err()
                    {
                        return;
                    }
                }
            }
        });
        let mut b = Self {
            child,
            to,
            from,
            next_id: 0,
            session: String::new(),
        };
        let target = b.call("Target.createTarget", json!({"url": "about:blank"}));
        let target = target["targetId"].as_str().expect("target id").to_string();
        let attached = b.call(
            "Target.attachToTarget",
            json!({"targetId": target, "flatten": true}),
        );
        b.session = attached["sessionId"].as_str().expect("session").to_string();
        b.call("Page.enable", json!({}));
        b.call(
            "Emulation.setDeviceMetricsOverride",
            json!({"width": 1200, "height": 1000, "deviceScaleFactor": 1, "mobile": false}),
        );
        b
    }

    /// Sends a command (to the page once attached) and waits for its reply's result.
    fn call(&mut self, method: &str, params: Value) -> Value {
        self.next_id += 1;
        let id = self.next_id;
        let mut msg = json!({"id": id, "method": method, "params": params});
        if !self.session.is_empty() {
            msg["sessionId"] = Value::from(self.session.clone());
        }
        let mut bytes = serde_json::to_vec(&msg).expect("json");
        bytes.push(0);
        self.to.write_all(&bytes).expect("write to chromium");
        self.to.flush().expect("flush");
        let deadline = Instant::now() + Duration::from_secs(120);
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let reply = self
                .from
                .recv_timeout(left)
                .unwrap_or_else(|_| panic!("no reply to {method} from chromium"));
            if reply["id"].as_u64() == Some(id) {
                assert!(reply.get("error").is_none(), "{method}: {reply}");
                return reply["result"].clone();
            }
        }
    }

    /// Evaluates `js` in the page and returns its value.
    fn eval(&mut self, js: &str) -> Value {
        let r = self.call(
            "Runtime.evaluate",
            json!({"expression": js, "returnByValue": true, "awaitPromise": true}),
        );
        assert!(r.get("exceptionDetails").is_none(), "{js}: {r}");
        r["result"]["value"].clone()
    }

    /// Waits until `js` is true (polls every 50 ms).
    fn wait_for(&mut self, js: &str, what: &str, limit: Duration) {
        let start = Instant::now();
        while self.eval(js) != Value::Bool(true) {
            assert!(start.elapsed() < limit, "timed out waiting for {what}");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Clicks the middle of the element `id` with the mouse.
    fn click(&mut self, id: &str) {
        let r = self.eval(&format!(
            "(() => {{ const r = document.getElementById('{id}').getBoundingClientRect(); return [r.x + r.width / 2, r.y + r.height / 2]; }})()"
        ));
        let (x, y) = (r[0].as_f64().unwrap(), r[1].as_f64().unwrap());
        for kind in ["mousePressed", "mouseReleased"] {
            self.call(
                "Input.dispatchMouseEvent",
                json!({"type": kind, "x": x, "y": y, "button": "left", "clickCount": 1}),
            );
        }
    }

    /// Replaces the text of the text box `id` as a user pasting it.
    fn type_into(&mut self, id: &str, text: &str) {
        self.eval(&format!(
            "(() => {{ const e = document.getElementById('{id}'); e.focus(); e.select(); }})()"
        ));
        self.call("Input.insertText", json!({"text": text}));
    }

    /// Sets the form control `id` to `value` as a user would (a change event follows).
    fn set(&mut self, id: &str, value: &str) {
        let set = self.eval(&format!(
            "(() => {{ const e = document.getElementById('{id}'); e.value = {v}; e.dispatchEvent(new Event('change')); return e.value === {v}; }})()",
            v = Value::from(value)
        ));
        assert_eq!(set, Value::Bool(true), "{id} = {value}");
    }

    fn screenshot(&mut self, path: &Path) {
        let r = self.call(
            "Page.captureScreenshot",
            json!({"format": "png", "captureBeyondViewport": true}),
        );
        let png = base64_decode(r["data"].as_str().expect("screenshot data"));
        std::fs::write(path, png).expect("write screenshot");
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self
            .to
            .write_all(b"{\"id\":999999,\"method\":\"Browser.close\"}\0");
        let _ = self.to.flush();
        let start = Instant::now();
        while start.elapsed() < Duration::from_secs(10) {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn base64_decode(s: &str) -> Vec<u8> {
    let value = |c: u8| match c {
        b'A'..=b'Z' => c - b'A',
        b'a'..=b'z' => c - b'a' + 26,
        b'0'..=b'9' => c - b'0' + 52,
        b'+' => 62,
        b'/' => 63,
        _ => panic!("not base64: {c}"),
    };
    let mut out = Vec::with_capacity(s.len() * 3 / 4);
    let (mut acc, mut bits) = (0u32, 0);
    for c in s.bytes().filter(|&c| c != b'=') {
        acc = (acc << 6) | u32::from(value(c));
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
        }
    }
    out
}

/// One solve through the page and the same through the command line.
struct Case {
    puzzle: &'static str,
    budget: u32,
    policy: &'static str,
    /// Test-time scaling: attempts, source, selection, seed.
    tts: Option<(u32, &'static str, &'static str, u32)>,
}

impl Case {
    fn cli_args(&self) -> Vec<String> {
        let mut a = vec!["--budget".to_string(), self.budget.to_string()];
        match self.tts {
            None => a.extend(["--halt".into(), self.policy.into()]),
            Some((k, source, select, seed)) => a.extend([
                "--attempts".into(),
                k.to_string(),
                "--attempt-source".into(),
                source.into(),
                "--select".into(),
                select.into(),
                "--seed".into(),
                seed.to_string(),
            ]),
        }
        a
    }
}

const CASES: [Case; 5] = [
    // The page's first answer: its default puzzle and options.
    Case {
        puzzle: "8.....2...4...7..8..7.5.....7.9.316.6.3..1........6..5...47...3...1..6...8.3....2",
        budget: 16,
        policy: "check",
        tts: None,
    },
    Case {
        puzzle: "4.....8.5.3..........7......2.....6.....8.4......1.......6.3.7.5..2.....1.4......",
        budget: 5,
        policy: "full",
        tts: None,
    },
    Case {
        puzzle: ".2...8...1.8.79...6.....49...2......8.4..3..7.1...2...7..9.........1.64.5..8..2..",
        budget: 4,
        policy: "full",
        tts: Some((3, "mixed", "check", 5)),
    },
    Case {
        puzzle: "9.6.5..2......37.4....2............1....41.7..482......8..193....3...5..694..8...",
        budget: 6,
        policy: "q+check",
        tts: None,
    },
    Case {
        puzzle: "9..1.3.........8......5.97.......7244..8.....1.36......2...4..1..........945..6..",
        budget: 16,
        policy: "check",
        tts: None,
    },
];

#[test]
fn the_page_solves_puzzles_in_chromium_as_the_cli_does() {
    if let Some(why) = missing() {
        trm_testkit::missing_input(&format!("web page test: {why}"));
        return;
    }
    let tmp = Path::new(env!("CARGO_TARGET_TMPDIR")).join("web");
    let _ = std::fs::remove_dir_all(&tmp);
    std::fs::create_dir_all(tmp.join("profile")).expect("temp dir");
    let site = tmp.join("site");
    build_site(&site);
    let wasm_bytes = std::fs::metadata(site.join("trm_web.wasm"))
        .expect("wasm")
        .len();
    let url = serve(site);
    let artefacts = Path::new(env!("CARGO_TARGET_TMPDIR")).join("../web");
    std::fs::create_dir_all(&artefacts).expect("artefact dir");

    let mut b = Browser::launch(&tmp.join("profile"), &tmp.join("chromium.log"));
    b.call("Page.navigate", json!({"url": url}));
    b.wait_for(
        "document.getElementById('result')?.dataset.state === 'ready'",
        "the model to load",
        Duration::from_secs(60),
    );
    let model = root().join("models/sudoku-int8.trm");
    let mut step_ms = Vec::new();
    for (i, case) in CASES.iter().enumerate() {
        // Through the UI: options, the puzzle pasted into the text box, the button clicked.
        if i > 0 {
            b.set("budget", &case.budget.to_string());
            let tts = case.tts.is_some();
            b.eval(&format!(
                "(() => {{ const e = document.getElementById('tts'); if (e.checked !== {tts}) e.click(); }})()"
            ));
            match case.tts {
                None => b.set("policy", case.policy),
                Some((k, source, select, seed)) => {
                    b.set("attempts", &k.to_string());
                    b.set("source", source);
                    b.set("select", select);
                    b.set("seed", &seed.to_string());
                }
            }
            b.type_into("puzzle", case.puzzle);
        }
        b.click("solve");
        b.wait_for(
            "['done', 'error'].includes(document.getElementById('result').dataset.state)",
            "an answer",
            Duration::from_secs(300),
        );
        let text = b.eval("document.getElementById('result').textContent");
        let page: Value = serde_json::from_str(text.as_str().expect("result text"))
            .unwrap_or_else(|e| panic!("case {i}: the page reported {text} ({e})"));
        let shown = b.eval("document.getElementById('answer').textContent");
        assert!(
            shown
                .as_str()
                .is_some_and(|s| s.contains(page["answer"].as_str().unwrap())),
            "{shown}"
        );

        let input = tmp.join(format!("case{i}.txt"));
        std::fs::write(&input, format!("{}\n", case.puzzle)).expect("write puzzle");
        let mut args = vec![
            "--model".to_string(),
            model.display().to_string(),
            "--no-simd".into(),
            "--format".into(),
            "json".into(),
        ];
        args.extend(case.cli_args());
        args.push(input.display().to_string());
        let o = run(&args.iter().map(String::as_str).collect::<Vec<_>>());
        assert_eq!(code(&o), 0, "{}", stderr(&o));
        let cli: Value = serde_json::from_str(stdout(&o).trim()).expect("CLI JSON");
        let keys: &[&str] = match case.tts {
            None => &["answer", "steps", "stop", "valid"],
            Some(_) => &[
                "answer", "steps", "stop", "valid", "attempts", "pick", "attempt",
            ],
        };
        for key in keys {
            assert_eq!(
                page[key], cli[key],
                "case {i}, {key}: page {page}, CLI {cli}"
            );
        }
        let q = |v: &Value| v.as_f64().map(|q| q as f32);
        assert_eq!(q(&page["q_halt"]), q(&cli["q_halt"]), "case {i}: q_halt");
        let steps = page["steps"].as_u64().unwrap();
        let seen = page["stepMs"].as_array().expect("step times");
        assert_eq!(
            seen.len() as u64,
            steps,
            "case {i}: one step shown per step"
        );
        step_ms.push((page["ms"].as_f64().unwrap(), steps));
        eprintln!(
            "case {i}: {} in {steps} steps ({}), {:.0} ms in the browser",
            page["answer"],
            page["stop"],
            page["ms"].as_f64().unwrap()
        );
    }
    let rows = b.eval("document.querySelectorAll('#history tbody tr').length");
    assert_eq!(rows, Value::from(CASES.len()));
    let t = b.eval("window.trmTimings");
    let shot = artefacts.join("trm-web.png");
    b.screenshot(&shot);
    if let Some(rounds) = std::env::var("TRM_WEB_BENCH")
        .ok()
        .and_then(|v| v.parse().ok())
    {
        bench(&mut b, &tmp, &model, rounds);
    }
    drop(b);
    let (ms, steps) = step_ms
        .iter()
        .fold((0.0, 0), |(m, s), &(a, b)| (m + a, s + b));
    eprintln!(
        "wasm with the model: {wasm_bytes} bytes; ready {:.0} ms and first answer {:.0} ms after navigation; {:.1} ms per supervision step ({steps} steps); screenshot {}",
        t["readyMs"].as_f64().unwrap_or(f64::NAN),
        t["firstAnswerMs"].as_f64().unwrap_or(f64::NAN),
        ms / steps.max(1) as f64,
        shot.display()
    );
    assert!(std::fs::metadata(&shot).is_ok_and(|m| m.len() > 10_000));
}

/// `TRM_WEB_BENCH=N`: `N` rounds of one 16-step solve (policy full) in the page, each followed
/// by the same solve with `trm-solve --no-simd --threads 1` (its `latency p50`: the model
/// only); prints both per step and their ratio per round.
fn bench(b: &mut Browser, tmp: &Path, model: &Path, rounds: usize) {
    let puzzle = CASES[1].puzzle;
    let input = tmp.join("bench.txt");
    std::fs::write(&input, format!("{puzzle}\n")).expect("write puzzle");
    b.set("budget", "16");
    b.set("policy", "full");
    b.type_into("puzzle", puzzle);
    let mut ratios = Vec::new();
    for round in 0..rounds {
        b.click("solve");
        b.wait_for(
            "document.getElementById('result').dataset.state === 'done'",
            "an answer",
            Duration::from_secs(300),
        );
        let text = b.eval("document.getElementById('result').textContent");
        let page: Value = serde_json::from_str(text.as_str().unwrap()).unwrap();
        let web = page["ms"].as_f64().unwrap() / 16.0;
        let o = run(&[
            "--model",
            model.to_str().unwrap(),
            "--no-simd",
            "--threads",
            "1",
            "--budget",
            "16",
            input.to_str().unwrap(),
        ]);
        let err = stderr(&o);
        let native = err
            .lines()
            .find_map(|l| l.strip_prefix("latency p50: "))
            .and_then(|l| l.trim_end_matches(" ms").parse::<f64>().ok())
            .expect("latency line")
            / 16.0;
        ratios.push(web / native);
        eprintln!(
            "bench round {round}: browser {web:.1} ms/step, trm-solve --no-simd {native:.1} ms/step, ratio {:.2}",
            web / native
        );
    }
    ratios.sort_by(f64::total_cmp);
    eprintln!(
        "bench: median ratio browser / native scalar {:.2}",
        ratios[ratios.len() / 2]
    );
}
