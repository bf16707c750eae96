//! The layer plan: config compiled into a petgraph DAG of (table, layer) nodes with cross-table
//! edges, every reference resolved and every column checked, reading no data rows.

pub mod check;
pub mod render;
pub mod resolve;

use crate::config::pipeline::{Pipeline, Step};
use crate::config::sources::{Format, ReadOptions, Source};
use crate::config::{template, PipelineFile, Project};
use crate::diag::{did_you_mean, Diagnostic, Diagnostics, SourceText};
use petgraph::graph::{DiGraph, NodeIndex};
use serde::Serialize;
use std::collections::{BTreeSet, HashMap};
use std::fmt;
use std::str::FromStr;

pub use resolve::ResolvedFile;

/// The four medallion layers, in order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Layer {
    Staged,
    Bronze,
    Silver,
    Gold,
}

impl Layer {
    pub const ALL: [Layer; 4] = [Layer::Staged, Layer::Bronze, Layer::Silver, Layer::Gold];

    pub fn name(self) -> &'static str {
        match self {
            Layer::Staged => "staged",
            Layer::Bronze => "bronze",
            Layer::Silver => "silver",
            Layer::Gold => "gold",
        }
    }
}

impl fmt::Display for Layer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Layer {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        Layer::ALL
            .into_iter()
            .find(|l| l.name() == s)
            .ok_or_else(|| format!("unknown layer `{s}` (staged, bronze, silver, gold)"))
    }
}

/// A reference `layer.table` (or `table`, meaning gold) to another table's output.
pub fn parse_ref(reference: &str) -> Result<(Layer, &str), String> {
    match reference.split_once('.') {
        Some((layer, table)) => Ok((layer.parse()?, table)),
        None => Ok((Layer::Gold, reference)),
    }
}

/// One node of the plan: a table at a layer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Node {
    pub table: usize,
    pub layer: Layer,
}

/// Everything the executor needs to build one table.
#[derive(Debug, Clone)]
pub struct TablePlan {
    pub name: String,
    pub spec: Pipeline,
    pub text: SourceText,
    pub source_id: String,
    pub source: Source,
    pub format: Format,
    pub read: ReadOptions,
    pub file: ResolvedFile,
    /// The published header of the source file.
    pub header: Vec<String>,
    /// Bronze names of the header columns, in the same order.
    pub bronze_names: Vec<String>,
    /// Output columns per layer, where known at compile time.
    pub columns: HashMap<Layer, Vec<String>>,
    /// The project's default checks (`defaults.checks` of sources.yml) this table gets: those
    /// whose name none of its own checks takes.
    pub default_checks: Vec<crate::checks::Check>,
}

impl TablePlan {
    /// The table's data-quality checks: its own, then the project's defaults it gets.
    pub fn checks(&self) -> Vec<crate::checks::Check> {
        self.spec.checks.iter().chain(&self.default_checks).cloned().collect()
    }

    pub fn steps(&self, layer: Layer) -> &[Step] {
        match layer {
            Layer::Silver => &self.spec.silver,
            Layer::Gold => &self.spec.gold,
            _ => &[],
        }
    }
}

/// The compiled plan: tables, their node graph and an execution order.
#[derive(Debug)]
pub struct Plan {
    pub tables: Vec<TablePlan>,
    pub graph: DiGraph<Node, ()>,
    pub order: Vec<NodeIndex>,
    index: HashMap<Node, NodeIndex>,
    /// (table, layer, column) holding values of a column the model marks `pii`: never shown
    /// outside the data (metadata examples, rule reasons, check results).
    pub pii: std::collections::HashSet<(String, Layer, String)>,
    /// The source files and folders compile looked at on disk, as it saw them (size and
    /// modification time): unchanged, they resolve and read as they did. `None` when compile
    /// also looked where it cannot say (a wildcard folder, a run's record).
    pub looked_at: Option<Vec<ResolvedFile>>,
    /// Files compile looked for and did not find (a project without a model).
    pub missing: Vec<std::path::PathBuf>,
    /// Sources the compile of a run read whole, for its staged layers (see `compile_to_run`).
    pub read_ahead: crate::reader::ReadAhead,
}

