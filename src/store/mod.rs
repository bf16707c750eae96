//! The data folder, owned by this module alone: where each (layer, table) lives, how a run
//! commits, what readers see.
//!
//! ```text
//! data/.lock                     writer lock (one writer; readers never take it to read)
//! data/runs/<run id>/            a complete snapshot, never changed once committed:
//!     <layer>/<table>.parquet    staged, bronze, silver, gold; quarantine/<table>.parquet
//!     tables.json                table metadata of each (layer, table) the run built
//!     transitions.json           the transition logs of the run
//!     checks.json                the results of the data-quality checks it evaluated
//!     carried/<kind>/<table>.json   the same three of each table it did not build
//!     config.json                the YAML the run compiled: {"sources.yml": text, "pipelines/<file>": text}
//! data/manifests/<seq>.json      the commits, one per run or rollback; the highest is current
//! data/current -> runs/<id>      the published snapshot
//! data/pruned/<run id>/          runs retention dropped, removed by the next writer
//! data/cache/pipelines.jsonl    pipeline files as parsed by the last run (`config::parsed`)
//! data/<layer> -> current/<layer>   the stable paths users and Power BI read
//! ```
//!
//! A run writes its files into a new folder without syncing each, makes them durable with one
//! barrier, then commits by writing its manifest atomically; only then is `current` switched
//! (one atomic rename publishes every layer at once). Tables a run did not rebuild (not
//! selected, failed, skipped) are carried into the new folder as hard links of their previous
//! version, files and records alike, so every snapshot is whole (before manifest format 2, a
//! snapshot kept the records of every table in its three files). A command that finds a
//! committed but unpublished run publishes it; one that finds an uncommitted folder removes it.
//! Readers go through the manifest and never block.

mod carried;
pub mod lock;
pub mod manifest;
pub mod names;
mod writer;

use crate::fault;
use crate::records::{TableMetadata, TransitionLog};
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

pub use lock::{Lock, Wait};
pub use manifest::{FileEntry, Manifest, RunInputs, SeenFile, SourceFile, TableEntry};
pub use writer::{NewFile, RunResult, RunWriter};

/// Runs kept (their manifests and files) unless told otherwise.
pub const DEFAULT_KEEP: usize = 5;
/// The folders of a snapshot with a stable path `data/<name>`.
pub const STABLE: [&str; 5] = ["staged", "bronze", "silver", "gold", "quarantine"];

const RUNS: &str = "runs";
const MANIFESTS: &str = "manifests";
const CURRENT: &str = "current";
const PRUNED: &str = "pruned";
/// Pruned runs not yet removed past which their removal stops yielding to the run.
const PRUNED_BEHIND: usize = 2;

/// A project's data folder.
#[derive(Debug, Clone)]
pub struct Store {
    data: PathBuf,
}

impl Store {
    /// The store at `data`, as it is on disk (no recovery).
    pub fn at(data: &Path) -> Store {
        Store { data: data.to_path_buf() }
    }

    /// Opens the data folder for reading. When no writer holds it and a run was committed but not
    /// published, or left files it never committed, this finishes or removes them first.
    pub fn open(data: &Path) -> Store {
        let store = Store::at(data);
        if store.needs_recovery() {
            if let Ok(Some(_lock)) = Lock::try_acquire(data, lock::RECOVERING) {
                if let Err(e) = store.recover() {
                    tracing::warn!("cannot recover the data folder {}: {e}", data.display());
                }
            }
        }
        store
    }

    pub fn data(&self) -> &Path {
        &self.data
    }

    /// Every committed manifest, oldest first.
    pub fn manifests(&self) -> Vec<Manifest> {
        let mut all: Vec<Manifest> = manifest_paths(&self.data).iter().filter_map(|p| read_manifest(p)).collect();
        all.sort_by_key(|m| m.seq);
        all
    }

