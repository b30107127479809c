//! The HTML report renders its charts in a real browser: headless Chromium
//! loads the page offline and the rendered DOM holds every chart's drawing.
//! Skipped, saying so, where /usr/bin/chromium is not installed.

mod support;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const CHROMIUM: &str = "/usr/bin/chromium";

#[test]
fn report_renders_in_headless_chromium() {
    if !Path::new(CHROMIUM).exists() {
        eprintln!("skipped: {CHROMIUM} is not installed (apt-get install chromium)");
        return;
    }
    let dir = support::out_dir("render");
    support::short_suite(&dir);
    let page = dir.join("report.html");
    let url = format!("file://{}", page.display());
    let profile = dir.join("chromium-profile");
    let common = [
        "--headless".to_string(),
        "--no-sandbox".to_string(),
        "--disable-gpu".to_string(),
        "--no-first-run".to_string(),
        format!("--user-data-dir={}", profile.display()),
    ];

    let dom = chromium(&common, &["--dump-dom".to_string(), url.clone()]);
    let charts = 1 + 2 * stormlab::ScenarioKind::ALL.len();
    assert_eq!(
        dom.matches("<svg").count(),
        charts,
        "every chart in the DOM"
    );
    assert!(dom.contains("<polyline"), "line charts drew their lines");
    assert!(dom.contains("<rect"), "the summary drew its bars");

    let shot = dir.join("report.png");
    chromium(
        &common,
        &[
            format!("--screenshot={}", shot.display()),
            "--window-size=1280,2000".to_string(),
            url,
        ],
    );
    let size = std::fs::metadata(&shot).map(|m| m.len()).unwrap_or(0);
    assert!(
        size > 20_000,
        "the screenshot is nearly empty ({size} bytes)"
    );
}

/// Runs Chromium to completion (at most a minute) and returns its stdout.
fn chromium(common: &[String], args: &[String]) -> String {
    let mut child = Command::new(CHROMIUM)
        .args(common)
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start chromium");
    let started = Instant::now();
    let mut stdout = child.stdout.take().expect("piped stdout");
    let reader = std::thread::spawn(move || {
        let mut text = String::new();
        let _ = std::io::Read::read_to_string(&mut stdout, &mut text);
        text
    });
    loop {
        match child.try_wait().expect("wait for chromium") {
            Some(status) => {
                assert!(status.success(), "chromium failed: {status}");
                break;
            }
            None if started.elapsed() > Duration::from_secs(60) => {
                let _ = child.kill();
                panic!("chromium did not finish within a minute");
            }
            None => std::thread::sleep(Duration::from_millis(50)),
        }
    }
    reader.join().expect("read chromium's output")
}
