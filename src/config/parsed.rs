//! Pipeline files parsed by an earlier run, kept as JSON and keyed by the SHA-256 of the exact
//! text parsed (with the `--var` settings and the identity of this build): a file unchanged
//! since is decoded from JSON instead of parsed from YAML again, which is most of a rerun's
//! config load. Only files that parsed without a problem are kept, and only when their JSON
//! decodes back to the very same spec; anything that cannot be read, from another build, or
//! torn is a miss and the file is parsed as if there were no cache. `run` writes the entries
//! (`Parsed::save`); every other command only reads them.
//!
//! The entries are one file (`store::Store::parsed_pipelines_file`), a JSON object a line,
//! `{"key":"<sha>","items":[...]}`: one file to read on a rerun and one to write after an edit
//! (a new file costs the file system far more than its bytes; there was one per entry).

use super::{Pipeline, PipelineFile};
use crate::diag::SourceText;
use sha2::{Digest, Sha256};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::sync::{Mutex, OnceLock};

/// The kept parses of one data folder, and what one load of the pipelines looked up and parsed.
#[derive(Debug)]
pub struct Parsed {
    file: PathBuf,
    /// This build: entries another binary wrote are not read (its types may differ).
    build: String,
    /// The file as found (read at the first lookup).
    kept: OnceLock<Kept>,
    /// Keys looked up by this load.
    used: Mutex<BTreeSet<String>>,
    /// Files this load parsed that had no entry: key, path and the text parsed (their
    /// pipelines are the loaded project's).
    fresh: Mutex<Vec<(String, PathBuf, String)>>,
    /// Whether the load read a whole folder of pipeline files (then entries it did not look up
    /// are of files since edited or removed) rather than one file of it.
    whole: bool,
}

/// One pipeline of an entry: its text when it differs from the file's (a `for_each` item).
#[derive(serde::Serialize, serde::Deserialize)]
struct Item {
    text: Option<String>,
    spec: Pipeline,
}

/// The file's text and its entries: key -> where the JSON of its items is in the text.
#[derive(Debug, Default)]
struct Kept {
    text: String,
    entries: HashMap<String, std::ops::Range<usize>>,
}

impl Kept {
    fn get(&self, key: &str) -> Option<&str> {
        self.entries.get(key).and_then(|r| self.text.get(r.clone()))
    }

    fn iter(&self) -> impl Iterator<Item = (&String, &str)> {
        self.entries.iter().filter_map(|(key, r)| Some((key, self.text.get(r.clone())?)))
    }
}

/// What a line of the file holds around its key and its items.
const LINE_START: &str = "{\"key\":\"";
const LINE_ITEMS: &str = "\",\"items\":";

impl Parsed {
    /// The kept parses in `file`; `None` when this build cannot name itself (then nothing is
    /// read or kept).
    pub fn at(file: PathBuf) -> Option<Parsed> {
        let build = crate::build_identity()?.to_string();
        Some(Parsed {
            file,
            build,
            kept: OnceLock::new(),
            used: Mutex::default(),
            fresh: Mutex::default(),
            whole: true,
        })
    }

    /// Marks the load as reading one pipeline file, not a folder: saving it removes no entry.
    pub fn of_one_file(self) -> Parsed {
        Parsed { whole: false, ..self }
    }

    /// The key of `text` parsed with `vars`.
    pub fn key(&self, text: &str, vars: &BTreeMap<String, String>) -> String {
        let mut h = Sha256::new();
        h.update(format!("{}\n{}\n", self.build, vars.len()));
        for (k, v) in vars {
            h.update(format!("{}:{k}{}:{v}", k.len(), v.len()));
        }
        h.update(text);
        format!("{:x}", h.finalize())
    }

    /// The pipelines of `text` (the file as parsed, at its path) as kept under `key`.
    pub fn get(&self, key: &str, text: &SourceText) -> Option<Vec<PipelineFile>> {
        lock(&self.used).insert(key.to_string());
        let json = self.kept().get(key)?;
        let items: Vec<Item> = serde_json::from_str(json).ok()?;
        let file = |item: Item| PipelineFile {
            text: SourceText { path: text.path.clone(), text: item.text.unwrap_or_else(|| text.text.clone()) },
            spec: item.spec,
        };
        Some(items.into_iter().map(file).collect())
    }

