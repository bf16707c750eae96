//! Command-line interface (clap). Thin: parses arguments, calls the library, prints, and maps
//! outcomes to exit codes (0 success, 1 failure, 2 usage or configuration error).

use crate::config::{Project, Read};
use crate::diag::Diagnostics;
use crate::plan::{self, render};
use crate::store::{Store, Wait};
use clap::{Parser, Subcommand, ValueEnum};
use std::collections::BTreeMap;
use std::io::IsTerminal;
use std::path::PathBuf;

#[derive(Parser)]
#[command(name = "jobforge", version, about = "Declarative medallion data pipelines from YAML")]
struct Cli {
    /// Project folder (holding sources.yml, pipelines/ and data/).
    #[arg(long, global = true, default_value = ".")]
    project: PathBuf,
    /// Template variable for sources and SQL, `key=value` (repeatable).
    #[arg(long = "var", global = true, value_parser = parse_var)]
    vars: Vec<(String, String)>,
    /// Log line format.
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Text)]
    log_format: LogFormat,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the pipelines: staged -> bronze -> silver -> gold.
    Run {
        /// Pipeline folder or file.
        #[arg(default_value = "pipelines")]
        pipelines: PathBuf,
        /// Tables to run: NAME, NAME+ (and downstream), +NAME (and upstream). Repeatable.
        #[arg(long, short)]
        select: Vec<String>,
        /// Append the run's OpenLineage RunEvents (NDJSON) to this file.
        #[arg(long, value_name = "FILE")]
        openlineage: Option<PathBuf>,
        /// Wait for a run that holds the data folder instead of failing.
        #[arg(long)]
        wait: bool,
        /// Runs to keep in the data folder (their manifests and files).
        #[arg(long, default_value_t = crate::store::DEFAULT_KEEP)]
        keep: usize,
        /// Build every selected table, even those whose pipeline, source file and inputs are
        /// unchanged since the version the data folder holds.
        #[arg(long)]
        full_refresh: bool,
        /// `json`: the summary for programs (per table: status, reason, gold rows, checks).
        #[arg(long, value_enum, default_value_t = Format::Text)]
        format: Format,
    },
    /// Per table: the run that produced it and whether it is stale.
    Status {
        #[arg(long, value_enum, default_value_t = Format::Text)]
        format: Format,
    },
    /// The kept runs, newest first.
    Runs {
        #[arg(long, value_enum, default_value_t = Format::Text)]
        format: Format,
    },
    /// Republish a kept run (a sequence number or run id) as the current one, atomically.
    Rollback {
        run: String,
        /// Wait for a run that holds the data folder instead of failing.
        #[arg(long)]
        wait: bool,
        #[arg(long, default_value_t = crate::store::DEFAULT_KEEP)]
        keep: usize,
    },
    /// Compare two sets of tables (run:latest, run:ID, duckdb:PATH[#schema], a parquet folder):
    /// rows only in one, changed cells, column and type differences; exit 1 on any difference.
    Diff {
        a: String,
        b: String,
        /// Key columns for every table (default: each table's primary key in wiq_schema.yml;
        /// without one, rows are compared as multisets).
        #[arg(long, value_delimiter = ',')]
        key: Vec<String>,
        /// Numbers within this absolute difference are equal.
        #[arg(long, default_value_t = 0.0)]
        abs: f64,
        /// Numbers within this fraction of the larger magnitude are equal.
        #[arg(long, default_value_t = 0.0)]
        rel: f64,
        /// Compare text without leading and trailing whitespace.
        #[arg(long)]
        trim: bool,
        /// Compare text without regard to case.
        #[arg(long)]
        ignore_case: bool,
        /// Compare the provenance columns (_batch_id, _ingested_at, ...) too.
        #[arg(long)]
        provenance: bool,
        /// Only this table (repeatable).
        #[arg(long)]
        table: Vec<String>,
        #[arg(long, value_enum, default_value_t = Format::Text)]
        format: Format,
    },
    /// Load a run's gold layer into a warehouse: the plan by default, `--execute` applies it in
    /// one transaction.
    Load {
        /// A target of warehouse.yml, `duckdb:PATH` (relative to the project) or
        /// `postgres://USER@HOST:PORT/DB` (password from PGPASSWORD or ~/.pgpass), either with
        /// `#schema` [default: warehouse.yml's default, else duckdb:data/warehouse.duckdb]
        #[arg(long)]
        target: Option<String>,
        /// Schema in the target [default: the target's, else `main` (DuckDB) or `public`].
        #[arg(long)]
        schema: Option<String>,
        /// A kept run (sequence number or run id) instead of the current one.
        #[arg(long)]
        run: Option<String>,
        /// Apply the plan.
        #[arg(long)]
        execute: bool,
        /// Apply dropped columns and changed types too.
        #[arg(long)]
        allow_destructive: bool,
        #[arg(long, value_enum, default_value_t = Format::Text)]
        format: Format,
    },
    /// Run the unit tests of the pipeline files (`tests:`) in memory; exit 1 when one fails.
    Test {
        /// Tests, or tables whose tests to run; all when none.
        names: Vec<String>,
        /// Pipeline folder or file.
        #[arg(long, default_value = "pipelines")]
        pipelines: PathBuf,
        #[arg(long, value_enum, default_value_t = Format::Text)]
        format: Format,
    },
    /// Evaluate the data-quality checks of the pipeline files (`checks:`) on a committed run;
    /// exit 1 when an `error` check fails.
    Check {
        /// Tables whose checks to evaluate; all when none.
        tables: Vec<String>,
        /// Pipeline folder or file.
        #[arg(long, default_value = "pipelines")]
        pipelines: PathBuf,
        /// A kept run (sequence number or run id) instead of the current one.
        #[arg(long)]
        run: Option<String>,
        #[arg(long, value_enum, default_value_t = Format::Text)]
        format: Format,
    },
    /// Export the plan for another tool: `dagster` writes a Dagster code location (one asset per
    /// table, checks, schedules from schedules.yml, a sensor per source).
    Export {
        #[arg(value_enum)]
        to: ExportTo,
        /// Folder to write into.
        #[arg(long)]
        out: PathBuf,
        /// Pipeline folder or file.
        #[arg(long, default_value = "pipelines")]
        pipelines: PathBuf,
    },
    /// The data-quality scorecard per table (completeness, validity, uniqueness, referential
    /// consistency, timeliness, checks) with its history over the kept runs.
    Quality {
        #[arg(long, value_enum, default_value_t = Format::Text)]
        format: Format,
    },
    /// Run every compile check; exit 0 when clean, 1 otherwise.
    Validate {
        #[arg(default_value = "pipelines")]
        pipelines: PathBuf,
        #[arg(long, value_enum, default_value_t = Format::Text)]
        format: Format,
        /// Check the config and the model alone, not the model against the gold data.
        #[arg(long)]
        config_only: bool,
    },
    /// Print the plan in execution order; writes nothing.
    Plan {
        #[arg(default_value = "pipelines")]
        pipelines: PathBuf,
        /// Only show what would run (the plan never writes; accepted for clarity).
        #[arg(long)]
        dry_run: bool,
        #[arg(long, short)]
        select: Vec<String>,
        #[arg(long, value_enum, default_value_t = Format::Text)]
        format: Format,
    },
    /// Read-only DuckDB SQL over a layer of the current (or a kept) run.
    Query {
        sql: String,
        #[arg(long, default_value = "gold", value_parser = ["gold", "silver", "bronze", "staged", "quarantine"])]
        layer: String,
        /// A kept run (sequence number or run id) instead of the current one.
        #[arg(long)]
        run: Option<String>,
        #[arg(long, value_enum, default_value_t = OutputFormat::Table)]
        format: OutputFormat,
    },
    /// List every source with its file, size, modification time, SHA-256 and whether it changed
    /// since the last run; `sources pull [ID...]` downloads sources that declare a `url`.
    Sources {
        #[command(subcommand)]
        action: Option<SourcesAction>,
        #[arg(long, value_enum, default_value_t = Format::Text)]
        format: Format,
    },
    /// Write the model as a Power BI project (PBIP with a TMDL semantic model), or check one.
    #[command(alias = "stagegold")]
    Powerbi {
        /// Output folder.
        #[arg(long, default_value = "powerbi")]
        out: PathBuf,
        /// Project name (file and folder names).
        #[arg(long, default_value = "WiQ")]
        name: String,
        /// Generate even when validate reports model errors.
        #[arg(long)]
        force: bool,
        /// Read the project in this folder back and report what no longer matches.
        #[arg(long, value_name = "DIR")]
        check: Option<PathBuf>,
    },
    /// Answer a lineage question ("Where does dim_noc come from?"), or draw the lineage graph.
    Lineage {
        /// The question; with --graph, a table to restrict the drawing to.
        text: Option<String>,
        /// Draw the graph instead: mermaid, dot or json.
        #[arg(long, value_parser = ["mermaid", "dot", "json"])]
        graph: Option<String>,
        #[arg(long, value_enum, default_value_t = Format::Text)]
        format: Format,
        #[arg(long, default_value = "pipelines")]
        pipelines: PathBuf,
    },
    /// Write the data catalogue (Markdown, a static HTML site, or JSON).
    Catalogue {
        #[arg(long, default_value = "catalogue")]
        out: PathBuf,
        #[arg(long, value_parser = ["md", "html", "json"], default_value = "md")]
        format: String,
        #[arg(long, default_value = "pipelines")]
        pipelines: PathBuf,
    },
    /// The semantic model (wiq_schema.yml).
    Model {
        #[command(subcommand)]
        action: ModelAction,
    },
    /// Write JSON Schema for sources.yml, pipeline files and wiq_schema.yml.
    Schema {
        #[arg(long, default_value = "schemas")]
        out: PathBuf,
    },
}

