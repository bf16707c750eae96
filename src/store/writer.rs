//! Writing one run: files go into the run's own folder unsynced; `commit` carries the tables the
//! run did not rebuild, writes the records and the config snapshot, makes everything durable
//! with one barrier, commits the manifest, publishes it and prunes old runs.

use super::carried::{self, Record};
use super::manifest::{FileEntry, Manifest, RunInputs, SourceFile, TableEntry, FORMAT, PER_TABLE_RECORDS};
use super::{names, Lock, RecordKind as Kind, Store, RUNS};
use crate::fault;
use crate::records::{CheckResult, TableMetadata, TransitionLog};
use chrono::{DateTime, Utc};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::mpsc::SyncSender;
use std::sync::{Mutex, OnceLock};

/// The config snapshot, `runs/<id>/config.json`: `{"sources.yml": text, "pipelines/<file>": text}`.
pub(super) const CONFIG_FILE: &str = "config.json";
/// Where runs before `CONFIG_FILE` kept the same files, one file each (read, never written).
pub(super) const CONFIG_DIR: &str = "config";

/// A run in progress: holds the writer lock until it commits or is dropped.
pub struct RunWriter {
    store: Store,
    _lock: Lock,
    run_id: String,
    started_at: DateTime<Utc>,
    /// `runs/<id>`, relative to the data folder.
    folder: String,
    previous: Option<Manifest>,
    /// The records of the tables the previous run built (every table, before format 2) as
    /// written, by table, one entry per kind (in `Kind::ALL` order), each file read on first use.
    previous_built: [OnceLock<ByTable>; 3],
    /// The tables whose records of one kind the previous snapshot holds in files of their own.
    previous_carried_files: [OnceLock<HashSet<String>>; 3],
    /// What `carry_ahead` did before the commit.
    ahead: Mutex<Ahead>,
    /// The records of the layers written so far, encoded as each layer ends (see `record`).
    written: Mutex<Written>,
    /// Where each file written is handed once whole, to start its data's way to disk (see
    /// `make_folder`).
    writeback: OnceLock<SyncSender<std::fs::File>>,
}

/// This run's table metadata and transition logs, encoded: on the cores as the layers end,
/// beside the build, rather than all of them by the commit.
#[derive(Default)]
struct Written {
    metadata: Vec<Record>,
    transitions: Vec<Record>,
}

/// What `carry_ahead` did: the tables it carried, with their files by layer, and whether it
/// wrote the config snapshot.
#[derive(Default)]
struct Ahead {
    carried: HashMap<String, BTreeMap<String, FileEntry>>,
    config_written: bool,
}

/// Records as written, by the table they belong to.
type ByTable = HashMap<String, Vec<Record>>;

/// `records` by the table they belong to, in the order given.
fn by_table(records: Vec<Record>) -> ByTable {
    let mut by_table = ByTable::new();
    for r in records {
        by_table.entry(r.table.clone()).or_default().push(r);
    }
    by_table
}

/// What a run hands to `commit`.
pub struct RunResult {
    pub status: String,
    pub selected: Vec<String>,
    pub vars: BTreeMap<String, String>,
    /// What the run decided from, when it can say.
    pub inputs: Option<RunInputs>,
    pub sources: BTreeMap<String, SourceFile>,
    /// The selected tables; `files` filled for those that succeeded.
    pub tables: BTreeMap<String, TableEntry>,
    /// Results of the data-quality checks of the tables this run built.
    pub checks: Vec<CheckResult>,
    /// The YAML the run compiled: path under `config/` -> text.
    pub config: Vec<(String, String)>,
    /// Runs to keep.
    pub keep: usize,
}

impl RunWriter {
    pub(super) fn new(store: Store, lock: Lock, run_id: String) -> RunWriter {
        let folder = format!("{RUNS}/{run_id}");
        let previous = store.latest();
        RunWriter {
            store,
            _lock: lock,
            run_id,
            started_at: Utc::now(),
            folder,
            previous,
            previous_built: Default::default(),
            previous_carried_files: Default::default(),
            ahead: Mutex::default(),
            written: Mutex::default(),
            writeback: OnceLock::new(),
        }
    }

