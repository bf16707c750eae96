//! JobForge: YAML source registry and pipeline specs compiled into a layer plan and run over
//! Polars into a governed medallion data product (staged, bronze, silver, gold).
//!
//! Data flows one way: `config` (typed YAML) -> `plan` (checked DAG) -> `exec` (Polars) ->
//! `store` (the data folder: snapshots, manifests, `records`) -> readers (`query`, `semantic`,
//! `powerbi`, `lineage`, `catalogue`, `registry`). `unit_tests` runs a plan's transforms on the
//! rows its tests give, beside that flow, writing nothing.

pub mod alerts;
pub mod atomic;
pub mod catalogue;
pub mod checks;
pub mod cli;
pub mod config;
pub mod dagster;
pub mod diag;
pub mod exec;
pub mod fault;
pub mod lineage;
#[cfg(feature = "query")]
pub mod parity;
pub mod plan;
pub mod powerbi;
pub mod quality;
#[cfg(feature = "query")]
pub mod query;
pub mod reader;
pub mod records;
pub mod registry;
pub mod schema;
pub mod semantic;
pub mod sql;
pub mod status;
pub mod steps;
pub mod store;
pub mod unit_tests;
pub mod warehouse;

/// This build of jobforge: its version and the size and modification time of its executable
/// (distinct for every build in practice); `None` when the executable cannot be looked at. What
/// one build keeps for itself (kept parses, run stamps) another does not trust.
pub fn build_identity() -> Option<&'static str> {
    static IDENTITY: std::sync::OnceLock<Option<String>> = std::sync::OnceLock::new();
    IDENTITY
        .get_or_init(|| {
            let meta = std::fs::metadata(std::env::current_exe().ok()?).ok()?;
            let modified = meta.modified().ok()?.duration_since(std::time::UNIX_EPOCH).ok()?;
            Some(format!("{} {} {}", env!("CARGO_PKG_VERSION"), meta.len(), modified.as_nanos()))
        })
        .as_deref()
}