impl Plan {
    /// Whether `column` of `table` at `layer` holds personal information.
    pub fn is_pii(&self, table: &str, layer: Layer, column: &str) -> bool {
        !self.pii.is_empty() && self.pii.contains(&(table.to_string(), layer, column.to_string()))
    }

    /// The names of every column, of any table and layer, that holds personal information.
    pub fn pii_names(&self) -> std::collections::BTreeSet<String> {
        self.pii.iter().map(|(_, _, c)| c.clone()).collect()
    }

    /// The columns of `table`, at any layer, that hold personal information.
    pub fn pii_columns(&self, table: &str) -> std::collections::BTreeSet<String> {
        self.pii.iter().filter(|(t, _, _)| t == table).map(|(_, _, c)| c.clone()).collect()
    }

    pub fn table(&self, name: &str) -> Option<usize> {
        self.tables.iter().position(|t| t.name == name)
    }

    pub fn node(&self, table: usize, layer: Layer) -> NodeIndex {
        self.index[&Node { table, layer }]
    }

    /// Nodes of other tables that `node` reads.
    pub fn cross_dependencies(&self, node: NodeIndex) -> Vec<Node> {
        let me = self.graph[node].table;
        self.graph
            .neighbors_directed(node, petgraph::Direction::Incoming)
            .map(|n| self.graph[n])
            .filter(|n| n.table != me)
            .collect()
    }

    /// Nodes of other tables that read `node`.
    pub fn cross_readers(&self, node: NodeIndex) -> impl Iterator<Item = NodeIndex> + '_ {
        let me = self.graph[node].table;
        self.graph.neighbors_directed(node, petgraph::Direction::Outgoing).filter(move |n| self.graph[*n].table != me)
    }

    /// Table indices reachable from `start` along (or against) the edges.
    pub fn reach(&self, start: usize, direction: petgraph::Direction) -> BTreeSet<usize> {
        let mut seen = BTreeSet::new();
        let mut stack: Vec<NodeIndex> = Layer::ALL.iter().map(|l| self.node(start, *l)).collect();
        let mut visited = std::collections::HashSet::new();
        while let Some(n) = stack.pop() {
            if !visited.insert(n) {
                continue;
            }
            seen.insert(self.graph[n].table);
            stack.extend(self.graph.neighbors_directed(n, direction));
        }
        seen
    }

    /// Resolves `--select` entries (`name`, `name+` with downstream, `+name` with upstream).
    pub fn select(&self, selectors: &[String]) -> Result<BTreeSet<usize>, String> {
        if selectors.is_empty() {
            return Ok((0..self.tables.len()).collect());
        }
        let mut out = BTreeSet::new();
        for s in selectors {
            let up = s.starts_with('+');
            let down = s.ends_with('+');
            let name = s.trim_matches('+');
            let t = self.table(name).ok_or_else(|| {
                let hint = did_you_mean(name, self.tables.iter().map(|t| t.name.as_str()))
                    .map(|h| format!("; {h}"))
                    .unwrap_or_default();
                format!("--select: no table `{name}`{hint}")
            })?;
            out.insert(t);
            if down {
                out.extend(self.reach(t, petgraph::Direction::Outgoing));
            }
            if up {
                out.extend(self.reach(t, petgraph::Direction::Incoming));
            }
        }
        Ok(out)
    }
}

/// A source file as a run recorded it, so that its plan compiles again without the file.
#[derive(Debug, Clone)]
pub struct RecordedSource {
    pub path: std::path::PathBuf,
    pub size: u64,
    pub header: Vec<String>,
}

/// Where compile finds each source's file and header.
enum SourceFiles<'a> {
    /// On disk, under the source root (none when it does not resolve); the sources whose
    /// header takes a whole read kept in the read-ahead when one is given.
    Live(Option<std::path::PathBuf>, &'a KnownHeaders, Option<&'a crate::reader::ReadAhead>),
    /// As a run recorded them, by source id.
    Recorded(&'a HashMap<String, RecordedSource>),
}

