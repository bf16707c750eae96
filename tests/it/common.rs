//! Helpers: a fresh copy of the bundled sample project in a temporary folder, the binary, and
//! parquet reading.

use polars::prelude::*;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// A temporary project: the repository's sources.yml, pipelines/ and sample files.
pub struct Project {
    pub dir: tempfile::TempDir,
}

impl Project {
    pub fn sample() -> Project {
        let dir = tempfile::tempdir().expect("temp dir");
        let root = repo();
        for file in ["sources.yml", "wiq_schema.yml"] {
            std::fs::copy(root.join(file), dir.path().join(file)).expect("copy project file");
        }
        copy_dir(&root.join("pipelines"), &dir.path().join("pipelines"));
        copy_dir(&root.join("data/source"), &dir.path().join("data/source"));
        Project { dir }
    }

    /// A project of its own: `sources.yml`, pipeline files and source files (under
    /// `data/source`, the default root), by relative path.
    pub fn with_files(files: &[(&str, &str)]) -> Project {
        let p = Project { dir: tempfile::tempdir().expect("temp dir") };
        for (rel, text) in files {
            p.write(rel, text);
        }
        p
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    pub fn file(&self, rel: &str) -> PathBuf {
        self.path().join(rel)
    }

    pub fn write(&self, rel: &str, text: &str) {
        let p = self.file(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, text).unwrap();
    }

    /// Replaces `from` by `to` in a project file, asserting it was there.
    pub fn edit(&self, rel: &str, from: &str, to: &str) {
        let text = std::fs::read_to_string(self.file(rel)).unwrap();
        assert!(text.contains(from), "{rel} does not contain {from:?}");
        self.write(rel, &text.replacen(from, to, 1));
    }

    /// Runs `jobforge --project DIR args...` with the source root cleared.
    pub fn jobforge(&self, args: &[&str]) -> Output {
        self.jobforge_env(args, &[])
    }

    pub fn jobforge_env(&self, args: &[&str], env: &[(&str, &str)]) -> Output {
        let mut cmd = self.command(args);
        for (k, v) in env {
            cmd.env(k, v);
        }
        cmd.output().expect("run jobforge")
    }

    /// Starts `jobforge --project DIR args...` without waiting, its output piped.
    pub fn spawn(&self, args: &[&str]) -> std::process::Child {
        self.command(args)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("start jobforge")
    }

    fn command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_jobforge"));
        cmd.arg("--project").arg(self.path()).args(args).env_remove("JOBFORGE_SOURCE_DIR").current_dir(self.path());
        cmd
    }

    pub fn read(&self, rel: &str) -> DataFrame {
        read_parquet(&self.file(rel))
    }

    /// Every file under data/ except the bundled sources, sorted.
    pub fn data_files(&self) -> Vec<String> {
        let mut out = Vec::new();
        walk(&self.file("data"), &mut out);
        out.retain(|p| !p.contains("/source/"));
        out.sort();
        out
    }
}

/// Files under `dir`, not following links (the data folder's stable paths are links).
fn walk(dir: &Path, out: &mut Vec<String>) {
    for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let p = e.path();
        if e.file_type().is_ok_and(|t| t.is_dir()) {
            walk(&p, out);
        } else {
            out.push(p.display().to_string());
        }
    }
}

/// The tables of the shipped project, as its model lists them (a model test holds every gold
/// table to be modelled).
pub fn wiq_tables() -> usize {
    yaml_len("wiq_schema.yml", "tables")
}

/// The number of entries of a top-level list or map of a YAML file of the shipped project.
pub fn yaml_len(file: &str, key: &str) -> usize {
    let text = std::fs::read_to_string(repo().join(file)).unwrap();
    let doc: serde_yaml::Value = serde_yaml::from_str(&text).unwrap();
    match &doc[key] {
        serde_yaml::Value::Sequence(s) => s.len(),
        serde_yaml::Value::Mapping(m) => m.len(),
        other => panic!("{file}: `{key}` is {other:?}"),
    }
}

pub fn read_parquet(path: &Path) -> DataFrame {
    let file = std::fs::File::open(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    ParquetReader::new(file).finish().unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

pub fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap().flatten() {
        let p = e.path();
        if p.is_dir() {
            copy_dir(&p, &to.join(e.file_name()));
        } else {
            std::fs::copy(&p, to.join(e.file_name())).unwrap();
        }
    }
}

pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).to_string()
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).to_string()
}

/// Asserts success, showing both streams otherwise.
pub fn ok(o: &Output) {
    assert!(o.status.success(), "exit {:?}\nstdout:\n{}\nstderr:\n{}", o.status.code(), stdout(o), stderr(o));
}

/// The text values of a column.
pub fn strings(df: &DataFrame, column: &str) -> Vec<Option<String>> {
    let c = df.column(column).unwrap_or_else(|e| panic!("{column}: {e}")).cast(&DataType::String).unwrap();
    c.str().unwrap().iter().map(|v| v.map(str::to_string)).collect()
}

impl Project {
    /// The current snapshot's records of one kind (`tables`, `transitions` or `checks`): those
    /// of the tables its run built (`<kind>.json`), then those of each table it did not build
    /// (`carried/<kind>/<table>.json`).
    pub fn records(&self, kind: &str) -> Vec<serde_json::Value> {
        let current = self.file("data/current");
        let mut files: Vec<_> = std::fs::read_dir(current.join("carried").join(kind))
            .map(|d| d.map(|e| e.unwrap().path()).collect())
            .unwrap_or_default();
        files.sort();
        files.insert(0, current.join(format!("{kind}.json")));
        let mut all = Vec::new();
        for path in files.iter().filter(|p| p.exists()) {
            let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            let records: Vec<serde_json::Value> = serde_json::from_slice(&bytes).unwrap();
            assert!(!records.is_empty(), "{} holds no record", path.display());
            all.extend(records);
        }
        all
    }

    /// The committed manifests, oldest first.
    pub fn manifests(&self) -> Vec<serde_json::Value> {
        let mut paths: Vec<_> = std::fs::read_dir(self.file("data/manifests"))
            .map(|d| d.flatten().map(|e| e.path()).filter(|p| p.extension().is_some_and(|x| x == "json")).collect())
            .unwrap_or_default();
        paths.sort();
        paths.iter().map(|p| serde_json::from_slice(&std::fs::read(p).unwrap()).unwrap()).collect()
    }

    /// Names of the tables in the published gold layer, sorted.
    pub fn gold_tables(&self) -> Vec<String> {
        let mut out: Vec<String> = std::fs::read_dir(self.file("data/gold"))
            .map(|d| {
                d.flatten()
                    .map(|e| e.file_name().to_string_lossy().to_string())
                    .filter_map(|n| n.strip_suffix(".parquet").map(str::to_string))
                    .collect()
            })
            .unwrap_or_default();
        out.sort();
        out
    }
}