    /// The sequence number and folder of every committed manifest, oldest first: what recovery
    /// and retention need, without reading the rest (a manifest lists every table).
    fn heads(&self) -> Vec<manifest::ManifestHead> {
        let mut heads: Vec<manifest::ManifestHead> =
            manifest_paths(&self.data).iter().filter_map(|p| head_of(p)).collect();
        heads.sort_by_key(|h| h.seq);
        heads
    }

    /// The current (latest committed) snapshot.
    pub fn latest(&self) -> Option<Manifest> {
        let last = manifest_paths(&self.data).into_iter().max()?;
        parse_manifest(std::fs::read(last).ok()?)
    }

    /// The snapshot `id` names: `latest`, a sequence number, a run id or a unique prefix of one.
    /// Keeps the record of a warehouse load: `loads/<time>-<seq>.json`.
    pub fn record_load(&self, record: &serde_json::Value) -> Result<(), String> {
        self.record("loads", record)
    }

    /// Keeps the record of a `jobforge check` on a committed run: `checks/<time>-<seq>.json`.
    pub fn record_check(&self, record: &serde_json::Value) -> Result<(), String> {
        self.record("checks", record)
    }

    /// Writes `record` (with its run's `seq`) as `<kind>/<time>-<seq>.json`.
    fn record(&self, kind: &str, record: &serde_json::Value) -> Result<(), String> {
        let dir = self.data.join(kind);
        std::fs::create_dir_all(&dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
        let seq = record["seq"].as_u64().unwrap_or(0);
        let path = dir.join(format!("{}-{seq:06}.json", chrono::Utc::now().format("%Y%m%dT%H%M%S%.6fZ")));
        crate::atomic::write_json(&path, record).map_err(|e| format!("cannot write {}: {e}", path.display()))
    }

    /// The kept run `id`: `latest`, a sequence number, or a run id or its prefix.
    pub fn find(&self, id: &str) -> Result<Manifest, String> {
        let all = self.manifests();
        if all.is_empty() {
            return Err(format!("no committed run in {}; run `jobforge run` first", self.data.display()));
        }
        if id == "latest" {
            return Ok(all[all.len() - 1].clone());
        }
        if let Ok(seq) = id.parse::<u64>() {
            if let Some(m) = all.iter().find(|m| m.seq == seq) {
                return Ok(m.clone());
            }
        }
        // A number is a sequence number; as a run id prefix it must be long enough not to be
        // one by chance (`99` would otherwise match one run id in 256).
        let prefix = !id.is_empty() && (id.parse::<u64>().is_err() || id.len() >= 8);
        let matches: Vec<&Manifest> = all.iter().filter(|m| prefix && m.run_id.starts_with(id)).collect();
        match matches.as_slice() {
            [one] => Ok((*one).clone()),
            [] => Err(format!(
                "no kept run `{id}`; kept: {}",
                all.iter()
                    .map(|m| format!("{} ({})", m.seq, &m.run_id[..8.min(m.run_id.len())]))
                    .collect::<Vec<_>>()
                    .join(", ")
            )),
            many => Err(format!("`{id}` names {} runs; give more of the id", many.len())),
        }
    }

    /// The latest snapshot, or `id`'s when given.
    pub fn snapshot(&self, id: Option<&str>) -> Result<Manifest, String> {
        match id {
            Some(id) => self.find(id),
            None => self
                .latest()
                .ok_or_else(|| format!("no committed run in {}; run `jobforge run` first", self.data.display())),
        }
    }

    /// A path relative to the data folder, made absolute.
    pub fn path(&self, rel: &str) -> PathBuf {
        self.data.join(rel)
    }

    /// The stable path of a table's layer file, `data/<layer>/<table>.parquet`.
    pub fn stable_file(&self, layer: &str, table: &str) -> PathBuf {
        self.data.join(layer).join(format!("{table}.parquet"))
    }

    /// Table name -> file of every table the snapshot holds at `layer`.
    pub fn layer_files(&self, m: &Manifest, layer: &str) -> BTreeMap<String, PathBuf> {
        m.layer(layer).map(|(name, f)| (name.clone(), self.path(&f.path))).collect()
    }

    /// The table metadata the snapshot recorded, by table then layer.
    pub fn table_metadata(&self, m: &Manifest) -> Vec<TableMetadata> {
        let mut all: Vec<TableMetadata> = self.records(m, RecordKind::Tables);
        all.sort_by(|a, b| (&a.name, &a.layer).cmp(&(&b.name, &b.layer)));
        all
    }

    /// The transition logs that built the snapshot's tables, in the order they started.
    pub fn transitions(&self, m: &Manifest) -> Vec<TransitionLog> {
        let mut logs: Vec<TransitionLog> = self.records(m, RecordKind::Transitions);
        logs.sort_by(|a, b| (a.started_at, &a.table).cmp(&(b.started_at, &b.table)));
        logs
    }

    /// The results of the data-quality checks of the snapshot's tables, by table then check.
    pub fn checks(&self, m: &Manifest) -> Vec<crate::records::CheckResult> {
        let mut all: Vec<crate::records::CheckResult> = self.records(m, RecordKind::Checks);
        all.sort_by(|a, b| (&a.table, &a.check).cmp(&(&b.table, &b.check)));
        all
    }

    /// Every record of one kind the snapshot holds, table by table (an unreadable file has none).
    fn records<T: serde::de::DeserializeOwned>(&self, m: &Manifest, kind: RecordKind) -> Vec<T> {
        let mut all = Vec::new();
        for file in self.record_files(m, kind) {
            all.extend(read_json_or_default::<Vec<T>>(&file));
        }
        all
    }

    /// The JSON files (each an array) of the snapshot's records of one kind: those of the
    /// tables its run built, then one per table it did not build, in table order. For DuckDB
    /// views.
    pub fn record_files(&self, m: &Manifest, kind: RecordKind) -> Vec<PathBuf> {
        let folder = self.path(&m.folder);
        let built = folder.join(kind.built_file());
        let carried = self.carried_record_tables(m, kind).into_iter().map(|t| kind.carried_file(&folder, &t));
        built.exists().then_some(built).into_iter().chain(carried).collect()
    }

    /// The tables of which the snapshot holds records of one kind in a file of their own
    /// (`carried/<kind>/<table>.json`), sorted.
    fn carried_record_tables(&self, m: &Manifest, kind: RecordKind) -> Vec<String> {
        let dir = self.path(&m.folder).join(kind.carried_dir());
        let entries = std::fs::read_dir(dir).into_iter().flatten().filter_map(|e| e.ok());
        let mut tables: Vec<String> =
            entries.filter_map(|e| e.file_name().to_str()?.strip_suffix(".json").map(str::to_string)).collect();
        tables.sort();
        tables
    }

    /// The file of the pipeline files' kept parses (`config::parsed`): no snapshot's, read by
    /// any command, written by runs.
    pub fn parsed_pipelines_file(&self) -> PathBuf {
        self.data.join("cache").join("pipelines.jsonl")
    }

    /// The YAML the snapshot's run compiled, by path in the project (`sources.yml`,
    /// `pipelines/<file>`), and where it is kept (named in messages).
    pub fn recorded_config(&self, m: &Manifest) -> Result<(PathBuf, BTreeMap<String, String>), String> {
        let folder = self.path(&m.folder);
        let file = folder.join(writer::CONFIG_FILE);
        match std::fs::read(&file) {
            Ok(json) => serde_json::from_slice(&json)
                .map(|texts| (file.clone(), texts))
                .map_err(|e| format!("cannot read {}: {e}", file.display())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && folder.join(writer::CONFIG_DIR).is_dir() => {
                old_recorded_config(&folder.join(writer::CONFIG_DIR))
            }
            Err(e) => Err(format!("cannot read {}: {e}", file.display())),
        }
    }

    /// Starts a run: takes the writer lock, recovers, and reads the current snapshot (the run
    /// makes its folder when it has something to write: `RunWriter::make_folder`).
    pub fn begin_run(&self, wait: Wait) -> Result<RunWriter, String> {
        let run_id = uuid::Uuid::new_v4().to_string();
        let lock = Lock::acquire(&self.data, &format!("run {run_id}"), wait)?;
        self.recover()?;
        self.remove_pruned();
        Ok(RunWriter::new(self.clone(), lock, run_id))
    }

    /// Republishes the snapshot `id` names as a new commit, atomically.
    pub fn rollback(&self, id: &str, wait: Wait, keep: usize) -> Result<Manifest, String> {
        let _lock = Lock::acquire(&self.data, &format!("rollback to {id}"), wait)?;
        self.recover()?;
        let target = self.find(id)?;
        let latest = self.latest();
        let now = chrono::Utc::now();
        let mut m = target.clone();
        m.seq = latest.as_ref().map_or(1, |l| l.seq + 1);
        m.kind = "rollback".into();
        m.rollback_of = Some(target.run_id.clone());
        m.committed_at = now;
        self.commit(&m).map_err(|e| format!("cannot commit the rollback: {e}"))?;
        self.publish(&m).map_err(|e| format!("cannot publish the rollback: {e}"))?;
        self.prune(keep);
        Ok(m)
    }

    /// Writes `m` as the next manifest: temporary file, fsync, rename, fsync of the folder.
    fn commit(&self, m: &Manifest) -> std::io::Result<()> {
        let pending = self.write_pending(m, true)?;
        self.commit_pending(pending)
    }

    /// Writes `m` to a temporary file beside the manifests, fsynced when `sync` (else the
    /// caller makes it durable), not yet committed (see `commit_pending`); recovery removes it if
    /// the run ends before.
    fn write_pending(&self, m: &Manifest, sync: bool) -> std::io::Result<PendingManifest> {
        let dir = self.data.join(MANIFESTS);
        std::fs::create_dir_all(&dir)?;
        let name = format!("{:06}.json", m.seq);
        let tmp = dir.join(format!(".{name}.tmp"));
        let bytes = serde_json::to_vec_pretty(m).map_err(std::io::Error::other)?;
        {
            use std::io::Write;
            let mut f = std::fs::File::create(&tmp)?;
            f.write_all(&bytes)?;
            if sync {
                f.sync_all()?;
            }
        }
        Ok(PendingManifest {
            tmp,
            path: dir.join(name),
            head: manifest::ManifestHead { seq: m.seq, folder: m.folder.clone() },
        })
    }

    /// Commits a pending manifest whose file is durable: renames it into place and syncs the
    /// folder.
    fn commit_pending(&self, pending: PendingManifest) -> std::io::Result<()> {
        fault::point("commit");
        std::fs::rename(&pending.tmp, &pending.path)?;
        remember_head(&pending.path, pending.head);
        sync_dir(&self.data.join(MANIFESTS))?;
        fault::point("committed");
        Ok(())
    }

    /// Points `current` at the snapshot's folder (one atomic rename) and makes sure every stable
    /// path leads through it.
    fn publish(&self, m: &Manifest) -> std::io::Result<()> {
        let tmp = self.data.join(format!(".{CURRENT}.tmp"));
        let _ = std::fs::remove_file(&tmp);
        symlink(Path::new(&m.folder), &tmp)?;
        fault::point("publish");
        std::fs::rename(&tmp, self.data.join(CURRENT))?;
        for layer in STABLE {
            self.ensure_stable_link(layer)?;
        }
        sync_dir(&self.data)?;
        fault::point("published");
        Ok(())
    }

    /// `data/<layer>` as a link to `current/<layer>`; a folder left by an older jobforge is
    /// replaced (its files are in no snapshot).
    fn ensure_stable_link(&self, layer: &str) -> std::io::Result<()> {
        let path = self.data.join(layer);
        let target = Path::new(CURRENT).join(layer);
        match std::fs::symlink_metadata(&path) {
            Ok(meta) if meta.file_type().is_symlink() => {
                if std::fs::read_link(&path)? == target {
                    return Ok(());
                }
                std::fs::remove_file(&path)?;
            }
            Ok(meta) if meta.is_dir() => std::fs::remove_dir_all(&path)?,
            Ok(_) => std::fs::remove_file(&path)?,
            Err(_) => {}
        }
        symlink(&target, &path)
    }

    /// The folder `current` points at, relative to the data folder.
    fn published_folder(&self) -> Option<String> {
        std::fs::read_link(self.data.join(CURRENT)).ok().map(|p| p.to_string_lossy().to_string())
    }

    /// True when a run was left committed but unpublished, or left uncommitted files.
    fn needs_recovery(&self) -> bool {
        let heads = self.heads();
        let referenced: BTreeSet<&str> = heads.iter().map(|m| m.folder.as_str()).collect();
        let unpublished = heads.last().is_some_and(|m| self.published_folder().as_deref() != Some(&m.folder));
        unpublished
            || run_folders(&self.data).iter().any(|f| !referenced.contains(f.as_str()))
            || temporaries(&self.data).next().is_some()
    }

    /// With the lock held: removes what no manifest commits, and publishes the latest manifest.
    fn recover(&self) -> Result<(), String> {
        for tmp in temporaries(&self.data).collect::<Vec<_>>() {
            let _ = std::fs::remove_file(tmp);
        }
        let heads = self.heads();
        let referenced: BTreeSet<&str> = heads.iter().map(|m| m.folder.as_str()).collect();
        for folder in run_folders(&self.data) {
            if !referenced.contains(folder.as_str()) {
                tracing::info!("removing {folder}: a run that never committed");
                std::fs::remove_dir_all(self.data.join(&folder))
                    .map_err(|e| format!("cannot remove the uncommitted {folder}: {e}"))?;
            }
        }
        if let Some(head) = heads.last().filter(|m| self.published_folder().as_deref() != Some(&m.folder)) {
            if let Some(m) = self.latest().filter(|m| m.seq == head.seq) {
                tracing::info!("publishing run {} (committed, not yet published)", m.run_id);
                self.publish(&m).map_err(|e| format!("cannot publish run {}: {e}", m.run_id))?;
            }
        }
        Ok(())
    }

    /// Keeps the last `keep` manifests (at least one) and the folders they name.
    fn prune(&self, keep: usize) {
        let heads = self.heads();
        let cut = heads.len().saturating_sub(keep.max(1));
        for m in &heads[..cut] {
            let _ = std::fs::remove_file(self.data.join(MANIFESTS).join(format!("{:06}.json", m.seq)));
        }
        fault::point("retention");
        let kept: BTreeSet<&str> = heads[cut..].iter().map(|m| m.folder.as_str()).collect();
        for folder in run_folders(&self.data) {
            if !kept.contains(folder.as_str()) {
                // Moved aside (one rename): removing a run's few hundred files is left to the
                // next writer, which does it on another thread while it compiles.
                let aside = self.data.join(PRUNED).join(folder.trim_start_matches(&format!("{RUNS}/")));
                let moved = std::fs::create_dir_all(self.data.join(PRUNED))
                    .and_then(|()| std::fs::rename(self.data.join(&folder), &aside));
                if moved.is_err() {
                    let _ = std::fs::remove_dir_all(self.data.join(folder));
                }
            }
        }
    }

    /// Removes the runs retention moved aside, on a thread of its own (a process that ends
    /// first leaves the rest to the next writer), at the lowest CPU priority so that it takes
    /// only a core the run leaves idle, unless more than `PRUNED_BEHIND` runs wait.
    fn remove_pruned(&self) {
        let pruned = self.data.join(PRUNED);
        let Ok(runs) = std::fs::read_dir(&pruned) else { return };
        let behind = runs.count() > PRUNED_BEHIND;
        std::thread::spawn(move || {
            if !behind {
                lowest_priority();
            }
            std::fs::remove_dir_all(pruned)
        });
    }
}

/// Gives the calling thread the lowest CPU priority: work that may wait for a core nothing
/// else wants (on Linux a thread has a nice value of its own).
fn lowest_priority() {
    #[cfg(target_os = "linux")]
    // SAFETY: `setpriority` takes plain integers; `who` 0 is the calling thread.
    unsafe {
        libc::setpriority(libc::PRIO_PROCESS, 0, 19);
    }
}

/// The kinds of record a snapshot holds beside its files.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RecordKind {
    /// Table metadata: one record per (table, layer).
    Tables,
    /// Transition logs: one per layer a run built.
    Transitions,
    /// Results of the data-quality checks.
    Checks,
}

impl RecordKind {
    pub const ALL: [RecordKind; 3] = [RecordKind::Tables, RecordKind::Transitions, RecordKind::Checks];