#[derive(Subcommand)]
enum ModelAction {
    /// Write the model with the gold data's column types and row counts.
    Export {
        #[arg(long, value_enum, default_value_t = ExportFormat::Json)]
        format: ExportFormat,
        /// Write to this file instead of standard output.
        #[arg(long)]
        out: Option<PathBuf>,
    },
}

#[derive(Clone, Copy, ValueEnum)]
enum ExportFormat {
    Json,
}

#[derive(Subcommand)]
enum SourcesAction {
    /// Download sources that declare a `url` into their path (all, or the ids given).
    Pull { ids: Vec<String> },
}

#[derive(Clone, Copy, ValueEnum, PartialEq)]
enum Format {
    Text,
    Json,
}

#[derive(Clone, Copy, ValueEnum)]
enum ExportTo {
    Dagster,
}

#[derive(Clone, Copy, ValueEnum)]
enum OutputFormat {
    Table,
    Csv,
    Json,
}

#[derive(Clone, Copy, ValueEnum, PartialEq)]
enum LogFormat {
    Text,
    Json,
}

fn parse_var(s: &str) -> Result<(String, String), String> {
    s.split_once('=').map(|(k, v)| (k.to_string(), v.to_string())).ok_or_else(|| format!("`{s}` is not key=value"))
}

