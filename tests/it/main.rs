//! The one integration test binary (each extra binary would link Polars and DuckDB again).

mod alerts;
mod batches;
mod checks;
mod common;
mod compile_errors;
mod corpus;
mod dagster;
mod docs;
mod formats;
mod governance;
mod incremental;
mod model;
mod nested_json;
mod parity;
mod pii;
mod postgres;
mod powerbi;
mod quality;
mod real_data;
mod rows;
mod run;
mod sources;
mod store;
mod unit_tests;
mod warehouse;