    /// Keeps the records of a layer this run wrote or tried to (its transition log, and its
    /// metadata when written), encoded, for the commit.
    pub fn record(&self, metadata: Option<&TableMetadata>, log: &TransitionLog) -> Result<(), String> {
        let metadata = metadata.map(|m| Record::new(Kind::Tables, m)).transpose()?;
        let log = Record::new(Kind::Transitions, log)?;
        let mut written = self.written.lock().map_err(|_| "the run's records are poisoned".to_string())?;
        written.metadata.extend(metadata);
        written.transitions.push(log);
        Ok(())
    }

    /// Makes the run's folder, once the run knows it has something to write: a run with
    /// nothing to build makes none, and dropping its writer releases the lock.
    /// Also starts the thread that writes out the data of each file as it is finished
    /// (`write_out`), so that the commit's barrier finds little left to write.
    pub fn make_folder(&self) -> Result<(), String> {
        let path = self.store.path(&self.folder);
        std::fs::create_dir_all(&path).map_err(|e| format!("cannot create {}: {e}", path.display()))?;
        if cfg!(target_os = "linux") {
            let (files, finished) = std::sync::mpsc::sync_channel(WRITEBACK_QUEUE);
            if std::thread::Builder::new().spawn(move || finished.into_iter().for_each(write_out)).is_ok() {
                let _ = self.writeback.set(files);
            }
        }
        Ok(())
    }

    pub fn run_id(&self) -> &str {
        &self.run_id
    }

    pub fn started_at(&self) -> DateTime<Utc> {
        self.started_at
    }

    pub fn store(&self) -> &Store {
        &self.store
    }

    /// The snapshot this run starts from.
    pub fn previous(&self) -> Option<&Manifest> {
        self.previous.as_ref()
    }

    /// The metadata the previous snapshot holds for `layer.table`.
    pub fn previous_metadata(&self, layer: &str, table: &str) -> Option<TableMetadata> {
        let records = self.previous_records(Kind::Tables, table);
        records.iter().find(|r| r.layer.as_deref() == Some(layer)).and_then(|r| r.decode())
    }

    /// The previous snapshot's records of one kind for `table`, as written.
    fn previous_records(&self, kind: Kind, table: &str) -> Vec<Record> {
        let Some(m) = &self.previous else { return vec![] };
        if self.previous_carried(table) {
            return carried::read(kind, &kind.carried_file(&self.store.path(&m.folder), table));
        }
        self.previous_built(kind).get(table).cloned().unwrap_or_default()
    }

    /// The previous snapshot's records of one kind of the tables its run built, by table (read
    /// once).
    fn previous_built(&self, kind: Kind) -> &ByTable {
        self.previous_built[kind as usize].get_or_init(|| {
            let Some(m) = &self.previous else { return ByTable::new() };
            by_table(carried::read(kind, &self.store.path(&m.folder).join(kind.built_file())))
        })
    }

    /// The tables whose records of one kind the previous snapshot holds in files of their own
    /// (read once).
    fn previous_carried_files(&self, kind: Kind) -> &HashSet<String> {
        self.previous_carried_files[kind as usize].get_or_init(|| {
            let Some(m) = &self.previous else { return HashSet::new() };
            self.store.carried_record_tables(m, kind).into_iter().collect()
        })
    }

    /// Whether the previous snapshot holds the records of `table` in files of their own (from
    /// format 2 on, those of every table its run did not build), not among those of the tables
    /// it built.
    fn previous_carried(&self, table: &str) -> bool {
        self.previous.as_ref().is_some_and(|m| {
            m.format >= PER_TABLE_RECORDS && m.tables.get(table).is_some_and(|t| t.status != "success")
        })
    }

    /// Whether the previous snapshot's records of one kind of `table`, which it holds as `held`,
    /// carry over as they are, as a hard link of their file: they are in a file of their own
    /// (`previous_carried`), and transition logs hold those of the version carried alone (a
    /// failed or skipped build also left its own).
    fn links_records(&self, kind: Kind, table: &str, held: &TableEntry) -> bool {
        self.previous_carried(table)
            && (kind != Kind::Transitions || matches!(held.status.as_str(), "kept" | "unchanged"))
    }