/// Runs the command line; returns the process exit code.
pub fn main() -> i32 {
    let cli = Cli::parse();
    init_logging(cli.log_format);
    let vars: BTreeMap<String, String> = cli.vars.iter().cloned().collect();
    match &cli.command {
        Command::Run { pipelines, select, openlineage, wait, keep, full_refresh, format } => {
            let options = crate::exec::RunOptions {
                selectors: select.clone(),
                progress: std::io::stderr().is_terminal() && cli.log_format == LogFormat::Text,
                wait: if *wait { Wait::Yes } else { Wait::No },
                keep: *keep,
                full_refresh: *full_refresh,
            };
            let store = Store::at(&data_dir(&cli));
            if let Some(summary) = crate::exec::nothing_to_do(&store, &cli.project, pipelines, &vars, &options) {
                report_run(&summary, *format, &store);
                return i32::from(!summary.succeeded());
            }
            with_plan_by(
                &cli,
                pipelines,
                vars,
                Read::WithoutTests,
                compile_run,
                |project, plan| match crate::exec::run(project, plan, &options) {
                    Ok(summary) => {
                        report_run(&summary, *format, &store);
                        if let Some(file) = openlineage.as_ref().filter(|_| summary.committed) {
                            let file = cli.project.join(file);
                            match crate::lineage::openlineage::write_run(plan, &store, &summary.manifest, &file) {
                                Ok(n) => println!("wrote {n} OpenLineage event(s) to {}", file.display()),
                                Err(e) => {
                                    eprintln!("error: cannot write OpenLineage events to {}: {e}", file.display());
                                    return 1;
                                }
                            }
                        }
                        i32::from(!summary.succeeded())
                    }
                    Err(e) => {
                        eprintln!("error: {e}");
                        crate::alerts::raise(&crate::alerts::for_run_error(&e));
                        2
                    }
                },
            )
        }
        Command::Validate { pipelines, format, config_only } => validate(&cli, pipelines, vars, *format, *config_only),
        Command::Test { names, pipelines, format } => {
            // `jobforge test pipelines/` names the folder, as `run pipelines/` does.
            let (folders, names): (Vec<String>, Vec<String>) =
                names.iter().cloned().partition(|n| cli.project.join(n).is_dir());
            let pipelines = folders.first().map(PathBuf::from).unwrap_or_else(|| pipelines.clone());
            with_plan_by(&cli, &pipelines, vars, Read::All, compile_for_tests, |project, plan| {
                let started = std::time::Instant::now();
                match crate::unit_tests::run::run(plan, &project.vars, &names) {
                    Ok(outcomes) => {
                        match format {
                            Format::Text => print!("{}", crate::unit_tests::run::render(&outcomes, started.elapsed())),
                            Format::Json => println!("{}", serde_json::to_string_pretty(&outcomes).unwrap_or_default()),
                        }
                        i32::from(outcomes.iter().any(|o| !o.passed()))
                    }
                    Err(e) => {
                        eprintln!("error: {e}");
                        2
                    }
                }
            })
        }
        Command::Export { to: ExportTo::Dagster, out, pipelines } => {
            with_plan_by(&cli, pipelines, vars, Read::WithoutTests, compile_for_tests, |_, plan| {
                match crate::dagster::export(&cli.project, pipelines, plan, &cli.project.join(out)) {
                    Ok(files) => {
                        for f in files {
                            println!("wrote {}", f.display());
                        }
                        0
                    }
                    Err(d) => {
                        eprintln!("{d}");
                        2
                    }
                }
            })
        }
        Command::Quality { format } => {
            let cards = crate::quality::scorecards(&Store::open(&data_dir(&cli)));
            match format {
                Format::Text => print!("{}", crate::quality::render(&cards)),
                Format::Json => println!("{}", serde_json::to_string_pretty(&cards).unwrap_or_default()),
            }
            0
        }
        Command::Check { tables, pipelines, run, format } => {
            with_plan_by(&cli, pipelines, vars, Read::WithoutTests, compile_for_tests, |_, plan| {
                check(&cli, plan, tables, run.as_deref(), *format)
            })
        }
        Command::Plan { pipelines, select, format, .. } => with_plan(&cli, pipelines, vars, |project, plan| {
            let selected = match plan.select(select) {
                Ok(s) => s,
                Err(e) => {
                    eprintln!("error: {e}");
                    return 2;
                }
            };
            let nodes = render::planned_nodes(plan, &project.data_dir(), &selected);
            match format {
                Format::Text => print!("{}", render::render_text(&nodes)),
                Format::Json => println!("{}", serde_json::to_string_pretty(&nodes).unwrap_or_default()),
            }
            0
        }),
        Command::Query { sql, layer, run, format } => query(&cli, sql, layer, run.as_deref(), *format),
        Command::Diff { .. } => diff(&cli),
        Command::Load { .. } => load(&cli),
        Command::Status { format } => status(&cli, vars, *format),
        Command::Runs { format } => {
            let store = Store::open(&data_dir(&cli));
            match format {
                Format::Text => print!("{}", crate::status::render_runs(&store)),
                Format::Json => print!("{}", to_json(&store.manifests())),
            }
            0
        }
        Command::Rollback { run, wait, keep } => {
            let store = Store::at(&data_dir(&cli));
            match store.rollback(run, if *wait { Wait::Yes } else { Wait::No }, *keep) {
                Ok(m) => {
                    println!("rolled back: run #{} is now {} (as of {})", m.seq, m.run_id, m.ended_at.to_rfc3339());
                    0
                }
                Err(e) => {
                    eprintln!("error: {e}");
                    1
                }
            }
        }
        Command::Lineage { text, graph, format, pipelines } => {
            with_recorded_plan(&cli, pipelines, vars, |l| lineage(l, text.as_deref(), graph.as_deref(), *format))
        }
        Command::Catalogue { out, format, pipelines } => with_recorded_plan(&cli, pipelines, vars, |lineage| {
            let model = match crate::semantic::load(&cli.project) {
                Ok(m) => m.map(|(_, m)| m),
                Err(d) => {
                    eprintln!("{d}");
                    return 2;
                }
            };
            let catalogue = crate::catalogue::build(lineage, model.as_ref());
            let files = match format.as_str() {
                "html" => crate::catalogue::html(&catalogue),
                "json" => BTreeMap::from([(PathBuf::from("catalogue.json"), to_json(&catalogue))]),
                _ => crate::catalogue::markdown(&catalogue),
            };
            let out = cli.project.join(out);
            match crate::catalogue::write(&out, &files) {
                Ok(()) => {
                    println!(
                        "wrote the catalogue of {} table(s) to {} ({} file(s))",
                        catalogue.tables.len(),
                        out.display(),
                        files.len()
                    );
                    0
                }
                Err(e) => {
                    eprintln!("error: {}: {e}", out.display());
                    1
                }
            }
        }),
        Command::Powerbi { out, name, force, check } => powerbi(&cli, out, name, *force, check.as_deref()),
        Command::Model { action: ModelAction::Export { out, .. } } => model_export(&cli, out.as_deref()),
        Command::Sources { action, format } => sources(&cli, vars, action.as_ref(), *format),
        Command::Schema { out } => match crate::schema::write(&cli.project.join(out)) {
            Ok(paths) => {
                for p in paths {
                    println!("wrote {}", p.display());
                }
                0
            }
            Err(e) => {
                eprintln!("error: {e}");
                1
            }
        },
    }
}

