//! The source registry as a whole (`jobforge sources`): every source's resolved file with its
//! size, modification time and SHA-256, whether it changed since the last run that read it,
//! and `sources pull`, which downloads sources that declare a `url`, atomically, checking a
//! declared SHA-256.

use crate::config::Project;
use crate::plan::resolve;
use crate::records::Fingerprint;
use crate::store::Store;
use chrono::{DateTime, Utc};
use serde::Serialize;
use sha2::{Digest, Sha256};
use std::io::Read;
use std::path::{Path, PathBuf};

/// Size, modification time and SHA-256 of a file.
pub fn fingerprint(path: &Path) -> std::io::Result<Fingerprint> {
    let meta = std::fs::metadata(path)?;
    let mut file = std::fs::File::open(path)?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 16];
    loop {
        let n = file.read(&mut buf)?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    Ok(Fingerprint {
        path: path.display().to_string(),
        size: meta.len(),
        modified: DateTime::<Utc>::from(meta.modified()?),
        sha256: hex(&hasher.finalize()),
    })
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// One source as it stands now.
#[derive(Debug, Serialize)]
pub struct SourceStatus {
    pub id: String,
    /// `unchanged`, `changed` (since the last run that read it), `new` (never read), `missing`.
    pub status: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub file: Option<Fingerprint>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// The status of every source in `sources.yml`.
pub fn status(project: &Project) -> Result<Vec<SourceStatus>, String> {
    let root = resolve::source_root(project)?;
    let runs = Store::open(&project.data_dir()).manifests();
    let last_seen = |id: &str| runs.iter().rev().find_map(|r| r.sources.get(id).filter(|s| s.sha256.is_some()));
    let listings = resolve::Listings::default();
    Ok(project
        .sources
        .sources
        .iter()
        .map(|(id, source)| {
            let resolved = resolve::resolve(project, &root, id, source, &listings)
                .and_then(|f| fingerprint(&f.path).map_err(|e| format!("{}: {e}", f.path.display())));
            match resolved {
                Ok(fp) => {
                    let status = match last_seen(id) {
                        None => "new",
                        Some(prev) if prev.sha256.as_deref() == Some(fp.sha256.as_str()) && prev.path == fp.path => {
                            "unchanged"
                        }
                        Some(_) => "changed",
                    };
                    SourceStatus { id: id.clone(), status: status.into(), file: Some(fp), error: None }
                }
                Err(e) => SourceStatus { id: id.clone(), status: "missing".into(), file: None, error: Some(e) },
            }
        })
        .collect())
}

/// A readable table of source statuses.
pub fn render_status(rows: &[SourceStatus]) -> String {
    let mut out = String::new();
    for r in rows {
        match &r.file {
            Some(f) => out.push_str(&format!(
                "{:<32} {:<9} {:>10} B  {}  sha256:{}  {}\n",
                r.id,
                r.status,
                f.size,
                f.modified.format("%Y-%m-%d %H:%M:%S"),
                &f.sha256[..16],
                f.path
            )),
            None => out.push_str(&format!("{:<32} {:<9} {}\n", r.id, r.status, r.error.as_deref().unwrap_or(""))),
        }
    }
    out
}

/// One line per pulled source.
pub fn render_pull(rows: &[PullOutcome]) -> String {
    rows.iter()
        .map(|r| {
            let verdict = if r.ok { "pulled" } else { "FAILED" };
            format!("{verdict} {}: {} -> {}: {}\n", r.id, r.url, r.path.display(), r.message)
        })
        .collect()
}

/// What `sources pull` did for one source.
#[derive(Debug, Serialize)]
pub struct PullOutcome {
    pub id: String,
    pub url: String,
    pub path: PathBuf,
    pub ok: bool,
    pub message: String,
}

/// Downloads every source with a `url` (or only `only`, when given) to its path under the
/// source root. The file is replaced atomically and only when the declared SHA-256 matches.
pub fn pull(project: &Project, only: &[String]) -> Result<Vec<PullOutcome>, String> {
    let root = resolve::source_root(project)?;
    for id in only {
        if !project.sources.sources.contains_key(id) {
            let hint =
                crate::diag::did_you_mean(id, project.sources.sources.keys().map(String::as_str)).unwrap_or_default();
            return Err(format!("no source `{id}` in sources.yml {hint}"));
        }
    }
    let mut out = Vec::new();
    for (id, source) in &project.sources.sources {
        let Some(url) = &source.url else { continue };
        if !only.is_empty() && !only.contains(id) {
            continue;
        }
        let name = match &source.path {
            Some(p) => crate::config::template::render(p, &project.vars, None)?,
            None => {
                // Into the folder of the first pattern (`noc/` of `noc/structure*.csv`), so the
                // pattern finds the file.
                let file = url.rsplit('/').next().filter(|n| !n.is_empty()).unwrap_or(id).to_string();
                let pattern = match source.pattern.first() {
                    Some(p) => crate::config::template::render(p, &project.vars, None)?,
                    None => String::new(),
                };
                match std::path::Path::new(&pattern).parent() {
                    Some(dir) if !dir.as_os_str().is_empty() && !dir.to_string_lossy().contains(['*', '?', '[']) => {
                        dir.join(file).to_string_lossy().to_string()
                    }
                    _ => file,
                }
            }
        };
        // A download lands under the source root, never beside or above it.
        resolve::stays_under_root(&name)
            .map_err(|m| format!("source `{id}`: `{name}` {m} {}; nothing was downloaded", root.display()))?;
        let path = root.join(name);
        let result = download(url).and_then(|bytes| {
            let sha = hex(&Sha256::digest(&bytes));
            match &source.sha256 {
                Some(expected) if !expected.eq_ignore_ascii_case(&sha) => {
                    Err(format!("SHA-256 mismatch: expected {expected}, got {sha}; the file was not written"))
                }
                _ => crate::atomic::write_bytes(&path, &bytes)
                    .map(|_| format!("{} bytes, sha256 {sha}", bytes.len()))
                    .map_err(|e| e.to_string()),
            }
        });
        let (ok, message) = match result {
            Ok(m) => (true, m),
            Err(m) => (false, m),
        };
        out.push(PullOutcome { id: id.clone(), url: url.clone(), path, ok, message });
    }
    Ok(out)
}

fn download(url: &str) -> Result<Vec<u8>, String> {
    let mut response = ureq::get(url).call().map_err(|e| format!("GET {url}: {e}"))?;
    response.body_mut().with_config().limit(u64::MAX).read_to_vec().map_err(|e| format!("GET {url}: {e}"))
}