    /// The file of a snapshot holding these records of the tables its run built (every table,
    /// before format 2).
    fn built_file(self) -> &'static str {
        match self {
            RecordKind::Tables => "tables.json",
            RecordKind::Transitions => "transitions.json",
            RecordKind::Checks => "checks.json",
        }
    }

    /// The folder of a snapshot holding these records of each table it carried, one file per
    /// table.
    fn carried_dir(self) -> &'static str {
        match self {
            RecordKind::Tables => "carried/tables",
            RecordKind::Transitions => "carried/transitions",
            RecordKind::Checks => "carried/checks",
        }
    }

    /// The file of `table`'s records in the snapshot folder `folder`, had it carried the table.
    fn carried_file(self, folder: &Path, table: &str) -> PathBuf {
        folder.join(self.carried_dir()).join(format!("{table}.json"))
    }
}

fn manifest_paths(data: &Path) -> Vec<PathBuf> {
    std::fs::read_dir(data.join(MANIFESTS))
        .map(|d| {
            d.filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| {
                    p.extension().is_some_and(|x| x == "json")
                        && !p.file_name().is_some_and(|n| n.to_string_lossy().starts_with('.'))
                })
                .collect()
        })
        .unwrap_or_default()
}

/// `runs/<id>` of every run folder on disk.
fn run_folders(data: &Path) -> Vec<String> {
    std::fs::read_dir(data.join(RUNS))
        .map(|d| d.filter_map(|e| e.ok()).map(|e| format!("{RUNS}/{}", e.file_name().to_string_lossy())).collect())
        .unwrap_or_default()
}

