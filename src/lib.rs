//! JobForge: YAML source registry and pipeline specs compiled into a layer plan and run over
//! Polars into a governed medallion data product (staged, bronze, silver, gold).
//!
//! Data flows one way: `config` (typed YAML) -> `plan` (checked DAG) -> `exec` (Polars) ->
//! `catalog` (records) -> readers (`query`).

pub mod atomic;
pub mod catalog;
pub mod catalogue;
pub mod cli;
pub mod config;
pub mod diag;
pub mod exec;
pub mod lineage;
pub mod plan;
pub mod powerbi;
#[cfg(feature = "query")]
pub mod query;
pub mod reader;
pub mod registry;
pub mod schema;
pub mod semantic;
