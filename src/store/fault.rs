//! Fault injection for crash tests: when `JOBFORGE_FAULT` names a point the store passes, the
//! process aborts there, as a kill would stop it. Points: `write:<layer>/<table>` (after a run
//! file is written), `write:tables.json`, `write:transitions.json`, `barrier`, `commit`
//! (manifest written, not yet renamed), `committed`, `publish` (new pointer made, not yet
//! renamed), `published`, `retention` (old manifests removed, their folders not yet).

use std::sync::OnceLock;

/// The environment variable naming the point to abort at.
pub const ENV: &str = "JOBFORGE_FAULT";

/// Every point a test can name, in the order a run passes them (writes excluded).
pub const POINTS: [&str; 7] = ["barrier", "commit", "committed", "publish", "published", "retention", "recovered"];

/// Aborts the process when `point` is the configured fault point.
pub fn point(point: &str) {
    static CONFIGURED: OnceLock<Option<String>> = OnceLock::new();
    let configured = CONFIGURED.get_or_init(|| std::env::var(ENV).ok().filter(|v| !v.is_empty()));
    if configured.as_deref() == Some(point) {
        eprintln!("jobforge: fault injected at `{point}`");
        std::process::abort();
    }
}