/// A manifest written beside the manifests but not yet committed (see `Store::write_pending`).
struct PendingManifest {
    tmp: PathBuf,
    path: PathBuf,
    head: manifest::ManifestHead,
}

/// Temporary files an interrupted commit or publish left.
fn temporaries(data: &Path) -> impl Iterator<Item = PathBuf> {
    [data.to_path_buf(), data.join(MANIFESTS)].into_iter().flat_map(|dir| {
        std::fs::read_dir(dir).into_iter().flatten().filter_map(|e| e.ok().map(|e| e.path())).filter(|p| {
            p.file_name().is_some_and(|n| n.to_string_lossy().starts_with('.') && n.to_string_lossy().ends_with(".tmp"))
        })
    })
}

/// The manifest at `path`, or `None` (with a warning when it is there but unreadable).
fn read_manifest<T: serde::de::DeserializeOwned>(path: &Path) -> Option<T> {
    match std::fs::read(path).map(|b| serde_json::from_slice::<T>(&b)) {
        Ok(Ok(m)) => Some(m),
        Ok(Err(e)) => {
            tracing::warn!("ignoring the unreadable manifest {}: {e}", path.display());
            None
        }
        Err(_) => None,
    }
}

/// Manifest heads already parsed, by path, with the size and modification time they were
/// parsed at. A committed manifest is never changed, so each is parsed once per process: a run
/// reads the heads of every kept manifest for recovery and again for retention.
type Heads = std::collections::HashMap<PathBuf, ((u64, std::time::SystemTime), manifest::ManifestHead)>;
static HEADS: std::sync::Mutex<Option<Heads>> = std::sync::Mutex::new(None);

