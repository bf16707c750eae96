//! Configuration: the YAML files parsed into typed, unknown-key-rejecting structs, with every
//! syntax or shape error located at its file, line and column.

pub mod parsed;
pub mod pipeline;
pub mod sources;
pub mod template;

use crate::diag::{did_you_mean, Diagnostic, Diagnostics, SourceText};
use serde::de::DeserializeOwned;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

pub use pipeline::Pipeline;
pub use sources::{Source, SourcesFile};

/// The pipeline folder inside a run's config snapshot.
pub const SNAPSHOT_PIPELINES: &str = "pipelines";

/// One parsed pipeline file with its text, kept for locating later diagnostics.
#[derive(Debug, Clone)]
pub struct PipelineFile {
    pub text: SourceText,
    pub spec: Pipeline,
}

/// Everything the user wrote: the source registry and the pipeline specs.
#[derive(Debug, Clone)]
pub struct Project {
    /// Folder holding `sources.yml`; relative paths start here.
    pub dir: PathBuf,
    pub sources_text: SourceText,
    pub sources: SourcesFile,
    pub pipelines: Vec<PipelineFile>,
    /// The pipeline files as written (before `for_each` expansion).
    pub pipeline_texts: Vec<SourceText>,
    /// `--var key=value` settings for templates.
    pub vars: BTreeMap<String, String>,
    /// The kept parses the pipeline files were looked up in, if any (`keep_parsed` writes what
    /// this load added).
    pub parsed: Option<std::sync::Arc<parsed::Parsed>>,
}

/// What to read of the pipeline files.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Read {
    /// Everything.
    All,
    /// All but the unit tests (`run` and `plan` do not need them): their top-level `tests:`
    /// block is skipped before parsing, its lines kept blank so that locations stay true.
    WithoutTests,
}

impl Project {
    /// Loads `sources.yml` from `dir` and every `*.yml`/`*.yaml` under `pipelines`, collecting
    /// all parse errors before failing.
    pub fn load(dir: &Path, pipelines: &Path, vars: BTreeMap<String, String>) -> Result<Project, Diagnostics> {
        Project::load_reading(dir, pipelines, vars, Read::All, None)
    }

    /// `load`, reading what `read` says of the pipeline files, each looked up first in the
    /// parses `parsed` keeps.
    pub fn load_reading(
        dir: &Path,
        pipelines: &Path,
        vars: BTreeMap<String, String>,
        read: Read,
        parsed: Option<parsed::Parsed>,
    ) -> Result<Project, Diagnostics> {
        Project::load_from(&Files::Disk, dir, pipelines, vars, read, parsed)
    }

    /// `load` of the config files a run recorded (`config_snapshot`: `sources.yml` and
    /// `pipelines/<file name>`, with their texts), as if they were the files of folder `dir`.
    pub fn load_recorded(
        dir: &Path,
        recorded: &BTreeMap<String, String>,
        vars: BTreeMap<String, String>,
    ) -> Result<Project, Diagnostics> {
        let files = recorded.iter().map(|(rel, text)| (dir.join(rel), text.as_str())).collect();
        let pipelines = Path::new(SNAPSHOT_PIPELINES);
        Project::load_from(&Files::Recorded(files), dir, pipelines, vars, Read::All, None)
    }