/// A compile diagnostic as a validate finding in JSON.
fn compile_finding(d: &crate::diag::Diagnostic) -> serde_json::Value {
    serde_json::json!({ "severity": "error", "check": "compile", "file": d.file, "line": d.line, "column": d.column, "message": d.message, "hint": d.hint })
}

/// `jobforge validate`: compile checks, then the model against the gold data; one report.
fn validate(
    cli: &Cli,
    pipelines: &std::path::Path,
    vars: BTreeMap<String, String>,
    format: Format,
    config_only: bool,
) -> i32 {
    let compiled = Project::load(&cli.project, pipelines, vars).and_then(|p| compile(&p).map(|plan| (p, plan)));
    let mut lines: Vec<String> = Vec::new();
    let mut json: Vec<serde_json::Value> = Vec::new();
    let mut errors = 0;
    let mut summary = Vec::new();
    let mut compile_errors = |d: &Diagnostics, lines: &mut Vec<String>, json: &mut Vec<serde_json::Value>| {
        for diag in &d.0 {
            errors += 1;
            lines.push(format!("error: {diag}"));
            json.push(compile_finding(diag));
        }
    };
    match &compiled {
        Ok((_, plan)) => summary.push(format!("{} table(s), {} node(s)", plan.tables.len(), plan.graph.node_count())),
        Err(d) => compile_errors(d, &mut lines, &mut json),
    }
    let mut warnings = 0;
    match crate::semantic::load(&cli.project) {
        Ok(None) => {}
        Ok(Some((text, model))) => {
            let gold = (!config_only).then(|| gold_files(cli));
            let findings = crate::semantic::check::check(&text, &model, gold.as_ref());
            summary.push(format!(
                "model {} with {} table(s) and {} relationship(s)",
                model.model,
                model.tables.len(),
                model.relationships.len()
            ));
            for f in findings {
                match f.severity {
                    crate::semantic::model::Severity::Error => errors += 1,
                    crate::semantic::model::Severity::Warn => warnings += 1,
                }
                lines.push(f.to_string());
                json.push(serde_json::to_value(&f).unwrap_or_default());
            }
        }
        Err(d) => compile_errors(&d, &mut lines, &mut json),
    }
    match format {
        Format::Text => {
            for l in &lines {
                eprintln!("{l}");
            }
            if errors == 0 {
                println!("ok: {}, no errors, {warnings} warning(s)", summary.join("; "));
            } else {
                eprintln!("{errors} error(s), {warnings} warning(s)");
            }
        }
        Format::Json => println!("{}", to_json(&serde_json::json!({ "ok": errors == 0, "errors": json }))),
    }
    i32::from(errors > 0)
}

