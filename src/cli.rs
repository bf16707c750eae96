//! Command-line interface (clap). Thin: parses arguments, calls the library, prints, and maps
//! outcomes to exit codes (0 success, 1 failure, 2 usage or configuration error).

use crate::config::Project;
use crate::diag::Diagnostics;
use crate::plan::{self, render};
use clap::{Parser, Subcommand, ValueEnum};
use std::collections::BTreeMap;
use std::io::IsTerminal;
use std::path::PathBuf;

#[derive(Parser)]
#[command(
    name = "jobforge",
    version,
    about = "Declarative medallion data pipelines from YAML"
)]
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
    },
    /// Run every compile check; exit 0 when clean, 1 otherwise.
    Validate {
        #[arg(default_value = "pipelines")]
        pipelines: PathBuf,
        #[arg(long, value_enum, default_value_t = Format::Text)]
        format: Format,
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
    /// DuckDB SQL over a layer's parquet tables.
    Query {
        sql: String,
        #[arg(long, default_value = "gold", value_parser = ["gold", "silver", "bronze", "staged"])]
        layer: String,
        #[arg(long, value_enum, default_value_t = OutputFormat::Table)]
        format: OutputFormat,
    },
    /// Write JSON Schema for sources.yml and pipeline files.
    Schema {
        #[arg(long, default_value = "schemas")]
        out: PathBuf,
    },
}

#[derive(Clone, Copy, ValueEnum, PartialEq)]
enum Format {
    Text,
    Json,
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
    s.split_once('=')
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .ok_or_else(|| format!("`{s}` is not key=value"))
}

/// Runs the command line; returns the process exit code.
pub fn main() -> i32 {
    let cli = Cli::parse();
    init_logging(cli.log_format);
    let vars: BTreeMap<String, String> = cli.vars.iter().cloned().collect();
    match &cli.command {
        Command::Run { pipelines, select } => with_plan(&cli, pipelines, vars, |project, plan| {
            let progress = std::io::stderr().is_terminal() && cli.log_format == LogFormat::Text;
            match crate::exec::run(project, plan, select, progress) {
                Ok(summary) => {
                    print!("{}", summary.render());
                    i32::from(!summary.succeeded())
                }
                Err(e) => {
                    eprintln!("error: {e}");
                    2
                }
            }
        }),
        Command::Validate { pipelines, format } => {
            let result = Project::load(&cli.project, pipelines, vars)
                .and_then(|p| plan::compile(&p).map(|plan| (p, plan)));
            match (result, format) {
                (Ok((_, plan)), Format::Text) => {
                    println!(
                        "ok: {} table(s), {} node(s), no problems",
                        plan.tables.len(),
                        plan.graph.node_count()
                    );
                    0
                }
                (Ok(_), Format::Json) => {
                    println!("{}", serde_json::json!({ "ok": true, "errors": [] }));
                    0
                }
                (Err(d), Format::Text) => {
                    eprintln!("{d}");
                    1
                }
                (Err(d), Format::Json) => {
                    println!("{}", serde_json::json!({ "ok": false, "errors": d.0 }));
                    1
                }
            }
        }
        Command::Plan {
            pipelines,
            select,
            format,
            ..
        } => with_plan(&cli, pipelines, vars, |project, plan| {
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
                Format::Json => println!(
                    "{}",
                    serde_json::to_string_pretty(&nodes).unwrap_or_default()
                ),
            }
            0
        }),
        Command::Query { sql, layer, format } => {
            match crate::query::query(&cli.project.join("data"), layer, sql) {
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

/// Loads and compiles the project, printing every diagnostic on failure (exit 2).
fn with_plan(
    cli: &Cli,
    pipelines: &std::path::Path,
    vars: BTreeMap<String, String>,
    f: impl FnOnce(&Project, &plan::Plan) -> i32,
) -> i32 {
    let compiled: Result<_, Diagnostics> = Project::load(&cli.project, pipelines, vars)
        .and_then(|p| plan::compile(&p).map(|plan| (p, plan)));
    match compiled {
        Ok((project, plan)) => f(&project, &plan),
        Err(d) => {
            eprintln!("{d}");
            2
        }
    }
}

fn init_logging(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_env("JOBFORGE_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(std::io::stderr);
    let _ = match format {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder.json().try_init(),
    };
}