    fn load_from(
        files: &Files,
        dir: &Path,
        pipelines: &Path,
        vars: BTreeMap<String, String>,
        read: Read,
        parsed: Option<parsed::Parsed>,
    ) -> Result<Project, Diagnostics> {
        use rayon::prelude::*;
        let mut diags = Diagnostics::default();
        let sources_path = dir.join("sources.yml");
        let pipelines_dir = pipelines_path(dir, pipelines);
        let parsed = parsed.map(|p| if files.is_file(&pipelines_dir) { p.of_one_file() } else { p });
        // Every file is parsed on its own, on the cores at once; their problems are listed in
        // the order the files are read one by one (sources.yml, then pipelines by path). The
        // pipelines go first: the pool's second thread, still starting, takes sources.yml.
        let (pipelines, sources) = polars_core::runtime::THREAD_POOL.join(
            || {
                files.pipeline_paths(&pipelines_dir).map(|paths| {
                    paths
                        .par_iter()
                        .map(|path| load_pipeline(files, path, &vars, read, parsed.as_ref()))
                        .collect::<Vec<_>>()
                })
            },
            || {
                let mut diags = Diagnostics::default();
                let sources = files
                    .read(&sources_path, &mut diags)
                    .and_then(|t| parse::<SourcesFile>(&t, &mut diags).map(|s| (t, s)));
                (sources, diags)
            },
        );
        let (sources, sources_diags) = sources;
        diags.extend(sources_diags);
        let mut files = Vec::new();
        let mut texts = Vec::new();
        match pipelines {
            Ok(loaded) if loaded.is_empty() => {
                diags.push(Diagnostic::new(&pipelines_dir, (1, 1), "no pipeline files (*.yml) found"))
            }
            Ok(loaded) => {
                for (text, specs, file_diags) in loaded {
                    texts.extend(text);
                    files.extend(specs);
                    diags.extend(file_diags);
                }
            }
            Err(e) => diags.push(Diagnostic::new(&pipelines_dir, (1, 1), format!("cannot read pipeline folder: {e}"))),
        }
        if let Some((text, s)) = &sources {
            check_version(text, s, &mut diags);
        }
        match sources {
            Some((sources_text, sources)) if diags.is_empty() => Ok(Project {
                dir: dir.to_path_buf(),
                sources_text,
                sources,
                pipelines: files,
                pipeline_texts: texts,
                vars,
                parsed: parsed.map(std::sync::Arc::new),
            }),
            _ => Err(diags),
        }
    }

    /// SHA-256 of the config files this load read, as it read them (see [`config_digest`]).
    pub fn config_digest(&self) -> String {
        digest(&self.sources_text, &self.pipeline_texts)
    }

    /// Keeps the parses of the pipeline files this load parsed (see `parsed`); writes nothing
    /// when each was found.
    pub fn keep_parsed(&self) {
        if let Some(p) = &self.parsed {
            p.save(&self.pipelines);
        }
    }

    /// Loads `sources.yml` alone (for commands that need no pipelines).
    pub fn load_sources(dir: &Path, vars: BTreeMap<String, String>) -> Result<Project, Diagnostics> {
        let mut diags = Diagnostics::default();
        let sources_text = Files::Disk.read(&dir.join("sources.yml"), &mut diags);
        let sources = sources_text.as_ref().and_then(|t| parse::<SourcesFile>(t, &mut diags));
        if let (Some(text), Some(s)) = (&sources_text, &sources) {
            check_version(text, s, &mut diags);
        }
        match (sources_text, sources) {
            (Some(sources_text), Some(sources)) if diags.is_empty() => Ok(Project {
                dir: dir.to_path_buf(),
                sources_text,
                sources,
                pipelines: vec![],
                pipeline_texts: vec![],
                vars,
                parsed: None,
            }),
            _ => Err(diags),
        }
    }

    /// The data folder (owned by `store`).
    pub fn data_dir(&self) -> PathBuf {
        self.dir.join("data")
    }

    /// The files as written, for a run's record of what it compiled: `sources.yml` and
    /// `pipelines/<file name>`.
    pub fn config_snapshot(&self) -> Vec<(String, String)> {
        let mut out = vec![("sources.yml".to_string(), self.sources_text.text.clone())];
        for t in &self.pipeline_texts {
            let name = t.path.file_name().map(|n| n.to_string_lossy().to_string()).unwrap_or_default();
            out.push((format!("{SNAPSHOT_PIPELINES}/{name}"), t.text.clone()));
        }
        out
    }
}