    /// Notes that `text`, the file at `path` as parsed, parsed without a problem: its
    /// pipelines are to be kept under `key`.
    pub fn remember(&self, key: String, path: &Path, text: String) {
        lock(&self.fresh).push((key, path.to_path_buf(), text));
    }

    /// Whether this load parsed a file it did not find.
    pub fn has_fresh(&self) -> bool {
        !lock(&self.fresh).is_empty()
    }

    /// Writes the file again with the entries of the files this load parsed (their pipelines
    /// among `pipelines`, the loaded project's) and, when it read a whole folder, without those
    /// it did not look up (files since edited or removed). Writes nothing when every file was
    /// found. The file is written whole beside its place and renamed into it, so a reader sees
    /// all of it or nothing; no lock is needed: two runs at once each write a whole file, and
    /// the entries the one renamed first added are at worst parsed again by a later run.
    pub fn save(&self, pipelines: &[PipelineFile]) {
        let fresh = std::mem::take(&mut *lock(&self.fresh));
        if fresh.is_empty() {
            return;
        }
        let used = lock(&self.used);
        let mut lines: BTreeMap<&str, String> = self
            .kept()
            .iter()
            .filter(|(key, _)| !self.whole || used.contains(*key))
            .map(|(key, items)| (key.as_str(), line(key, items)))
            .collect();
        for (key, path, text) in &fresh {
            let files: Vec<&PipelineFile> = pipelines.iter().filter(|f| &f.text.path == path).collect();
            match encode(text, &files) {
                Some(items) => drop(lines.insert(key, line(key, &items))),
                None => tracing::debug!("a parse of {} does not round-trip through JSON; not kept", path.display()),
            }
        }
        let Some(dir) = self.file.parent() else { return };
        if std::fs::create_dir_all(dir).is_err() {
            return;
        }
        let name = self.file.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        let temporary = dir.join(format!("{name}.{}.tmp", std::process::id()));
        let text: String = lines.into_values().collect();
        if std::fs::write(&temporary, text).and_then(|_| std::fs::rename(&temporary, &self.file)).is_err() {
            let _ = std::fs::remove_file(&temporary);
        }
        // Builds before this one kept a file per entry, in a folder of the file's name.
        let folder = self.file.with_extension("");
        if folder.is_dir() {
            let _ = std::fs::remove_dir_all(folder);
        }
    }

    /// The entries of the file (none when it is missing or unreadable; a line that is not an
    /// entry is skipped).
    fn kept(&self) -> &Kept {
        self.kept.get_or_init(|| {
            let text = std::fs::read_to_string(&self.file).unwrap_or_default();
            let mut entries = HashMap::new();
            let mut line_start = 0;
            for line in text.split_inclusive('\n') {
                let entry = line.strip_suffix('\n').and_then(|l| l.strip_prefix(LINE_START)?.strip_suffix('}'));
                if let Some((key, items)) = entry.and_then(|e| e.split_once(LINE_ITEMS)) {
                    let start = line_start + LINE_START.len() + key.len() + LINE_ITEMS.len();
                    entries.insert(key.to_string(), start..start + items.len());
                }
                line_start += line.len();
            }
            Kept { text, entries }
        })
    }
}

/// The line of the file keeping `items` (JSON) under `key`.
fn line(key: &str, items: &str) -> String {
    format!("{LINE_START}{key}{LINE_ITEMS}{items}}}\n")
}

