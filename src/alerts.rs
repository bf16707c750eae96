//! Alerts: a failed run, a failed table or a failed `error` check posts a JSON message to every
//! webhook named in `JOBFORGE_ALERT_WEBHOOK` (one or more URLs, separated by spaces, commas or
//! new lines). The body is Slack-compatible (`text`) with the details beside it (`jobforge`).
//! Each webhook is tried up to three times within a time limit (`JOBFORGE_ALERT_TIMEOUT_SECS`,
//! default 10), all at once; a webhook that fails is reported by its position, never by its URL
//! (which holds a secret), and never fails the command that raised the alert.

use serde_json::{json, Value};
use std::time::{Duration, Instant};

/// The environment variable holding the webhook URLs.
pub const WEBHOOKS: &str = "JOBFORGE_ALERT_WEBHOOK";
/// The environment variable holding the time limit, in seconds.
pub const TIMEOUT: &str = "JOBFORGE_ALERT_TIMEOUT_SECS";

const ATTEMPTS: u32 = 3;

/// One alert: a line for people and the details for programs.
#[derive(Debug, Clone)]
pub struct Alert {
    pub text: String,
    pub details: Value,
}

impl Alert {
    /// The webhook body.
    pub fn body(&self) -> Value {
        json!({ "text": self.text, "jobforge": self.details })
    }
}

fn webhooks() -> Vec<String> {
    std::env::var(WEBHOOKS)
        .unwrap_or_default()
        .split(|c: char| c.is_whitespace() || c == ',')
        .filter(|u| !u.is_empty())
        .map(str::to_string)
        .collect()
}

/// Posts `alert` to every configured webhook; returns what went wrong, one line per webhook
/// that did not take it (empty when none is configured or all took it).
pub fn send(alert: &Alert) -> Vec<String> {
    let hooks = webhooks();
    if hooks.is_empty() {
        return vec![];
    }
    let limit = std::env::var(TIMEOUT)
        .ok()
        .and_then(|s| s.trim().parse::<f64>().ok())
        .filter(|s| *s > 0.0)
        .map_or(Duration::from_secs(10), Duration::from_secs_f64);
    let body = alert.body().to_string();
    std::thread::scope(|scope| {
        let handles: Vec<_> = hooks
            .iter()
            .enumerate()
            .map(|(i, url)| {
                let body = &body;
                scope.spawn(move || post(url, body, limit).err().map(|e| format!("alert webhook #{}: {e}", i + 1)))
            })
            .collect();
        handles.into_iter().filter_map(|h| h.join().ok().flatten()).collect()
    })
}

/// Posts `body` to `url` until it is taken (a 2xx answer), at most `ATTEMPTS` times within
/// `limit`. Errors never contain the URL.
fn post(url: &str, body: &str, limit: Duration) -> Result<(), String> {
    let deadline = Instant::now() + limit;
    let mut last = String::new();
    for attempt in 0..ATTEMPTS {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            break;
        }
        let agent: ureq::Agent =
            ureq::Agent::config_builder().timeout_global(Some(left)).http_status_as_error(false).build().into();
        match agent.post(url).header("content-type", "application/json").send(body) {
            Ok(r) if r.status().is_success() => return Ok(()),
            Ok(r) => last = format!("answered {}", r.status()),
            Err(ureq::Error::Timeout(_)) => last = "no answer within the time limit".into(),
            Err(e) => last = describe(&e),
        }
        // Back off a little before the next attempt, within the limit.
        let pause = Duration::from_millis(250 * 2u64.pow(attempt));
        std::thread::sleep(pause.min(deadline.saturating_duration_since(Instant::now())));
    }
    Err(format!("not delivered after {ATTEMPTS} attempts within {:.0?}: {last}", limit))
}

/// The kind of failure, without the URL the error text may repeat.
fn describe(e: &ureq::Error) -> String {
    match e {
        ureq::Error::Io(io) => format!("connection failed ({})", io.kind()),
        ureq::Error::HostNotFound => "host not found".into(),
        ureq::Error::ConnectionFailed => "connection failed".into(),
        ureq::Error::BadUri(_) => "not a valid URL".into(),
        _ => "request failed".into(),
    }
}

/// Sends `alert` and reports failures on stderr (the command goes on either way).
pub fn raise(alert: &Alert) {
    for problem in send(alert) {
        eprintln!("warning: {problem}");
    }
}

/// The alert of a run that did not succeed: the tables that failed or were skipped, and why.
pub fn for_run(summary: &crate::exec::RunSummary) -> Option<Alert> {
    if summary.succeeded() {
        return None;
    }
    let m = &summary.manifest;
    let bad: Vec<_> = summary.outcomes.iter().filter(|o| o.status == "failed" || o.status == "skipped").collect();
    let lines: Vec<String> =
        bad.iter().map(|o| format!("{} {}: {}", o.table, o.status, o.error.as_deref().unwrap_or("-"))).collect();
    Some(Alert {
        text: format!("jobforge run #{} ({}) failed: {}", m.seq, m.run_id, lines.join("; ")),
        details: json!({
            "event": "run_failed",
            "run_id": m.run_id,
            "seq": m.seq,
            "status": m.status,
            "tables": bad.iter().map(|o| json!({ "table": o.table, "status": o.status, "error": o.error })).collect::<Vec<_>>(),
        }),
    })
}

/// The alert of a run that stopped before it could commit.
pub fn for_run_error(error: &str) -> Alert {
    Alert { text: format!("jobforge run failed: {error}"), details: json!({ "event": "run_error", "error": error }) }
}

/// The alert of `jobforge check` finding failed `error` checks.
pub fn for_checks(m: &crate::store::Manifest, results: &[crate::records::CheckResult]) -> Option<Alert> {
    let failed: Vec<_> = results.iter().filter(|r| r.fails_table()).collect();
    if failed.is_empty() {
        return None;
    }
    let lines: Vec<String> = failed.iter().map(|r| format!("{}.{}: {}", r.table, r.check, r.message)).collect();
    Some(Alert {
        text: format!(
            "jobforge check of run #{} ({}): {} check(s) failed: {}",
            m.seq,
            m.run_id,
            failed.len(),
            lines.join("; ")
        ),
        details: json!({ "event": "checks_failed", "run_id": m.run_id, "seq": m.seq, "checks": failed }),
    })
}