    /// The part of the commit that need not wait for the build, done beside it: carries the
    /// previous version of each of `tables` (tables this run does not build) into the run's
    /// folder, writes the `config` snapshot, and reads the previous records the commit will
    /// take from the tables the previous run built.
    pub fn carry_ahead(&self, tables: &[&str], config: &[(String, String)]) -> Result<(), String> {
        // The table metadata first: the build's first layers wait for it.
        if let Some(m) = &self.previous {
            if m.tables.keys().any(|t| !self.previous_carried(t)) {
                self.previous_built(Kind::Tables);
            }
            if tables.iter().any(|t| !self.previous_carried(t)) {
                self.previous_built(Kind::Transitions);
                self.previous_built(Kind::Checks);
            }
        }
        let mut carried = HashMap::new();
        if let Some(prev) = &self.previous {
            for &name in tables {
                if let Some(held) = prev.tables.get(name) {
                    carried.insert(name.to_string(), self.carry_table(name, held)?);
                }
            }
        }
        self.write_config(config)?;
        *self.ahead.lock().unwrap_or_else(|p| p.into_inner()) = Ahead { carried, config_written: true };
        Ok(())
    }

    /// Links the files of `held`, the previous version of `name`, into the run's folder, with
    /// the records that carry over as they are (`links_records`); returns the files' entries.
    fn carry_table(&self, name: &str, held: &TableEntry) -> Result<BTreeMap<String, FileEntry>, String> {
        let mut files = BTreeMap::new();
        for (layer, file) in &held.files {
            let rel = self.rel(layer, name)?;
            link_or_copy(&self.store.path(&file.path), &self.store.path(&rel))
                .map_err(|e| format!("cannot carry {} into the new run: {e}", file.path))?;
            files.insert(layer.clone(), FileEntry { path: rel, ..file.clone() });
        }
        let Some(previous) = &self.previous else { return Ok(files) };
        let (from, to) = (self.store.path(&previous.folder), self.store.path(&self.folder));
        for kind in Kind::ALL.into_iter().filter(|&k| self.links_records(k, name, held)) {
            // No file: the table has no records of this kind (most tables have no checks).
            if self.previous_carried_files(kind).contains(name) {
                let from = kind.carried_file(&from, name);
                link_or_copy(&from, &kind.carried_file(&to, name))
                    .map_err(|e| format!("cannot carry {} into the new run: {e}", from.display()))?;
            }
        }
        Ok(files)
    }

    /// Writes the YAML the run compiled, as one file (`CONFIG_FILE`). When the previous run
    /// recorded the same, it is linked, not written again (a new file costs the file system far
    /// more than a link).
    fn write_config(&self, config: &[(String, String)]) -> Result<(), String> {
        let texts: BTreeMap<&str, &str> = config.iter().map(|(rel, text)| (rel.as_str(), text.as_str())).collect();
        // Written into room for all of it (escapes aside), not a buffer grown by doubling.
        let mut json =
            Vec::with_capacity(config.iter().map(|(rel, text)| rel.len() + text.len() + 16).sum::<usize>() * 9 / 8);
        serde_json::to_writer_pretty(&mut json, &texts).map_err(|e| format!("cannot record the config: {e}"))?;
        let path = self.store.path(&self.folder).join(CONFIG_FILE);
        let previous = self.previous.as_ref().map(|m| self.store.path(&m.folder).join(CONFIG_FILE)).filter(|p| {
            std::fs::metadata(p).is_ok_and(|m| m.len() == json.len() as u64)
                && std::fs::read(p).is_ok_and(|b| b == json)
        });
        if previous.is_none_or(|p| std::fs::hard_link(p, &path).is_err()) {
            std::fs::write(&path, json).map_err(|e| format!("cannot write {}: {e}", path.display()))?;
        }
        Ok(())
    }

    /// The committed file of `layer.table` in the previous snapshot.
    pub fn committed_file(&self, layer: &str, table: &str) -> Option<PathBuf> {
        self.previous.as_ref()?.file(table, layer).map(|f| self.store.path(&f.path))
    }

    /// `runs/<id>/<layer>/<table>.parquet`, relative to the data folder.
    fn rel(&self, layer: &str, table: &str) -> Result<String, String> {
        names::check_table_name(table)?;
        Ok(format!("{}/{layer}/{table}.parquet", self.folder))
    }

    /// This run's file of `layer.table` (written or not yet).
    pub fn file(&self, layer: &str, table: &str) -> Result<PathBuf, String> {
        Ok(self.store.path(&self.rel(layer, table)?))
    }