/// Each source's file and header, or the problem finding or reading them, by source id.
type SourceHeaders = HashMap<String, Result<(ResolvedFile, Vec<String>), Diagnostic>>;

impl SourceFiles<'_> {
    /// Resolves each of `ids` (sources of `sources.yml`) and reads its header once, however
    /// many tables read it; sources on disk on the cores at once. Also what finding them looked
    /// at (see `Plan::looked_at`).
    fn headers(&self, project: &Project, ids: BTreeSet<&str>) -> (SourceHeaders, Option<Vec<ResolvedFile>>) {
        use rayon::prelude::*;
        let at = |id: &str| project.sources_text.locate(Some("sources:"), id);
        let recorded = |recorded: &HashMap<String, RecordedSource>, id: &str| {
            recorded.get(id).map(|r| (ResolvedFile::recorded(r.path.clone(), r.size), r.header.clone()))
        };
        match self {
            SourceFiles::Live(root, known, ahead) => {
                let Some(root) = root else { return (HashMap::new(), None) };
                let listings = resolve::Listings::default();
                let from_record = std::sync::atomic::AtomicBool::new(false);
                let defaults = &project.sources.defaults;
                let format_of = |id: &str, path: &std::path::Path| {
                    crate::reader::format_of(path, project.sources.sources[id].format.or(defaults.format))
                };
                // Finding each file is cheap (a listing, a stat); reading its header is not (a
                // JSON file's is a whole read), and the compile waits for the last one. So the
                // headers are read longest first, each core taking the next: a long read left to
                // the end would keep one core busy while the other waits.
                let find = |id: &str| resolve::resolve(project, root, id, &project.sources.sources[id], &listings);
                let mut found: Vec<(&str, Result<ResolvedFile, String>)> = polars_core::runtime::THREAD_POOL
                    .install(|| ids.into_par_iter().map(|id| (id, find(id))).collect());
                let cost = |(id, found): &(&str, Result<ResolvedFile, String>)| {
                    found.as_ref().map_or(0, |f| crate::reader::header_bytes(f.size, format_of(id, &f.path)))
                };
                found.sort_by_key(|f| std::cmp::Reverse(cost(f)));
                let one = |(id, resolved): (&str, Result<ResolvedFile, String>)| {
                    let source = &project.sources.sources[id];
                    let resolved = match resolved {
                        Ok(resolved) => resolved,
                        Err(m) => {
                            from_record.store(true, std::sync::atomic::Ordering::Relaxed);
                            return recorded(&known.recorded, id)
                                .ok_or_else(|| Diagnostic::new(&project.sources_text.path, at(id), m));
                        }
                    };
                    let format = format_of(id, &resolved.path);
                    let read = source.read.over(&defaults.read);
                    let header = known
                        .get(&resolved.path)
                        .map_or_else(
                            || match ahead {
                                Some(ahead) => ahead.header(id, &resolved.path, format, &read),
                                None => crate::reader::read_header(&resolved.path, format, &read),
                            },
                            Ok,
                        )
                        .map_err(|e| Diagnostic::new(&resolved.path, e.at.unwrap_or((1, 1)), e.message))?;
                    Ok((resolved, header))
                };
                // `par_bridge` hands the files out in order, one at a time, to whichever core is free.
                let headers = polars_core::runtime::THREAD_POOL
                    .install(|| found.into_iter().par_bridge().map(|f| (f.0.to_string(), one(f))).collect());
                let looked_at = listings.looked_at().filter(|_| !from_record.into_inner());
                (headers, looked_at)
            }
            SourceFiles::Recorded(r) => {
                let headers = ids
                    .into_iter()
                    .map(|id| {
                        let m = format!("source `{id}` is not in the run's record");
                        (
                            id.to_string(),
                            recorded(r, id).ok_or_else(|| Diagnostic::new(&project.sources_text.path, at(id), m)),
                        )
                    })
                    .collect();
                (headers, None)
            }
        }
    }
}

