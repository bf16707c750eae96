//! Fault injection for tests: when `JOBFORGE_FAULT` names a point the process passes, it aborts
//! there, as a kill would stop it (`point`), or panics (`panic_point`). Store points:
//! `write:<layer>/<table>` (after a run file is written), `write:records` (after the
//! records), `barrier`, `commit` (manifest written, not yet renamed),
//! `committed`, `publish` (new pointer made, not yet renamed), `published`, `retention` (old
//! manifests removed, their folders not yet). Executor points: `panic:<layer>/<table>` (a
//! panic while building that layer).

use std::sync::OnceLock;

/// The environment variable naming the point to abort at.
pub const ENV: &str = "JOBFORGE_FAULT";

fn configured() -> Option<&'static str> {
    static CONFIGURED: OnceLock<Option<String>> = OnceLock::new();
    CONFIGURED.get_or_init(|| std::env::var(ENV).ok().filter(|v| !v.is_empty())).as_deref()
}

/// Aborts the process when `point` is the configured fault point.
pub fn point(point: &str) {
    if configured() == Some(point) {
        eprintln!("jobforge: fault injected at `{point}`");
        std::process::abort();
    }
}

/// Panics when `point` is the configured fault point.
pub fn panic_point(point: &str) {
    if configured() == Some(point) {
        panic!("fault injected at `{point}`");
    }
}