/// Prints a run's summary as `format` says, then raises its alerts (which may wait for a slow
/// webhook).
fn report_run(summary: &crate::exec::RunSummary, format: Format, store: &Store) {
    match format {
        Format::Text => print!("{}", summary.render()),
        Format::Json => println!("{}", serde_json::to_string_pretty(&summary.to_json(store)).unwrap_or_default()),
    }
    let _ = std::io::Write::flush(&mut std::io::stdout());
    crate::alerts::for_run(summary).iter().for_each(crate::alerts::raise);
}

/// The project's data folder.
fn data_dir(cli: &Cli) -> PathBuf {
    cli.project.join("data")
}

/// The pipeline files' kept parses in the project's data folder.
fn parsed_pipelines(cli: &Cli) -> Option<crate::config::parsed::Parsed> {
    crate::config::parsed::Parsed::at(Store::at(&data_dir(cli)).parsed_pipelines_file())
}

/// The gold files of the current snapshot (none before the first run).
fn gold_files(cli: &Cli) -> crate::semantic::check::GoldFiles {
    let store = Store::open(&data_dir(cli));
    store.latest().map(|m| store.layer_files(&m, "gold")).unwrap_or_default()
}

/// `jobforge query`: read-only DuckDB SQL over a layer of a snapshot.
#[cfg(feature = "query")]
fn query(cli: &Cli, sql: &str, layer: &str, run: Option<&str>, format: OutputFormat) -> i32 {
    let store = Store::open(&data_dir(cli));
    match store.snapshot(run).and_then(|m| crate::query::query(&store, &m, layer, sql)) {
        Ok(r) => {
            print!(
                "{}",
                match format {
                    OutputFormat::Table => r.to_table(),
                    OutputFormat::Csv => r.to_csv(),
                    OutputFormat::Json => r.to_json(),
                }
            );
            0
        }
        Err(e) => {
            eprintln!("error: {e}");
            1
        }
    }
}

/// `jobforge diff`: the parity of two sides, paired by the model's keys.
#[cfg(feature = "query")]
fn diff(cli: &Cli) -> i32 {
    use crate::parity::{Options, Side};
    let Command::Diff { a, b, key, abs, rel, trim, ignore_case, provenance, table, format } = &cli.command else {
        return 2;
    };
    let options = Options {
        key: key.clone(),
        abs: *abs,
        rel: *rel,
        trim: *trim,
        ignore_case: *ignore_case,
        provenance: *provenance,
        tables: table.clone(),
    };
    let keys = match crate::semantic::load(&cli.project) {
        Ok(Some((_, model))) => model.tables.iter().map(|(n, t)| (n.clone(), t.primary_key.columns())).collect(),
        Ok(None) => Default::default(),
        Err(d) => {
            eprintln!("{d}");
            return 2;
        }
    };
    let report = Side::parse(a, &cli.project)
        .and_then(|a| Ok((a, Side::parse(b, &cli.project)?)))
        .and_then(|(a, b)| crate::parity::diff(&cli.project, &a, &b, &keys, &options));
    match report {
        Ok(r) => {
            match format {
                Format::Text => print!("{}", r.render()),
                Format::Json => println!("{}", serde_json::to_string_pretty(&r).unwrap_or_default()),
            }
            i32::from(r.differs())
        }
        Err(e) => {
            eprintln!("error: {e}");
            2
        }
    }
}

