//! Alerts: a failed run posts a JSON message to each webhook in `JOBFORGE_ALERT_WEBHOOK`, with
//! retries and a time limit, never failing the run and never printing the URL. The webhooks
//! here are local HTTP servers: one that takes the message, one that answers 500, one that
//! never answers.

use crate::common::*;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::Duration;

type Received = Arc<Mutex<Vec<String>>>;

/// A webhook on a free local port answering `status` (or never); returns its URL (with a token
/// in the path, as real webhooks have) and the bodies it received.
fn webhook(status: Option<u16>) -> (String, Received) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/hooks/T0KEN-{}", listener.local_addr().unwrap(), status.unwrap_or(0));
    let received: Received = Arc::default();
    let bodies = received.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let bodies = bodies.clone();
            std::thread::spawn(move || {
                let body = read_body(&mut stream);
                bodies.lock().unwrap().push(body);
                match status {
                    Some(code) => {
                        let _ = write!(stream, "HTTP/1.1 {code} X\r\ncontent-length: 0\r\nconnection: close\r\n\r\n");
                    }
                    None => std::thread::sleep(Duration::from_secs(120)),
                }
            });
        }
    });
    (url, received)
}

fn read_body(stream: &mut TcpStream) -> String {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 8192];
    loop {
        let n = stream.read(&mut chunk).unwrap_or(0);
        if n == 0 {
            return String::new();
        }
        buf.extend_from_slice(&chunk[..n]);
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&buf[..end]).to_lowercase();
            let length = head
                .lines()
                .find_map(|l| l.strip_prefix("content-length:"))
                .and_then(|v| v.trim().parse::<usize>().ok())
                .unwrap_or(0);
            if buf.len() >= end + 4 + length {
                return String::from_utf8_lossy(&buf[end + 4..end + 4 + length]).to_string();
            }
        }
    }
}

#[test]
fn a_failed_run_alerts_every_webhook_and_a_bad_webhook_changes_nothing() {
    let (good, taken) = webhook(Some(200));
    let (broken, refused) = webhook(Some(500));
    let (silent, _) = webhook(None);
    let hooks = format!("{good}, {broken}\n{silent}");
    let env = [("JOBFORGE_ALERT_WEBHOOK", hooks.as_str()), ("JOBFORGE_ALERT_TIMEOUT_SECS", "2")];
    let p = Project::sample();
    // A successful run alerts no one.
    ok(&p.jobforge_env(&["run", "pipelines"], &env));
    assert!(taken.lock().unwrap().is_empty());
    // A table that fails its checks fails the run.
    p.edit("pipelines/dim_noc.yml", "checks:\n", "checks:\n  - row_count: { max: 1 }\n    name: tiny\n");
    let out = p.jobforge_env(&["run", "pipelines", "--full-refresh", "--select", "dim_noc"], &env);
    assert_eq!(out.status.code(), Some(1), "the run's own exit code: {}", stderr(&out));
    let bodies = taken.lock().unwrap().clone();
    assert_eq!(bodies.len(), 1, "one message: {bodies:?}");
    let message: serde_json::Value = serde_json::from_str(&bodies[0]).unwrap();
    let text = message["text"].as_str().unwrap();
    assert!(text.contains("failed") && text.contains("dim_noc failed: check failed: `tiny`"), "{text}");
    assert_eq!(message["jobforge"]["event"], "run_failed");
    assert_eq!(message["jobforge"]["tables"][0]["table"], "dim_noc");
    assert_eq!(refused.lock().unwrap().len(), 3, "three attempts at the webhook that answers 500");
    let err = stderr(&out);
    assert!(err.contains("alert webhook #2: not delivered after 3 attempts") && err.contains("500"), "{err}");
    assert!(err.contains("alert webhook #3: not delivered") && err.contains("no answer"), "{err}");
    assert!(!format!("{err}{}", stdout(&out)).contains("T0KEN"), "webhook URLs are never printed");
    // `jobforge check` alerts on failed `error` checks too.
    let out = p.jobforge_env(&["check", "dim_noc"], &[("JOBFORGE_ALERT_WEBHOOK", good.as_str())]);
    assert_eq!(out.status.code(), Some(1));
    let bodies = taken.lock().unwrap().clone();
    let message: serde_json::Value = serde_json::from_str(bodies.last().unwrap()).unwrap();
    assert_eq!(message["jobforge"]["event"], "checks_failed");
    assert_eq!(message["jobforge"]["checks"][0]["check"], "tiny");
}