fn stamp(path: &Path) -> Option<(u64, std::time::SystemTime)> {
    let meta = std::fs::metadata(path).ok()?;
    Some((meta.len(), meta.modified().ok()?))
}

/// The head of the manifest at `path` (see `HEADS`).
fn head_of(path: &Path) -> Option<manifest::ManifestHead> {
    let stamp = stamp(path)?;
    let mut heads = HEADS.lock().unwrap_or_else(|p| p.into_inner());
    let heads = heads.get_or_insert_with(Default::default);
    if let Some((_, head)) = heads.get(path).filter(|(at, _)| *at == stamp) {
        return Some(head.clone());
    }
    let head =
        start_of(path).and_then(|start| manifest::ManifestHead::from_start(&start)).or_else(|| read_manifest(path))?;
    heads.insert(path.to_path_buf(), (stamp, head.clone()));
    Some(head)
}

/// The first 4 KiB of the file at `path` (all of a shorter one).
fn start_of(path: &Path) -> Option<Vec<u8>> {
    use std::io::Read;
    let mut start = Vec::with_capacity(4096);
    std::fs::File::open(path).ok()?.take(4096).read_to_end(&mut start).ok()?;
    Some(start)
}

/// Remembers the head of the manifest this process just committed at `path`.
fn remember_head(path: &Path, head: manifest::ManifestHead) {
    if let Some(stamp) = stamp(path) {
        HEADS
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get_or_insert_with(Default::default)
            .insert(path.to_path_buf(), (stamp, head));
    }
}