/// The text with the lines of its top-level `tests:` block blank (up to the next top-level key).
fn without_tests(mut text: SourceText) -> SourceText {
    let mut inside = false;
    let lines: Vec<&str> = text
        .text
        .split_inclusive('\n')
        .map(|line| {
            let top = line.starts_with(|c: char| !c.is_whitespace() && c != '#');
            if top {
                inside = line.starts_with("tests:");
            }
            if inside {
                if line.ends_with('\n') {
                    "\n"
                } else {
                    ""
                }
            } else {
                line
            }
        })
        .collect();
    text.text = lines.concat();
    text
}

/// A pipeline file with a top-level `for_each: [a, b]` stands for one table per item: its text
/// is rendered with minijinja once per item (`{{ item }}`), keeping its lines, so errors still
/// point into the file as written. `ref()` calls are kept for the `sql` step to resolve. The
/// flag is true when rendering read the environment (`env()`).
fn expand_for_each(
    text: SourceText,
    vars: &BTreeMap<String, String>,
    diags: &mut Diagnostics,
) -> (Vec<SourceText>, bool) {
    // Most files have no `for_each` anywhere; they are parsed once, as pipelines, not twice.
    if !text.text.contains("for_each") {
        return (vec![text], false);
    }
    // Only `for_each` is read here; the rest is stepped over (the file is read as a pipeline
    // once per item).
    #[derive(serde::Deserialize)]
    struct ForEach {
        // `Some` whenever the key is there, `null` included.
        #[serde(default, deserialize_with = "present")]
        for_each: Option<serde_yaml::Value>,
    }
    fn present<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<serde_yaml::Value>, D::Error> {
        serde::Deserialize::deserialize(d).map(Some)
    }
    let items = match serde_yaml::from_str::<ForEach>(&text.text) {
        Ok(v) => match v.for_each {
            None => return (vec![text], false),
            Some(serde_yaml::Value::Sequence(seq)) => seq,
            Some(_) => {
                let at = text.locate(None, "for_each");
                diags.push(Diagnostic::new(&text.path, at, "`for_each` must be a list of items, e.g. [a, b]"));
                return (vec![], false);
            }
        },
        Err(_) => return (vec![text], false),
    };
    let at = text.locate(None, "for_each");
    if items.is_empty() {
        diags.push(Diagnostic::new(&text.path, at, "`for_each` is empty: list at least one item, or remove it"));
        return (vec![], false);
    }
    let mut names = Vec::new();
    for item in &items {
        match item {
            serde_yaml::Value::String(s) => names.push(s.clone()),
            serde_yaml::Value::Number(n) => names.push(n.to_string()),
            serde_yaml::Value::Bool(b) => names.push(b.to_string()),
            other => {
                let shown = serde_yaml::to_string(other).unwrap_or_default().trim().replace('\n', " ");
                diags.push(Diagnostic::new(
                    &text.path,
                    at,
                    format!("`for_each` item `{shown}` is not a single value (text, number or boolean)"),
                ));
                return (vec![], false);
            }
        }
    }
    let keep_ref = |r: &str| Ok(format!("{{{{ ref('{r}') }}}}"));
    let renders = template::render_each(&text.text, vars, &names, &keep_ref);
    let items = renders
        .items
        .into_iter()
        .zip(&names)
        .filter_map(|(rendered, item)| match rendered {
            Ok(rendered) => Some(SourceText { path: text.path.clone(), text: rendered }),
            Err(e) => {
                let at = e.line.map_or(at, |l| (l, 1));
                diags.push(Diagnostic::new(&text.path, at, format!("for_each item `{item}`: {e}")));
                None
            }
        })
        .collect();
    (items, renders.read_env)
}

/// The file format version this jobforge reads.
fn check_version(text: &SourceText, sources: &SourcesFile, diags: &mut Diagnostics) {
    if sources.version != 1 {
        let at = text.locate(None, "version");
        diags.push(Diagnostic::new(
            &text.path,
            at,
            format!("`version: {}` is not supported; this jobforge reads `version: 1`", sources.version),
        ));
    }
}