    /// Writes this run's file of `layer.table` (`layer` may be `quarantine`) through `write`,
    /// unsynced: the commit's barrier makes it durable. Returns its manifest entry.
    pub fn write_file(
        &self,
        layer: &str,
        table: &str,
        rows: u64,
        schema: &[(String, String)],
        write: impl FnOnce(&mut dyn Write) -> std::io::Result<()>,
    ) -> Result<FileEntry, String> {
        let mut file = self.create_file(layer, table)?;
        write(&mut file.out).map_err(|e| format!("cannot write {}: {e}", file.path.display()))?;
        file.finish(rows, schema)
    }

    /// Creates this run's file of `layer.table` for writing a piece at a time; `finish` gives
    /// its manifest entry (see `write_file`).
    pub fn create_file(&self, layer: &str, table: &str) -> Result<NewFile, String> {
        let rel = self.rel(layer, table)?;
        let path = self.store.path(&rel);
        // The layer's folder is made by the first file written into it.
        let created = std::fs::File::create(&path).or_else(|e| match path.parent() {
            Some(dir) if e.kind() == std::io::ErrorKind::NotFound => {
                std::fs::create_dir_all(dir).and_then(|_| std::fs::File::create(&path))
            }
            _ => Err(e),
        });
        let out = created
            .map(|file| std::io::BufWriter::with_capacity(1 << 20, file))
            .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
        let writeback = self.writeback.get().cloned();
        Ok(NewFile { out, rel, path, fault: format!("write:{layer}/{table}"), writeback })
    }

    /// Makes `from`, a file this run wrote, also this run's file of `layer.table` (a hard link
    /// where the file system allows, else a copy). Returns its manifest entry.
    pub fn link_file(&self, layer: &str, table: &str, from: &FileEntry) -> Result<FileEntry, String> {
        let rel = self.rel(layer, table)?;
        let to = self.store.path(&rel);
        link_or_copy(&self.store.path(&from.path), &to).map_err(|e| format!("cannot write {}: {e}", to.display()))?;
        fault::point(&format!("write:{layer}/{table}"));
        Ok(FileEntry { path: rel, rows: from.rows, schema_hash: from.schema_hash.clone() })
    }