/// `jobforge load`: plan or apply a run's gold in a warehouse.
fn load(cli: &Cli) -> i32 {
    let Command::Load { target, schema, run, execute, allow_destructive, format } = &cli.command else {
        return 2;
    };
    let model = match crate::semantic::load(&cli.project) {
        Ok(m) => m.map(|(_, model)| model),
        Err(d) => {
            eprintln!("{d}");
            return 2;
        }
    };
    let store = Store::open(&data_dir(cli));
    let result = crate::warehouse::resolve(target.as_deref(), &cli.project).and_then(|t| {
        let m = store.snapshot(run.as_deref())?;
        let schema = schema.as_deref().unwrap_or(&t.schema);
        crate::warehouse::load(&store, &m, model.as_ref(), &t.target, schema, *execute, *allow_destructive)
    });
    match result {
        Ok(l) => {
            match format {
                Format::Text => print!("{}", l.render()),
                Format::Json => println!("{}", serde_json::to_string_pretty(&l).unwrap_or_default()),
            }
            if *execute && l.refused() {
                eprintln!("error: destructive changes refused; nothing was loaded (--allow-destructive applies them)");
                return 1;
            }
            0
        }
        Err(e) => {
            eprintln!("error: {e}");
            2
        }
    }
}

#[cfg(not(feature = "query"))]
fn diff(_: &Cli) -> i32 {
    eprintln!("error: this jobforge was built without the `query` feature (DuckDB)");
    2
}

#[cfg(not(feature = "query"))]
fn query(_: &Cli, _: &str, _: &str, _: Option<&str>, _: OutputFormat) -> i32 {
    eprintln!("error: this jobforge was built without the `query` feature (DuckDB)");
    2
}

/// `jobforge status`: the current snapshot's tables, fresh or stale.
fn status(cli: &Cli, vars: BTreeMap<String, String>, format: Format) -> i32 {
    let store = Store::open(&data_dir(cli));
    let Some(m) = store.latest() else {
        eprintln!("error: no committed run in {}; run `jobforge run` first", store.data().display());
        return 1;
    };
    let sources = Project::load_sources(&cli.project, vars).ok().and_then(|p| crate::registry::status(&p).ok());
    let rows = crate::status::tables(&m, sources.as_deref());
    match format {
        Format::Text => print!("{}", crate::status::render_tables(&m, &rows)),
        Format::Json => print!("{}", to_json(&rows)),
    }
    0
}

/// `jobforge lineage`: a question answered, or the graph drawn.
fn lineage(l: &crate::lineage::Lineage, text: Option<&str>, graph: Option<&str>, format: Format) -> i32 {
    use crate::lineage::question;
    if let Some(kind) = graph {
        let only = match text.map(|t| l.resolve(t)) {
            None => None,
            Some(Ok(t)) => Some(t),
            Some(Err(closest)) => {
                eprintln!("error: no table `{}`; the closest are: {}", text.unwrap_or_default(), closest.join(", "));
                return 1;
            }
        };
        let (nodes, edges) = l.graph(only);
        print!("{}", crate::lineage::draw(&nodes, &edges, kind));
        return 0;
    }
    let Some(q) = text.and_then(question::parse) else {
        eprintln!("I can answer these questions:");
        for f in question::FORMS {
            eprintln!("  {f}");
        }
        return 2;
    };
    match question::answer(l, &q) {
        Ok(a) => {
            match format {
                Format::Text => print!("{}", a.text),
                Format::Json => print!("{}", to_json(&a.json)),
            }
            0
        }
        Err(e) => {
            eprintln!("error: {e}");
            1
        }
    }
}