/// The entry of `files` parsed from `text`, when its JSON decodes back to the same pipelines.
fn encode(text: &str, files: &[&PipelineFile]) -> Option<String> {
    let items: Vec<Item> = files
        .iter()
        .map(|f| Item { text: (f.text.text != text).then(|| f.text.text.clone()), spec: f.spec.clone() })
        .collect();
    let json = serde_json::to_string(&items).ok()?;
    let back: Vec<Item> = serde_json::from_str(&json).ok()?;
    (serde_json::to_string(&back).ok()? == json).then_some(json)
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{Project, Read};

    fn load(dir: &std::path::Path, cache: &std::path::Path) -> Project {
        load_with(dir, Parsed::at(cache.to_path_buf()))
    }

    /// The pipelines parsed from their YAML, no kept parse looked up.
    fn uncached(dir: &std::path::Path) -> Project {
        load_with(dir, None)
    }

    fn load_with(dir: &std::path::Path, parsed: Option<Parsed>) -> Project {
        match Project::load_reading(dir, std::path::Path::new("pipelines"), BTreeMap::new(), Read::WithoutTests, parsed)
        {
            Ok(p) => p,
            Err(d) => panic!("{d}"),
        }
    }

    /// Every pipeline as text and spec, in load order.
    fn specs(p: &Project) -> Vec<(String, String)> {
        p.pipelines.iter().map(|f| (f.text.text.clone(), serde_json::to_string(&f.spec).unwrap_or_default())).collect()
    }

    /// The keys of the file's entries, sorted.
    fn entries(cache: &std::path::Path) -> Vec<String> {
        let mut keys: Vec<String> =
            Parsed::at(cache.to_path_buf()).map(|p| p.kept().entries.keys().cloned().collect()).unwrap_or_default();
        keys.sort();
        keys
    }

    fn fresh(p: &Project) -> bool {
        p.parsed.as_ref().is_some_and(|c| c.has_fresh())
    }

    /// The bundled project copied into a temporary folder, and the folder for its parses.
    fn bundled() -> (tempfile::TempDir, PathBuf) {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
        let copy = |from: &std::path::Path, to: &std::path::Path| std::fs::copy(from, to).map(|_| ());
        copy(&root.join("sources.yml"), &dir.path().join("sources.yml")).unwrap_or_else(|e| panic!("{e}"));
        std::fs::create_dir(dir.path().join("pipelines")).unwrap_or_else(|e| panic!("{e}"));
        for e in std::fs::read_dir(root.join("pipelines")).unwrap_or_else(|e| panic!("{e}")).flatten() {
            copy(&e.path(), &dir.path().join("pipelines").join(e.file_name())).unwrap_or_else(|e| panic!("{e}"));
        }
        let cache = dir.path().join("data/cache/pipelines.jsonl");
        (dir, cache)
    }

    #[test]
    fn a_kept_parse_is_the_parse_and_an_edited_file_is_parsed_again() {
        let (dir, cache) = bundled();
        let files = std::fs::read_dir(dir.path().join("pipelines")).map(|d| d.count()).unwrap_or(0);
        // Builds before the one file kept an entry per file in a folder: it goes on the save.
        let folder = cache.with_extension("");
        std::fs::create_dir_all(&folder).unwrap_or_else(|e| panic!("{e}"));
        std::fs::write(folder.join("0a.json"), "[]").unwrap_or_else(|e| panic!("{e}"));
        let first = load(dir.path(), &cache);
        assert!(fresh(&first), "nothing kept yet: every file is parsed");
        assert!(entries(&cache).is_empty(), "loading writes nothing");
        first.keep_parsed();
        assert_eq!(entries(&cache).len(), files, "every bundled file round-trips through JSON and is kept");
        assert!(!folder.exists(), "the folder of an earlier build is removed");

        let second = load(dir.path(), &cache);
        assert!(!fresh(&second), "every file found");
        assert_eq!(specs(&second), specs(&first));
        assert!(second.pipelines.len() > files, "for_each items are kept with their rendered text");
        let before = entries(&cache);
        second.keep_parsed();
        assert_eq!(entries(&cache), before, "nothing parsed, nothing written");

        // An edit is a new key: that file alone is parsed, its old entry removed on save.
        let edited = dir.path().join("pipelines/oasis_interests.yml");
        let text = std::fs::read_to_string(&edited).unwrap_or_default();
        let changed = text.replacen("\ndescription: ", "\ndescription: edited, ", 1);
        assert_ne!(changed, text);
        std::fs::write(&edited, changed).unwrap_or_else(|e| panic!("{e}"));
        let third = load(dir.path(), &cache);
        assert_eq!(third.parsed.as_ref().map(|c| lock(&c.fresh).len()), Some(1));
        assert_eq!(specs(&third), specs(&uncached(dir.path())));
        third.keep_parsed();
        let after = entries(&cache);
        assert_eq!(after.len(), files);
        assert_eq!(after.iter().filter(|e| !before.contains(e)).count(), 1, "one new entry, the old one gone");
        let fourth = load(dir.path(), &cache);
        assert!(!fresh(&fourth));
        assert!(fourth.pipelines.iter().any(|f| f
            .spec
            .description
            .as_deref()
            .is_some_and(|d| d.starts_with("edited, "))));

        // A load of one file of the folder keeps the other files' entries.
        std::fs::write(&edited, text).unwrap_or_else(|e| panic!("{e}"));
        let one = Parsed::at(cache.clone());
        let p = Project::load_reading(dir.path(), &edited, BTreeMap::new(), Read::WithoutTests, one)
            .unwrap_or_else(|d| panic!("{d}"));
        assert!(fresh(&p));
        p.keep_parsed();
        assert_eq!(entries(&cache).len(), files + 1);
    }

    #[test]
    fn a_file_rendered_with_the_environment_is_not_kept() {
        let (dir, cache) = bundled();
        let edited = dir.path().join("pipelines/cops_labour_market.yml");
        let text = std::fs::read_to_string(&edited).unwrap_or_default();
        let changed =
            text.replacen("\ndescription: \"COPS ", "\ndescription: \"{{ env('JOBFORGE_UNSET_XYZ', 'x') }} ", 1);
        assert_ne!(changed, text);
        std::fs::write(&edited, changed).unwrap_or_else(|e| panic!("{e}"));
        let files = std::fs::read_dir(dir.path().join("pipelines")).map(|d| d.count()).unwrap_or(0);
        let first = load(dir.path(), &cache);
        assert!(first.pipelines.iter().any(|f| f.spec.description.as_deref().is_some_and(|d| d.starts_with("x "))));
        first.keep_parsed();
        assert_eq!(entries(&cache).len(), files - 1, "every file but the one reading the environment is kept");
        let second = load(dir.path(), &cache);
        assert_eq!(second.parsed.as_ref().map(|c| lock(&c.fresh).len()), Some(0), "parsed again, still not kept");
        assert_eq!(specs(&second), specs(&first));
    }

    #[test]
    fn an_entry_that_cannot_be_read_is_a_miss() {
        let (dir, cache) = bundled();
        load(dir.path(), &cache).keep_parsed();
        let names = entries(&cache);
        // One torn entry, one of another shape, one line that is no entry: the two files are
        // parsed again and kept anew, the others found.
        let text = std::fs::read_to_string(&cache).unwrap_or_default();
        let text: String = text
            .lines()
            .map(|l| match l.strip_prefix(LINE_START).and_then(|l| l.get(..64)) {
                Some(key) if key == names[0] => format!("{LINE_START}{key}{LINE_ITEMS}[{{\"text\": nu\n"),
                Some(key) if key == names[1] => line(key, "[{\"text\": null, \"spec\": {\"table\": 1}}]"),
                _ => format!("{l}\n"),
            })
            .chain(["not an entry\n".to_string()])
            .collect();
        std::fs::write(&cache, text).unwrap_or_else(|e| panic!("{e}"));
        let p = load(dir.path(), &cache);
        assert_eq!(p.parsed.as_ref().map(|c| lock(&c.fresh).len()), Some(2));
        assert_eq!(specs(&p), specs(&uncached(dir.path())));
        p.keep_parsed();
        assert!(!fresh(&load(dir.path(), &cache)), "both kept anew");
    }

    #[test]
    fn the_key_covers_the_text_the_vars_and_the_build() {
        let of = |build: &str| Parsed {
            file: PathBuf::new(),
            build: build.to_string(),
            kept: OnceLock::new(),
            used: Mutex::default(),
            fresh: Mutex::default(),
            whole: true,
        };
        let (a, b) = (of("a"), of("b"));
        let none = BTreeMap::new();
        let vars = BTreeMap::from([("year".to_string(), "2025".to_string())]);
        let split = BTreeMap::from([("year".to_string(), "20".to_string()), ("25".to_string(), String::new())]);
        assert_eq!(a.key("table: t", &none), a.key("table: t", &none));
        assert_ne!(a.key("table: t", &none), a.key("table: u", &none));
        assert_ne!(a.key("table: t", &none), a.key("table: t", &vars));
        assert_ne!(a.key("table: t", &vars), a.key("table: t", &split));
        assert_ne!(a.key("table: t", &none), b.key("table: t", &none));
    }
}