/// Headers of source files that a run has already read whole without a problem, by path: a file
/// with the same size and modification time is not read again at compile.
#[derive(Debug, Default)]
pub struct KnownHeaders {
    by_path: HashMap<std::path::PathBuf, (u64, std::time::SystemTime, Vec<String>)>,
    /// Set by `when_missing`: by source id, the file and header a snapshot recorded, used when
    /// the source's file cannot be found.
    recorded: HashMap<String, RecordedSource>,
}

impl KnownHeaders {
    /// The source files of a snapshot that a table it holds was built from (so they were read
    /// whole without a problem), with the size, time and header recorded for them.
    pub fn from_snapshot(m: &crate::store::Manifest) -> KnownHeaders {
        let built_from = |id: &String, sha: &String| {
            m.tables.values().any(|t| &t.source == id && t.source_sha256.as_ref() == Some(sha) && !t.files.is_empty())
        };
        let by_path = m
            .sources
            .iter()
            .filter_map(|(id, s)| {
                let (modified, sha) = (s.modified?, s.sha256.as_ref()?);
                built_from(id, sha).then(|| (s.path.clone().into(), (s.size, modified.into(), s.header.clone())))
            })
            .collect();
        KnownHeaders { by_path, recorded: HashMap::new() }
    }

    /// Also compiles a table whose source file is missing, with the file and header snapshot `m`
    /// recorded for its source (for `jobforge test`, which reads no source data).
    pub fn when_missing(mut self, m: &crate::store::Manifest) -> KnownHeaders {
        self.recorded = m
            .sources
            .iter()
            .map(|(id, s)| {
                (id.clone(), RecordedSource { path: s.path.clone().into(), size: s.size, header: s.header.clone() })
            })
            .collect();
        self
    }

    /// The recorded header of `path`, if the file still has the recorded size and time.
    fn get(&self, path: &std::path::Path) -> Option<Vec<String>> {
        let (size, modified, header) = self.by_path.get(path)?;
        let meta = std::fs::metadata(path).ok()?;
        (meta.len() == *size && meta.modified().ok()? == *modified).then(|| header.clone())
    }
}

/// Compiles the project into a plan, collecting every problem before failing.
pub fn compile(project: &Project) -> Result<Plan, Diagnostics> {
    compile_known(project, &KnownHeaders::default())
}

/// `compile`, taking the headers of `known` files as read.
pub fn compile_known(project: &Project, known: &KnownHeaders) -> Result<Plan, Diagnostics> {
    compile_live(project, known, None)
}

/// `compile_known` for a run: the sources whose header takes reading them whole (JSON) are read
/// once, their frames kept in the plan's `read_ahead` for the staged layers.
pub fn compile_to_run(project: &Project, known: &KnownHeaders) -> Result<Plan, Diagnostics> {
    let ahead = crate::reader::ReadAhead::default();
    let mut plan = compile_live(project, known, Some(&ahead))?;
    plan.read_ahead = ahead;
    Ok(plan)
}

fn compile_live(
    project: &Project,
    known: &KnownHeaders,
    ahead: Option<&crate::reader::ReadAhead>,
) -> Result<Plan, Diagnostics> {
    let mut diags = Diagnostics::default();
    let root = match resolve::source_root(project) {
        Ok(r) => Some(r),
        Err(m) => {
            diags.push(project.sources_text.diag(Some("defaults:"), "root", m));
            None
        }
    };
    compile_with(project, SourceFiles::Live(root, known, ahead), diags)
}

/// Compiles a run's recorded config against the source files it recorded (no file is read).
pub fn compile_recorded(project: &Project, recorded: &HashMap<String, RecordedSource>) -> Result<Plan, Diagnostics> {
    compile_with(project, SourceFiles::Recorded(recorded), Diagnostics::default())
}