/// `jobforge powerbi`: generation (blocked by model errors unless forced) or `--check`.
fn powerbi(cli: &Cli, out: &std::path::Path, name: &str, force: bool, check: Option<&std::path::Path>) -> i32 {
    let (text, model) = match crate::semantic::load(&cli.project) {
        Ok(Some(m)) => m,
        Ok(None) => {
            eprintln!("error: no {} in {}", crate::semantic::MODEL_FILE, cli.project.display());
            return 2;
        }
        Err(d) => {
            eprintln!("{d}");
            return 2;
        }
    };
    let store = Store::open(&data_dir(cli));
    let snapshot = store.latest();
    let gold_files = snapshot.as_ref().map(|m| store.layer_files(m, "gold")).unwrap_or_default();
    if let Some(dir) = check {
        return match crate::powerbi::check(&cli.project.join(dir), name, &model, &gold_files) {
            Ok(problems) if problems.is_empty() => {
                println!("ok: {} matches the model and the gold files", dir.display());
                0
            }
            Ok(problems) => {
                for p in &problems {
                    eprintln!("mismatch: {p}");
                }
                eprintln!("{} mismatch(es)", problems.len());
                1
            }
            Err(e) => {
                eprintln!("error: {e}");
                2
            }
        };
    }
    let findings = crate::semantic::check::check(&text, &model, Some(&gold_files));
    let errors: Vec<_> = findings.iter().filter(|f| f.severity == crate::semantic::model::Severity::Error).collect();
    if !errors.is_empty() {
        for f in &errors {
            eprintln!("{f}");
        }
        if !force {
            eprintln!("{} model error(s): fix them (see `jobforge validate`) or pass --force", errors.len());
            return 1;
        }
    }
    let publishers = Project::load_sources(&cli.project, BTreeMap::new())
        .map(|p| p.sources.sources.iter().filter_map(|(id, s)| s.publisher.clone().map(|p| (id.clone(), p))).collect())
        .unwrap_or_default();
    let metadata: Vec<_> = snapshot
        .as_ref()
        .map(|m| store.table_metadata(m))
        .unwrap_or_default()
        .into_iter()
        .filter(|t| t.layer == "gold")
        .collect();
    let gold = store.data().join("gold");
    let inputs =
        crate::powerbi::Inputs { model: &model, gold: &gold, gold_files: &gold_files, metadata: &metadata, publishers };
    let out_dir = cli.project.join(out);
    match crate::powerbi::generate(&inputs, name).and_then(|(files, summary)| {
        crate::powerbi::write(&out_dir, name, &files).map_err(|e| e.to_string())?;
        Ok(summary)
    }) {
        Ok(s) => {
            println!(
                "wrote {} table(s), {} column(s), {} measure(s) and {} relationship(s) to {}",
                s.tables,
                s.columns,
                s.measures,
                s.relationships,
                out_dir.join(format!("{name}.pbip")).display()
            );
            0
        }
        Err(e) => {
            eprintln!("error: {e}");
            1
        }
    }
}

/// `jobforge model export`.
fn model_export(cli: &Cli, out: Option<&std::path::Path>) -> i32 {
    match crate::semantic::load(&cli.project) {
        Ok(Some((_, model))) => {
            let text = to_json(&crate::semantic::check::export(&model, &gold_files(cli)));
            match out {
                None => {
                    print!("{text}");
                    0
                }
                Some(path) => match crate::atomic::write_bytes(path, text.as_bytes()) {
                    Ok(()) => 0,
                    Err(e) => {
                        eprintln!("error: {}: {e}", path.display());
                        1
                    }
                },
            }
        }
        Ok(None) => {
            eprintln!("error: no {} in {}", crate::semantic::MODEL_FILE, cli.project.display());
            2
        }
        Err(d) => {
            eprintln!("{d}");
            2
        }
    }
}

/// `jobforge sources` and `jobforge sources pull`: need only sources.yml, not the pipelines.
fn sources(cli: &Cli, vars: BTreeMap<String, String>, action: Option<&SourcesAction>, format: Format) -> i32 {
    let project = match Project::load_sources(&cli.project, vars) {
        Ok(p) => p,
        Err(d) => {
            eprintln!("{d}");
            return 2;
        }
    };
    let result = match action {
        None => crate::registry::status(&project).map(|rows| {
            let ok = rows.iter().all(|r| r.error.is_none());
            match format {
                Format::Text => (crate::registry::render_status(&rows), ok),
                Format::Json => (to_json(&rows), ok),
            }
        }),
        Some(SourcesAction::Pull { ids }) => crate::registry::pull(&project, ids).map(|rows| {
            let ok = rows.iter().all(|r| r.ok);
            match format {
                Format::Text => (crate::registry::render_pull(&rows), ok),
                Format::Json => (to_json(&rows), ok),
            }
        }),
    };
    match result {
        Ok((text, ok)) => {
            print!("{text}");
            i32::from(!ok)
        }
        Err(e) => {
            eprintln!("error: {e}");
            1
        }
    }
}

fn to_json<T: serde::Serialize>(value: &T) -> String {
    serde_json::to_string_pretty(value).unwrap_or_default() + "\n"
}

/// Compiles the project, taking the headers of source files the current snapshot was built from
/// as read when the files have not changed since.
fn compile(project: &Project) -> Result<plan::Plan, Diagnostics> {
    plan::compile_known(project, &known_headers(project))
}

/// The headers of the source files the current snapshot was built from.
fn known_headers(project: &Project) -> plan::KnownHeaders {
    Store::at(&project.data_dir()).latest().map(|m| plan::KnownHeaders::from_snapshot(&m)).unwrap_or_default()
}

/// `compile` for a run, which reads its sources next: the sources whose header takes reading them
/// whole are read once, for both (`plan::compile_to_run`).
fn compile_run(project: &Project) -> Result<plan::Plan, Diagnostics> {
    plan::compile_to_run(project, &known_headers(project))
}