/// The config files a run kept in a folder of their own (before `writer::CONFIG_FILE`), by
/// path in the project.
fn old_recorded_config(dir: &Path) -> Result<(PathBuf, BTreeMap<String, String>), String> {
    let read = |rel: String| {
        let path = dir.join(&rel);
        std::fs::read_to_string(&path)
            .map(|text| (rel, text))
            .map_err(|e| format!("cannot read {}: {e}", path.display()))
    };
    let pipelines = dir.join(crate::config::SNAPSHOT_PIPELINES);
    let names = std::fs::read_dir(&pipelines).map_err(|e| format!("cannot read {}: {e}", pipelines.display()))?;
    let names = names.filter_map(|e| e.ok()?.file_name().into_string().ok());
    let texts = std::iter::once(read("sources.yml".into()))
        .chain(names.map(|n| read(format!("{}/{n}", crate::config::SNAPSHOT_PIPELINES))))
        .collect::<Result<_, _>>()?;
    Ok((dir.to_path_buf(), texts))
}

fn read_json_or_default<T: serde::de::DeserializeOwned + Default>(path: &Path) -> T {
    std::fs::read(path).ok().and_then(|b| serde_json::from_slice(&b).ok()).unwrap_or_default()
}

fn sync_dir(dir: &Path) -> std::io::Result<()> {
    std::fs::File::open(dir)?.sync_all()
}

#[cfg(unix)]
fn symlink(target: &Path, link: &Path) -> std::io::Result<()> {
    std::os::unix::fs::symlink(target, link)
}

#[cfg(not(unix))]
fn symlink(_target: &Path, link: &Path) -> std::io::Result<()> {
    Err(std::io::Error::other(format!("cannot publish {}: the store needs symbolic links (Unix)", link.display())))
}

/// Parses a manifest, remembering the last one parsed with its bytes: a run reads the current
/// manifest twice (to compile, then again under the run's lock), and parsing it costs a tenth of
/// a rerun; the same bytes give the same manifest, so the second read only compares them.
fn parse_manifest(bytes: Vec<u8>) -> Option<Manifest> {
    static LAST: std::sync::Mutex<Option<(Vec<u8>, Manifest)>> = std::sync::Mutex::new(None);
    let mut last = LAST.lock().unwrap_or_else(|p| p.into_inner());
    if let Some((_, m)) = last.as_ref().filter(|(seen, _)| *seen == bytes) {
        return Some(m.clone());
    }
    let m: Manifest = serde_json::from_slice(&bytes).ok()?;
    *last = Some((bytes, m.clone()));
    Some(m)
}
