//! Unit tests of transforms, written in a pipeline file under `tests:` (`jobforge test`): given
//! rows into a layer or a range of layers (and rows for every other table they read), the rows
//! expected out and, if stated, the rows expected in quarantine. They run in memory on the same
//! transforms as a run, reading no source data and writing nothing.
//!
//! `check` validates their shape at compile; `run` executes them; `compare` matches and
//! describes rows.

pub mod check;
pub mod compare;
pub mod run;

use crate::plan::Layer;
use indexmap::IndexMap;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// One unit test of a table's transforms.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct UnitTest {
    /// Unique within the file; `jobforge test NAME` runs the tests of that name.
    pub name: String,
    /// What the test shows, for people.
    pub description: Option<String>,
    /// The layers run: one (`silver`) or a range (`bronze..gold`); default `staged..gold`.
    #[serde(default = "all_layers")]
    pub layers: String,
    /// Input rows: `input` enters the first layer (for `staged` and `bronze`, the source's rows
    /// with its published column names, as text); `layer.table` gives the rows of every other
    /// table the layers read (`ref`, `join`, `exists_in`). Columns not given are null.
    pub given: IndexMap<String, Rows>,
    /// What should come out.
    pub expect: Expectation,
}

fn all_layers() -> String {
    "staged..gold".into()
}

/// Rows, inline or from a CSV file.
#[derive(Debug, Clone, Serialize, JsonSchema)]
#[serde(untagged)]
pub enum Rows {
    /// One map of `column: value` per row; a value is text, a number, a boolean or null.
    Inline(Vec<IndexMap<String, serde_json::Value>>),
    /// A CSV file with a header row, relative to the pipeline file; empty cells are null.
    File {
        /// The file.
        csv: String,
    },
}

/// Read by hand rather than as an untagged enum, which would hold every row in serde's
/// buffer before reading it again (a quarter of reading a project's pipelines) and lose where
/// a bad value is.
impl<'de> Deserialize<'de> for Rows {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Rows, D::Error> {
        struct RowsVisitor;
        impl<'de> serde::de::Visitor<'de> for RowsVisitor {
            type Value = Rows;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a list of rows (`column: value` maps) or `{ csv: file }`")
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<Rows, A::Error> {
                let mut rows = Vec::with_capacity(seq.size_hint().unwrap_or(0));
                while let Some(row) = seq.next_element()? {
                    rows.push(row);
                }
                Ok(Rows::Inline(rows))
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(self, map: A) -> Result<Rows, A::Error> {
                #[derive(Deserialize)]
                #[serde(deny_unknown_fields)]
                struct File {
                    csv: String,
                }
                let file = File::deserialize(serde::de::value::MapAccessDeserializer::new(map))?;
                Ok(Rows::File { csv: file.csv })
            }
        }
        d.deserialize_any(RowsVisitor)
    }
}

/// The expected output of the last layer run.
#[derive(Debug, Clone, Default, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Expectation {
    /// Rows out of the last layer, in any order; only the columns named are compared, and
    /// provenance columns never are.
    pub rows: Option<Rows>,
    /// Rows the layers sent to quarantine, in any order: `_rule`, `_reason` and any of the row's
    /// columns. Not checked when absent; `[]` expects none.
    pub quarantine: Option<Rows>,
}

/// The first and last layer of a test's `layers`.
pub fn layer_range(text: &str) -> Result<(Layer, Layer), String> {
    let parse = |s: &str| s.trim().parse::<Layer>();
    let (first, last) = match text.split_once("..") {
        Some((a, b)) => (parse(a)?, parse(b)?),
        None => {
            let l = parse(text)?;
            (l, l)
        }
    };
    if first > last {
        return Err(format!("`{text}` runs backwards; write the earlier layer first, e.g. `{last}..{first}`"));
    }
    Ok((first, last))
}

impl UnitTest {
    /// The layers it runs, in order (empty when `layers` does not parse).
    pub fn layer_list(&self) -> Vec<Layer> {
        match layer_range(&self.layers) {
            Ok((a, b)) => Layer::ALL.into_iter().filter(|l| *l >= a && *l <= b).collect(),
            Err(_) => vec![],
        }
    }

    /// The line prefix that finds this test in its file.
    pub fn section(&self) -> String {
        format!("- name: {}", self.name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layer_ranges() {
        assert_eq!(layer_range("silver"), Ok((Layer::Silver, Layer::Silver)));
        assert_eq!(layer_range("bronze..gold"), Ok((Layer::Bronze, Layer::Gold)));
        assert!(layer_range("gold..bronze").unwrap_err().contains("backwards"));
        assert!(layer_range("platinum").is_err());
    }
}