/// SHA-256 of the config files a load of `pipelines` in project `dir` reads, as they are now
/// (`sources.yml` and each pipeline file, by path); `None` when one cannot be read. Equal to
/// [`Project::config_digest`] of such a load exactly when the files read the same.
pub fn config_digest(dir: &Path, pipelines: &Path) -> Option<String> {
    let sources = SourceText::read(&dir.join("sources.yml")).ok()?;
    let paths = Files::Disk.pipeline_paths(&pipelines_path(dir, pipelines)).ok()?;
    let texts = paths.iter().map(|p| SourceText::read(p).ok()).collect::<Option<Vec<_>>>()?;
    Some(digest(&sources, &texts))
}

fn digest(sources: &SourceText, pipelines: &[SourceText]) -> String {
    use sha2::{Digest, Sha256};
    let mut h = Sha256::new();
    for t in std::iter::once(sources).chain(pipelines) {
        let path = t.path.to_string_lossy();
        h.update(format!("{}:{path}{}:", path.len(), t.text.len()));
        h.update(&t.text);
    }
    format!("{:x}", h.finalize())
}

/// The pipelines folder (or file) of a project: `pipelines` as given, relative to `dir`.
fn pipelines_path(dir: &Path, pipelines: &Path) -> PathBuf {
    if pipelines.is_absolute() {
        pipelines.to_path_buf()
    } else {
        dir.join(pipelines)
    }
}

/// Where a load reads the config files: the file system, or the texts a run recorded (by the
/// path each would have in the project's folder).
enum Files<'a> {
    Disk,
    Recorded(BTreeMap<PathBuf, &'a str>),
}

impl Files<'_> {
    /// The text of the file at `path`, or its problem in `diags`.
    fn read(&self, path: &Path, diags: &mut Diagnostics) -> Option<SourceText> {
        let read = match self {
            Files::Disk => SourceText::read(path),
            Files::Recorded(files) => match files.get(path) {
                Some(text) => Ok(SourceText { path: path.to_path_buf(), text: text.to_string() }),
                None => Err(Diagnostic::new(path, (1, 1), "the run recorded no such file")),
            },
        };
        read.map_err(|d| diags.push(d)).ok()
    }

    fn is_file(&self, path: &Path) -> bool {
        match self {
            Files::Disk => path.is_file(),
            Files::Recorded(files) => files.contains_key(path),
        }
    }

    /// The pipeline files of a folder (or the one file named), sorted by name.
    fn pipeline_paths(&self, path: &Path) -> std::io::Result<Vec<PathBuf>> {
        if self.is_file(path) {
            return Ok(vec![path.to_path_buf()]);
        }
        let yaml = |p: &Path| p.extension().is_some_and(|x| x == "yml" || x == "yaml");
        let mut paths: Vec<PathBuf> = match self {
            Files::Disk => {
                std::fs::read_dir(path)?.filter_map(|e| e.ok().map(|e| e.path())).filter(|p| yaml(p)).collect()
            }
            Files::Recorded(files) => files.keys().filter(|p| p.parent() == Some(path) && yaml(p)).cloned().collect(),
        };
        paths.sort();
        Ok(paths)
    }
}

/// One pipeline file: its text as written, the pipelines it holds (one, or one per `for_each`
/// item) and its problems.
fn load_pipeline(
    files: &Files,
    path: &Path,
    vars: &BTreeMap<String, String>,
    read: Read,
    parsed: Option<&parsed::Parsed>,
) -> (Option<SourceText>, Vec<PipelineFile>, Diagnostics) {
    let mut diags = Diagnostics::default();
    let Some(text) = files.read(path, &mut diags) else { return (None, vec![], diags) };
    let written = text.clone();
    let text = if read == Read::WithoutTests { without_tests(text) } else { text };
    let key = parsed.map(|p| p.key(&text.text, vars));
    if let Some((p, key)) = parsed.zip(key.as_ref()) {
        if let Some(files) = p.get(key, &text) {
            return (Some(written), files, diags);
        }
    }
    let parsed_text = key.is_some().then(|| text.text.clone());
    // The items of a `for_each` file are parsed on the cores at once too: one such file holds
    // up to ten pipelines, and parsed in turn it would be the longest task of the load.
    use rayon::prelude::*;
    let (expanded, read_env) = expand_for_each(text, vars, &mut diags);
    let items: Vec<(SourceText, Option<Pipeline>, Diagnostics)> = expanded
        .into_par_iter()
        .map(|text| {
            let mut diags = Diagnostics::default();
            let spec = parse::<Pipeline>(&text, &mut diags);
            (text, spec, diags)
        })
        .collect();
    let mut files = Vec::new();
    for (text, spec, item_diags) in items {
        diags.extend(item_diags);
        files.extend(spec.map(|spec| PipelineFile { text, spec }));
    }
    // A file rendered with the environment is not kept: its parse depends on more than its key.
    if let (Some(p), Some(key), Some(text)) = (parsed, key, parsed_text) {
        if diags.is_empty() && !read_env {
            p.remember(key, path, text);
        }
    }
    (Some(written), files, diags)
}

