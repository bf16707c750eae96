//! Typed `sources.yml`: the source registry (where each raw file is and how to read it).

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// The whole `sources.yml` file.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SourcesFile {
    /// File format version; always 1.
    pub version: u32,
    /// Settings every source inherits unless it overrides them.
    #[serde(default)]
    pub defaults: SourceDefaults,
    /// Sources by id.
    pub sources: BTreeMap<String, Source>,
}

/// Settings shared by all sources.
#[derive(Debug, Clone, Default, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SourceDefaults {
    /// Folder that relative source paths start from (a minijinja template).
    pub root: Option<String>,
    /// Default file format.
    pub format: Option<Format>,
    /// Default read options.
    #[serde(default)]
    pub read: ReadOptions,
    /// Default version rule for glob patterns.
    pub version: Option<VersionRule>,
    /// Data-quality checks every table gets (see a pipeline's `checks`), unless it has a check
    /// of the same name.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub checks: Vec<crate::checks::Check>,
}

/// One raw source: a file (or the newest of a family of files) and how to read it.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Source {
    /// What the source holds.
    pub description: Option<String>,
    /// Who publishes it.
    pub publisher: Option<String>,
    /// Its licence.
    pub licence: Option<String>,
    /// Where the file is downloaded from (`jobforge sources pull`).
    pub url: Option<String>,
    /// Expected SHA-256 (hex) of the downloaded file; a mismatch stops the pull.
    pub sha256: Option<String>,
    /// The publisher's page about the data, for people.
    pub homepage: Option<String>,
    /// File format; inherits `defaults.format`, else guessed from the extension.
    pub format: Option<Format>,
    /// One file, relative to the root (a minijinja template).
    pub path: Option<String>,
    /// Glob patterns relative to the root; one file is chosen by the version rule.
    #[serde(default)]
    pub pattern: Vec<String>,
    /// Glob patterns of file names to ignore.
    #[serde(default)]
    pub exclude: Vec<String>,
    /// Which file wins when a pattern matches several.
    pub version: Option<VersionRule>,
    /// How to read the file; merged over `defaults.read`.
    #[serde(default)]
    pub read: ReadOptions,
}

/// Supported file formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    Csv,
    Xlsx,
    Parquet,
    Json,
    Ndjson,
}

/// How one file is chosen among several matches.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum VersionRule {
    /// The file whose name holds the highest version number (numbers compared piece by piece).
    Highest,
    /// The most recently modified file.
    LatestModified,
    /// More than one match is an error.
    ErrorIfMany,
}

/// Text encodings of CSV files.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
pub enum Encoding {
    /// UTF-8, with or without a byte-order mark.
    #[serde(rename = "utf-8", alias = "utf8", alias = "utf-8-sig")]
    Utf8,
    /// ISO-8859-1.
    #[serde(rename = "latin-1", alias = "latin1", alias = "iso-8859-1")]
    Latin1,
    /// Windows code page 1252.
    #[serde(rename = "windows-1252", alias = "cp1252")]
    Windows1252,
}

/// Options for reading a file; every field is optional so sources can override defaults.
#[derive(Debug, Clone, Default, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ReadOptions {
    /// Text encoding (CSV); default UTF-8 with an optional BOM.
    pub encoding: Option<Encoding>,
    /// Field delimiter (CSV), one character; default `,`.
    pub delimiter: Option<char>,
    /// Whether the first (non-skipped) row is the header; default true.
    pub header: Option<bool>,
    /// Rows to skip before the header (CSV and Excel).
    pub skip_rows: Option<usize>,
    /// Excel sheet by name or 0-based index; default the first.
    pub sheet: Option<SheetRef>,
    /// Columns that must stay text. CSV and Excel are always read as text at the staged layer;
    /// for Parquet and JSON these columns are cast to text.
    #[serde(default)]
    pub text_columns: Vec<String>,
    /// Cell texts read as null (CSV and Excel), compared exactly; default `[""]`, so an empty
    /// field is null. `[]` keeps empty fields as empty text.
    pub null_values: Option<Vec<String>>,
    /// CSV rows with more fields than the header: `error` (default, naming the line) or
    /// `truncate` (the extra fields are dropped). Rows with fewer fields get nulls.
    pub ragged_rows: Option<RaggedRows>,
    /// JSON: the field holding the list of records, dotted for nesting (`rows`, `data.items`);
    /// leave it out when the document is the list. Nested objects of a record become columns
    /// with dotted names (`provenance.source_url`); lists of plain values become list columns.
    pub records: Option<String>,
    /// JSON: fields of the document (beside `records`) copied onto every record as columns,
    /// e.g. `[scraped_at, url]`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub envelope: Vec<String>,
}

/// What to do with CSV rows that have more fields than the header.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum RaggedRows {
    Error,
    Truncate,
}

/// An Excel sheet by name or index.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(untagged)]
pub enum SheetRef {
    Index(usize),
    Name(String),
}

impl ReadOptions {
    /// These options with unset fields taken from `defaults`.
    pub fn over(&self, defaults: &ReadOptions) -> ReadOptions {
        ReadOptions {
            encoding: self.encoding.or(defaults.encoding),
            delimiter: self.delimiter.or(defaults.delimiter),
            header: self.header.or(defaults.header),
            skip_rows: self.skip_rows.or(defaults.skip_rows),
            sheet: self.sheet.clone().or_else(|| defaults.sheet.clone()),
            text_columns: if self.text_columns.is_empty() {
                defaults.text_columns.clone()
            } else {
                self.text_columns.clone()
            },
            null_values: self.null_values.clone().or_else(|| defaults.null_values.clone()),
            ragged_rows: self.ragged_rows.or(defaults.ragged_rows),
            records: self.records.clone().or_else(|| defaults.records.clone()),
            envelope: if self.envelope.is_empty() { defaults.envelope.clone() } else { self.envelope.clone() },
        }
    }

    /// The cell texts read as null: `null_values`, by default the empty text.
    pub fn nulls(&self) -> Vec<String> {
        self.null_values.clone().unwrap_or_else(|| vec![String::new()])
    }
}