    /// Carries what the run did not rebuild, writes the records, syncs once, commits, publishes
    /// and prunes. Returns the committed manifest.
    pub fn commit(mut self, mut result: RunResult) -> Result<Manifest, String> {
        let Written { mut metadata, transitions } =
            std::mem::take(self.written.get_mut().unwrap_or_else(|p| p.into_inner()));
        let previous = self.previous.clone();
        let Ahead { carried: mut ahead, config_written } =
            std::mem::take(self.ahead.get_mut().unwrap_or_else(|p| p.into_inner()));
        // Tables of the previous snapshot this run did not select are kept as they were.
        if let Some(prev) = &previous {
            for (name, entry) in &prev.tables {
                if !result.tables.contains_key(name) {
                    let mut kept = entry.clone();
                    kept.status = "kept".into();
                    kept.error = None;
                    kept.warnings.clear();
                    result.tables.insert(name.clone(), kept);
                }
            }
        }
        // Tables carried: name -> their entry in the previous snapshot.
        let mut carried: BTreeMap<String, &TableEntry> = BTreeMap::new();
        for (name, entry) in result.tables.iter_mut() {
            if entry.status == "success" {
                continue;
            }
            // Not rebuilt: drop what this run wrote of it and carry the previous version.
            if entry.status != "kept" && entry.status != "unchanged" {
                self.remove_table_files(name);
                metadata.retain(|m| &m.table != name);
            }
            let held = previous.as_ref().and_then(|p| p.tables.get(name));
            entry.files.clear();
            entry.built_by = held.and_then(|h| h.built_by.clone());
            entry.built_at = held.and_then(|h| h.built_at);
            entry.source_sha256 = held.and_then(|h| h.source_sha256.clone());
            entry.spec_hash = held.and_then(|h| h.spec_hash.clone());
            entry.keys = held.map(|h| h.keys.clone()).unwrap_or_default();
            entry.read_keys = held.map(|h| h.read_keys.clone()).unwrap_or_default();
            let Some(held) = held else { continue };
            entry.files = match ahead.remove(name) {
                Some(files) => files,
                None => self.carry_table(name, held)?,
            };
            carried.insert(name.clone(), held);
        }
        tracing::debug!("commit: held tables carried ({} tables in the snapshot)", result.tables.len());
        let folder = self.store.path(&self.folder);
        let checks = carried::encode(Kind::Checks, &result.checks)?;
        let records = [(Kind::Tables, metadata), (Kind::Transitions, transitions), (Kind::Checks, checks)];
        self.write_records(&folder, &result.tables, &carried, records)?;
        fault::point("write:records");
        if !config_written {
            self.write_config(&result.config)?;
        }
        let now = Utc::now();
        let manifest = Manifest {
            format: FORMAT,
            seq: previous.as_ref().map_or(1, |m| m.seq + 1),
            run_id: self.run_id.clone(),
            kind: "run".into(),
            rollback_of: None,
            folder: self.folder.clone(),
            started_at: self.started_at,
            ended_at: now,
            committed_at: now,
            status: result.status,
            selected: result.selected,
            tool_version: env!("CARGO_PKG_VERSION").to_string(),
            vars: result.vars,
            inputs: result.inputs,
            sources: result.sources,
            tables: result.tables,
        };
        // The manifest is written before the barrier, which makes it durable with the run, and
        // committed (renamed into place) after it.
        let pending = self
            .store
            .write_pending(&manifest, !BARRIER_COVERS_MANIFESTS)
            .map_err(|e| format!("cannot commit the run: {e}"))?;
        tracing::debug!("commit: records, config and manifest written");
        fault::point("barrier");
        barrier(&folder).map_err(|e| format!("cannot make the run durable: {e}"))?;
        tracing::debug!("commit: durable");
        self.store.commit_pending(pending).map_err(|e| format!("cannot commit the run: {e}"))?;
        self.store.publish(&manifest).map_err(|e| format!("cannot publish the run: {e}"))?;
        tracing::debug!("commit: committed and published run #{}", manifest.seq);
        self.store.prune(result.keep);
        tracing::debug!("commit: pruned to {} run(s)", result.keep);
        Ok(manifest)
    }