/// Parses YAML into `T`, turning serde's error into a located diagnostic with a hint. A key
/// given twice in one mapping is an error at the repeat.
pub fn parse<T: DeserializeOwned>(text: &SourceText, diags: &mut Diagnostics) -> Option<T> {
    let duplicates = text.duplicate_keys();
    if !duplicates.is_empty() {
        for d in duplicates {
            diags.push(d);
        }
        return None;
    }
    match serde_yaml::from_str::<T>(&text.text) {
        Ok(v) => Some(v),
        Err(e) => {
            let at = e.location().map(|l| (l.line(), l.column())).unwrap_or((1, 1));
            let full = e.to_string();
            let message = match full.rfind(" at line ") {
                Some(i) => full[..i].to_string(),
                None => full,
            };
            let hint = unknown_name_hint(&message);
            diags.push(Diagnostic::new(&text.path, at, message).with_hint(hint));
            None
        }
    }
}

/// For serde's "unknown field `x`, expected one of `a`, `b`" (or variant), the closest name.
fn unknown_name_hint(message: &str) -> Option<String> {
    let rest = message.split("unknown field `").nth(1).or_else(|| message.split("unknown variant `").nth(1))?;
    let name = rest.split('`').next()?;
    let expected: Vec<&str> = rest.split('`').skip(2).step_by(2).collect();
    did_you_mean(name, expected)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hints_unknown_field() {
        let m = "unknown field `pth`, expected one of `path`, `pattern`";
        assert_eq!(unknown_name_hint(m).as_deref(), Some("did you mean `path`?"));
    }

    /// The bundled project loaded from its files, and from the record a run keeps of them.
    #[test]
    fn a_recorded_config_loads_as_its_files_do() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR"));
        let loaded = Project::load(root, Path::new("pipelines"), BTreeMap::new()).unwrap_or_else(|d| panic!("{d}"));
        let recorded: BTreeMap<String, String> = loaded.config_snapshot().into_iter().collect();
        let at = Path::new("runs/r/config.json");
        let again = Project::load_recorded(at, &recorded, BTreeMap::new()).unwrap_or_else(|d| panic!("{d}"));
        let specs = |p: &Project| -> Vec<(String, String)> {
            let spec = |f: &PipelineFile| serde_json::to_string(&f.spec).unwrap_or_default();
            p.pipelines.iter().map(|f| (f.text.text.clone(), spec(f))).collect()
        };
        assert!(loaded.pipelines.len() > 30);
        assert_eq!(specs(&again), specs(&loaded));
        assert_eq!(again.sources.sources.len(), loaded.sources.sources.len());
        assert_eq!(again.config_snapshot(), loaded.config_snapshot());
        assert!(again.pipelines.iter().all(|f| f.text.path.starts_with(at.join("pipelines"))));

        // A record without sources.yml names the file it lacks.
        let mut partial = recorded;
        partial.remove("sources.yml");
        let e = Project::load_recorded(at, &partial, BTreeMap::new()).err().map(|d| d.to_string()).unwrap_or_default();
        assert!(e.contains("runs/r/config.json/sources.yml") && e.contains("recorded no such file"), "{e}");
    }
}