fn compile_with(project: &Project, files: SourceFiles, mut diags: Diagnostics) -> Result<Plan, Diagnostics> {
    use rayon::prelude::*;
    // The tables' names first, in file order; then each table on its own, on the cores at once,
    // its problems listed in file order.
    let mut names = HashMap::new();
    let mut planned: Vec<Result<&PipelineFile, Diagnostic>> = Vec::new();
    for file in &project.pipelines {
        let spec = &file.spec;
        if let Err(m) = crate::store::names::check_table_name(&spec.table) {
            let at = file.text.locate(None, "table:");
            planned.push(Err(Diagnostic::new(&file.text.path, at, m)));
        } else if let Some(first) = names.insert(spec.table.clone(), file.text.path.clone()) {
            let m = format!("table `{}` is also defined in {}", spec.table, first.display());
            planned.push(Err(file.text.diag(None, &spec.table, m)));
        } else {
            planned.push(Ok(file));
        }
    }
    let ids = planned
        .iter()
        .flatten()
        .map(|f| f.spec.source.as_str())
        .filter(|id| project.sources.sources.contains_key(*id))
        .collect();
    let (headers, looked_at) = files.headers(project, ids);
    let planned: Vec<(Option<TablePlan>, Diagnostics)> = polars_core::runtime::THREAD_POOL.install(|| {
        planned
            .into_par_iter()
            .map(|p| {
                let mut diags = Diagnostics::default();
                let table = match p {
                    Ok(file) => plan_table(project, &headers, file, &mut diags),
                    Err(d) => {
                        diags.push(d);
                        None
                    }
                };
                (table, diags)
            })
            .collect()
    });
    let mut tables = Vec::new();
    for (table, table_diags) in planned {
        tables.extend(table);
        diags.extend(table_diags);
    }
    let mut graph = DiGraph::new();
    let mut index = HashMap::new();
    for (t, _) in tables.iter().enumerate() {
        let mut previous = None;
        for layer in Layer::ALL {
            let node = Node { table: t, layer };
            let n = graph.add_node(node);
            index.insert(node, n);
            if let Some(p) = previous {
                graph.add_edge(p, n, ());
            }
            previous = Some(n);
        }
    }
    for (t, table) in tables.iter().enumerate() {
        for layer in [Layer::Silver, Layer::Gold] {
            for reference in step_references(table.steps(layer)) {
                let section = format!("{layer}:");
                match parse_ref(&reference) {
                    Err(m) => diags.push(table.text.diag(Some(&section), &reference, m)),
                    Ok((ref_layer, name)) => match tables.iter().position(|x| x.name == name) {
                        Some(other) => {
                            graph.add_edge(
                                index[&Node { table: other, layer: ref_layer }],
                                index[&Node { table: t, layer }],
                                (),
                            );
                        }
                        // Defined but not plannable: its own error is already reported.
                        None if names.contains_key(name) => {}
                        None => diags.push(
                            table
                                .text
                                .diag(Some(&section), name, format!("unknown table `{name}` in ref `{reference}`"))
                                .with_hint(did_you_mean(name, tables.iter().map(|x| x.name.as_str()))),
                        ),
                    },
                }
            }
        }
    }
    let order = match petgraph::algo::toposort(&graph, None) {
        Ok(order) => order,
        Err(cycle) => {
            let path = cycle_path(&graph, cycle.node_id());
            let describe = |n: &NodeIndex| format!("{}.{}", graph[*n].layer, tables[graph[*n].table].name);
            let text = path.iter().map(describe).collect::<Vec<_>>().join(" -> ");
            let first = &tables[graph[path[0]].table];
            let target = &tables[graph[path[1]].table].name;
            diags.push(first.text.diag(None, target, format!("cycle in the plan: {text}")));
            return Err(diags);
        }
    };
    let mut plan = Plan {
        tables,
        graph,
        order,
        index,
        pii: Default::default(),
        looked_at,
        missing: vec![],
        read_ahead: Default::default(),
    };
    for table in &mut plan.tables {
        let own: std::collections::BTreeSet<String> = table.spec.checks.iter().map(|c| c.label()).collect();
        table.default_checks =
            project.sources.defaults.checks.iter().filter(|c| !own.contains(&c.label())).cloned().collect();
    }
    check_columns(&mut plan, &mut diags);
    // The model marks the columns that hold personal information; looked at before it is read
    // (a change after shows).
    let model = project.dir.join(crate::semantic::MODEL_FILE);
    match ResolvedFile::stat(model.clone()) {
        Ok(seen) => plan.looked_at.iter_mut().for_each(|files| files.push(seen.clone())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => plan.missing.push(model),
        Err(_) => plan.looked_at = None,
    }
    plan.pii = crate::lineage::columns::sensitive(&plan, &crate::semantic::pii_marks(&project.dir));
    crate::unit_tests::check::check_plan(&plan, &mut diags);
    crate::checks::compile::check_plan(&plan, &project.sources_text, &mut diags);
    if diags.is_empty() {
        Ok(plan)
    } else {
        Err(diags)
    }
}

/// `layer.table` references made by a layer's steps (joins and `ref()` in SQL).
pub fn step_references(steps: &[Step]) -> Vec<String> {
    let mut out = Vec::new();
    for step in steps {
        if let Some(kind) = step.kind() {
            out.extend(kind.references());
        }
        match step {
            Step::Join(j) => out.push(j.reference.clone()),
            Step::Sql(sql) => out.extend(template::ref_arguments(sql)),
            Step::Expect(e) => out.extend(
                e.exists_in
                    .values()
                    .map(|t| crate::config::pipeline::split_column_ref(t).map_or(t.as_str(), |(r, _)| r).to_string()),
            ),
            _ => {}
        }
    }
    out
}

/// Resolves the source, reads its header and checks bronze for one pipeline.
fn plan_table(
    project: &Project,
    headers: &SourceHeaders,
    file: &PipelineFile,
    diags: &mut Diagnostics,
) -> Option<TablePlan> {
    let spec = &file.spec;
    let Some(source) = project.sources.sources.get(&spec.source) else {
        let hint = did_you_mean(&spec.source, project.sources.sources.keys().map(String::as_str));
        diags.push(
            file.text.diag(Some("source:"), &spec.source, format!("unknown source `{}`", spec.source)).with_hint(hint),
        );
        return None;
    };
    let defaults = &project.sources.defaults;
    let read = source.read.over(&defaults.read);
    let (resolved, header) = match headers.get(&spec.source) {
        Some(Ok(found)) => found.clone(),
        Some(Err(d)) => {
            diags.push(d.clone());
            return None;
        }
        // The source root did not resolve (reported once, by `compile_known`).
        None => return None,
    };
    let format = crate::reader::format_of(&resolved.path, source.format.or(defaults.format));
    let (bronze_names, problems) = check::check_bronze(&header, &spec.bronze);
    for p in problems {
        let message = format!("{} (source `{}`, file {})", p.message, spec.source, resolved.path.display());
        diags.push(file.text.diag(Some("bronze:"), &p.token, message).with_hint(p.hint));
    }
    for layer in [Layer::Silver, Layer::Gold] {
        let section = format!("{layer}:");
        let steps = if layer == Layer::Silver { &spec.silver } else { &spec.gold };
        for step in steps {
            for p in check::step_static(step) {
                diags.push(file.text.diag(Some(&section), &p.token, p.message).with_hint(p.hint));
            }
            if let Step::Sql(sql) = step {
                diags.0.extend(check_sql(&file.text, &section, sql, &project.vars));
            }
        }
    }
    let mut columns = HashMap::new();
    let mut staged: Vec<String> = header.clone();
    staged.extend(check::PROVENANCE.iter().map(|s| s.to_string()));
    columns.insert(Layer::Staged, staged);
    let mut bronze_columns = bronze_names.clone();
    bronze_columns.extend(check::PROVENANCE.iter().map(|s| s.to_string()));
    columns.insert(Layer::Bronze, bronze_columns);
    Some(TablePlan {
        name: spec.table.clone(),
        spec: spec.clone(),
        text: file.text.clone(),
        source_id: spec.source.clone(),
        source: source.clone(),
        format,
        bronze_names,
        read,
        file: resolved,
        header,
        columns,
        default_checks: vec![],
    })
}

/// An `sql` step checked at compile: its template renders with the project's vars, and the
/// run's SQL parser accepts it. Errors are located in the pipeline file, down to the line of
/// the query.
fn check_sql(
    text: &SourceText,
    section: &str,
    sql: &str,
    vars: &std::collections::BTreeMap<String, String>,
) -> Option<Diagnostic> {
    let first = sql.lines().map(str::trim).find(|l| !l.is_empty()).unwrap_or_default();
    let token: String = first.chars().take(40).collect();
    let (line, column) = text.locate(Some(section), token.trim());
    let at = |offset: usize, col: Option<usize>| (line + offset.saturating_sub(1), col.unwrap_or(column));
    let namer = |r: &str| Ok(template::sql_table_name(r));
    let rendered = match template::render_located(sql, vars, Some(&namer)) {
        Ok(r) => r,
        Err(e) => return Some(Diagnostic::new(&text.path, at(e.line.unwrap_or(1), None), format!("sql: {e}"))),
    };
    let mut ctx = polars::sql::SQLContext::new();
    let empty = || polars::prelude::IntoLazy::lazy(polars::prelude::DataFrame::empty());
    ctx.register("input", empty());
    for r in template::ref_arguments(sql) {
        ctx.register(&template::sql_table_name(&r), empty());
    }
    let message = ctx.execute(&rendered).err()?.to_string();
    let parse = message.split("sql parser error: ").nth(1)?;
    let number = |key: &str| -> Option<usize> {
        parse.split(key).nth(1)?.trim_start().split(|c: char| !c.is_ascii_digit()).next()?.parse().ok()
    };
    let (l, c) = (number("Line:"), number("Column:"));
    let why = parse.split(" at Line:").next().unwrap_or(parse).trim();
    let col = if l == Some(1) { c.map(|c| column + c.saturating_sub(1)) } else { c };
    Some(Diagnostic::new(&text.path, at(l.unwrap_or(1), col), format!("sql does not parse: {why}")))
}

/// Traces columns through silver and gold in execution order.
fn check_columns(plan: &mut Plan, diags: &mut Diagnostics) {
    for &n in &plan.order.clone() {
        let Node { table, layer } = plan.graph[n];
        if matches!(layer, Layer::Staged | Layer::Bronze) {
            continue;
        }
        let previous = if layer == Layer::Silver { Layer::Bronze } else { Layer::Silver };
        let mut cols = plan.tables[table].columns.get(&previous).cloned();
        let mut problems = Vec::new();
        let lookup = |reference: &str| -> Option<Vec<String>> {
            let (l, name) = parse_ref(reference).ok()?;
            let t = plan.tables.iter().position(|x| x.name == name)?;
            plan.tables[t].columns.get(&l).cloned()
        };
        for step in plan.tables[table].steps(layer) {
            cols = check::step_columns(step, cols, &lookup, &mut problems);
        }
        let t = &plan.tables[table];
        let section = format!("{layer}:");
        for p in problems {
            diags.push(t.text.diag(Some(&section), &p.token, p.message).with_hint(p.hint));
        }
        if let Some(cols) = cols {
            plan.tables[table].columns.insert(layer, cols);
        }
    }
}

/// A cycle through `start`, as the list of nodes ending where it began.
fn cycle_path(graph: &DiGraph<Node, ()>, start: NodeIndex) -> Vec<NodeIndex> {
    let mut previous: HashMap<NodeIndex, NodeIndex> = HashMap::new();
    let mut queue = std::collections::VecDeque::from([start]);
    while let Some(n) = queue.pop_front() {
        for next in graph.neighbors(n) {
            if next == start {
                let mut path = vec![n];
                let mut at = n;
                while at != start {
                    at = previous[&at];
                    path.push(at);
                }
                path.reverse();
                path.push(start);
                return path;
            }
            if let std::collections::hash_map::Entry::Vacant(e) = previous.entry(next) {
                if next != start {
                    e.insert(n);
                    queue.push_back(next);
                }
            }
        }
    }
    vec![start, start]
}