    /// Writes the snapshot's records: those of the tables this run built in one file per kind
    /// (`tables.json`, ...), and for each other table of the snapshot (`tables`) one file per
    /// kind (`carried/<kind>/<table>.json`) unless `carry_table` linked it: this run's records
    /// of it (the logs of a failed build, its checks) and, for a table `carried` (name -> its
    /// previous entry), the metadata and transition logs of the version carried, and its checks
    /// unless this run evaluated them.
    fn write_records(
        &self,
        folder: &Path,
        tables: &BTreeMap<String, TableEntry>,
        carried: &BTreeMap<String, &TableEntry>,
        records: [(Kind, Vec<Record>); 3],
    ) -> Result<(), String> {
        let built_here = |table: &str| tables.get(table).is_none_or(|t| t.status == "success");
        for (kind, encoded) in records {
            let (built, others): (Vec<Record>, Vec<Record>) = encoded.into_iter().partition(|r| built_here(&r.table));
            if !built.is_empty() {
                carried::write(&folder.join(kind.built_file()), built)?;
            }
            let mut others_by_table = by_table(others);
            let dir = folder.join(kind.carried_dir());
            let mut dir_made = false;
            for name in tables.keys().filter(|t| !built_here(t)) {
                let mut records = others_by_table.remove(name).unwrap_or_default();
                let held = carried.get(name);
                if records.is_empty() && held.is_some_and(|h| self.links_records(kind, name, h)) {
                    continue;
                }
                // Checks this run evaluated replace those of the version carried.
                if let Some(held) = held.filter(|_| kind != Kind::Checks || records.is_empty()) {
                    let built_by = held.built_by.as_ref();
                    let previous = self.previous_records(kind, name).into_iter();
                    records.extend(previous.filter(|r| kind != Kind::Transitions || r.batch_id.as_ref() == built_by));
                }
                if !records.is_empty() {
                    if !dir_made {
                        std::fs::create_dir_all(&dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
                        dir_made = true;
                    }
                    carried::write(&kind.carried_file(folder, name), records)?;
                }
            }
        }
        Ok(())
    }

    fn remove_table_files(&self, table: &str) {
        for layer in super::STABLE {
            if let Ok(path) = self.file(layer, table) {
                let _ = std::fs::remove_file(path);
            }
        }
    }
}

/// A file of the run being written (see `RunWriter::create_file`).
pub struct NewFile {
    pub out: std::io::BufWriter<std::fs::File>,
    rel: String,
    path: std::path::PathBuf,
    fault: String,
    writeback: Option<SyncSender<std::fs::File>>,
}

impl NewFile {
    /// Flushes the file and hands it to the writeback thread (see `write_out`); returns its
    /// manifest entry, with `rows` and the `schema` it holds.
    pub fn finish(self, rows: u64, schema: &[(String, String)]) -> Result<FileEntry, String> {
        let file = self.out.into_inner().map_err(|e| format!("cannot write {}: {}", self.path.display(), e.error()))?;
        if let Some(writeback) = &self.writeback {
            let _ = writeback.try_send(file);
        }
        fault::point(&self.fault);
        Ok(FileEntry { path: self.rel, rows, schema_hash: schema_hash(schema) })
    }
}

/// SHA-256 of `name type` lines.
pub fn schema_hash(schema: &[(String, String)]) -> String {
    use sha2::{Digest, Sha256};
    let mut h = Sha256::new();
    for (name, dtype) in schema {
        h.update(name.as_bytes());
        h.update(b" ");
        h.update(dtype.as_bytes());
        h.update(b"\n");
    }
    h.finalize().iter().map(|b| format!("{b:02x}")).collect()
}

fn link_or_copy(from: &Path, to: &Path) -> std::io::Result<()> {
    use std::io::ErrorKind;
    match std::fs::hard_link(from, to) {
        Err(e) if e.kind() == ErrorKind::NotFound && to.parent().is_some_and(|d| !d.exists()) => {
            std::fs::create_dir_all(to.parent().unwrap_or(to))?;
        }
        Err(e) if e.kind() == ErrorKind::AlreadyExists => std::fs::remove_file(to)?,
        Err(_) => return std::fs::copy(from, to).map(|_| ()),
        Ok(()) => return Ok(()),
    }
    std::fs::hard_link(from, to).or_else(|_| std::fs::copy(from, to).map(|_| ()))
}

/// Whether `barrier` makes the manifest written beside the manifests durable too.
const BARRIER_COVERS_MANIFESTS: bool = cfg!(target_os = "linux");

/// Makes every file written so far durable: one `syncfs` of the data folder's file system on
/// Linux; elsewhere an fsync of each file and folder of the run.
#[cfg(target_os = "linux")]
fn barrier(folder: &Path) -> std::io::Result<()> {
    use std::os::fd::AsRawFd;
    let dir = std::fs::File::open(folder)?;
    // SAFETY: `syncfs` only reads the descriptor, which `dir` keeps open for the call.
    if unsafe { libc::syncfs(dir.as_raw_fd()) } == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

/// Files waiting for `write_out` at most: a file finished with the queue full is closed as it
/// is, left to the barrier, never waited for (nor its descriptor kept open).
const WRITEBACK_QUEUE: usize = 64;

/// Starts the write of `file`'s data to disk and closes it; waits for none of it. Only a head
/// start: the barrier alone decides durability. The data only (`sync_file_range`), not the file
/// system's own blocks: a `syncfs` here would put the run folder's directory under write while
/// the commit makes its records there, and every file made in a directory waits for its
/// block's write to end (20 ms and more on a busy disk).
fn write_out(file: std::fs::File) {
    #[cfg(target_os = "linux")]
    {
        use std::os::fd::AsRawFd;
        // SAFETY: `sync_file_range` only reads the descriptor, which `file` keeps open.
        unsafe { libc::sync_file_range(file.as_raw_fd(), 0, 0, libc::SYNC_FILE_RANGE_WRITE) };
    }
    drop(file);
}

#[cfg(not(target_os = "linux"))]
fn barrier(folder: &Path) -> std::io::Result<()> {
    fn walk(dir: &Path) -> std::io::Result<()> {
        for e in std::fs::read_dir(dir)? {
            let p = e?.path();
            if p.is_dir() {
                walk(&p)?;
            } else {
                std::fs::File::open(&p)?.sync_all()?;
            }
        }
        std::fs::File::open(dir)?.sync_all()
    }
    walk(folder)
}