/// `jobforge check`: the checks of today's pipeline files on a committed run, recorded in
/// `data/checks/`.
fn check(cli: &Cli, plan: &plan::Plan, tables: &[String], run: Option<&str>, format: Format) -> i32 {
    for t in tables {
        if !plan.tables.iter().any(|p| &p.name == t) {
            eprintln!("error: no table `{t}` in the pipelines");
            return 2;
        }
    }
    let store = Store::open(&data_dir(cli));
    let result = store.snapshot(run).and_then(|m| {
        let results = crate::exec::quality::check_snapshot(&store, &m, plan, tables)?;
        let record = serde_json::json!({ "run_id": m.run_id, "seq": m.seq, "checks": results });
        store.record_check(&record)?;
        Ok((m, results))
    });
    match result {
        Ok((m, results)) => {
            crate::alerts::for_checks(&m, &results).iter().for_each(crate::alerts::raise);
            match format {
                Format::Text => print!("{}", crate::checks::render(&m, &results)),
                Format::Json => println!("{}", serde_json::to_string_pretty(&results).unwrap_or_default()),
            }
            i32::from(results.iter().any(|r| r.fails_table()))
        }
        Err(e) => {
            eprintln!("error: {e}");
            2
        }
    }
}

/// `compile` for `jobforge test`, which reads no source data: a source whose file is missing
/// compiles from the header the current snapshot recorded for it.
fn compile_for_tests(project: &Project) -> Result<plan::Plan, Diagnostics> {
    let known = Store::at(&project.data_dir())
        .latest()
        .map(|m| plan::KnownHeaders::from_snapshot(&m).when_missing(&m))
        .unwrap_or_default();
    plan::compile_known(project, &known)
}

/// Loads and compiles the project (pipelines read without their unit tests) and calls `f` with
/// it; prints every diagnostic on failure (exit 2).
fn with_plan(
    cli: &Cli,
    pipelines: &std::path::Path,
    vars: BTreeMap<String, String>,
    f: impl FnOnce(&Project, &plan::Plan) -> i32,
) -> i32 {
    with_plan_by(cli, pipelines, vars, Read::WithoutTests, compile, f)
}

fn with_plan_by(
    cli: &Cli,
    pipelines: &std::path::Path,
    vars: BTreeMap<String, String>,
    read: Read,
    compile: fn(&Project) -> Result<plan::Plan, Diagnostics>,
    f: impl FnOnce(&Project, &plan::Plan) -> i32,
) -> i32 {
    tracing::debug!("started");
    let compiled: Result<_, Diagnostics> =
        Project::load_reading(&cli.project, pipelines, vars, read, parsed_pipelines(cli)).and_then(|p| {
            tracing::debug!("config loaded");
            compile(&p).map(|plan| (p, plan))
        });
    tracing::debug!("compiled");
    match compiled {
        Ok((project, plan)) => {
            let code = f(&project, &plan);
            // The process ends next: freeing a compiled project piece by piece would only
            // cost time (milliseconds of a 20 ms run).
            std::mem::forget((project, plan));
            code
        }
        Err(d) => {
            eprintln!("{d}");
            2
        }
    }
}

/// Lineage over the plan the current snapshot's run compiled (recorded config and source files;
/// no raw file needed), or over today's config when nothing has run yet.
fn with_recorded_plan(
    cli: &Cli,
    pipelines: &std::path::Path,
    vars: BTreeMap<String, String>,
    f: impl FnOnce(&crate::lineage::Lineage) -> i32,
) -> i32 {
    let store = Store::open(&data_dir(cli));
    match store.latest() {
        Some(m) => match crate::lineage::recorded_plan(&store, &m) {
            Ok(plan) => f(&crate::lineage::Lineage::new(&plan, &store, Some(&m))),
            Err(d) => {
                eprintln!("{d}\nerror: the config recorded by run {} does not compile", m.run_id);
                2
            }
        },
        None => with_plan(cli, pipelines, vars, |_, plan| f(&crate::lineage::Lineage::new(plan, &store, None))),
    }
}

fn init_logging(format: LogFormat) {
    use tracing_subscriber::filter::{EnvFilter, LevelFilter};
    use tracing_subscriber::layer::Filter;
    use tracing_subscriber::{layer::SubscriberExt, util::SubscriberInitExt, Layer, Registry};
    // Without JOBFORGE_LOG a plain level: parsing an EnvFilter compiles its directive regexes,
    // about a tenth of a run that has nothing to do.
    let filter: Box<dyn Filter<Registry> + Send + Sync> = match std::env::var("JOBFORGE_LOG") {
        Ok(spec) => Box::new(EnvFilter::try_new(spec).unwrap_or_else(|_| EnvFilter::new("warn"))),
        Err(_) => Box::new(LevelFilter::WARN),
    };
    let layer =
        tracing_subscriber::fmt::layer().with_ansi(std::io::stderr().is_terminal()).with_writer(std::io::stderr);
    let layer = match format {
        LogFormat::Text => layer.with_filter(filter).boxed(),
        LogFormat::Json => layer.json().with_filter(filter).boxed(),
    };
    let _ = tracing_subscriber::registry().with(layer).try_init();
}
