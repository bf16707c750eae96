//! Large CSV sources in batches: the staged layer is read and written a batch at a time and
//! bronze (names and strict casts, row by row) is applied to each batch as it goes, so neither
//! the raw file nor the staged layer is ever whole in memory; only bronze's rows are kept, for
//! the layers after it. Counts, quarantine, transition logs and metadata are those of a whole
//! read: each batch's counts add up, and its rows follow the previous batch's.

use super::layers::{self, Built, LayerOutput, RunContext};
use super::metadata;
use super::parquet::LayerWriter;
use crate::plan::check::PROVENANCE;
use crate::plan::{Layer, Plan};
use crate::records::RowCounts;
use chrono::Utc;
use polars::prelude::*;

/// Whether table `t` reads its source in batches: a CSV file of at least a batch (see
/// `batch_bytes`) with its header on the first line.
pub fn applies(plan: &Plan, t: usize) -> bool {
    let table = &plan.tables[t];
    table.file.size >= batch_bytes() as u64 && crate::reader::batchable(table.format, &table.read)
}

/// Builds and writes the staged layer of table `t` batch by batch, applying bronze to each
/// batch; returns the staged layer (its frame left empty: it was never whole) and bronze, built
/// but not yet written.
pub fn staged_and_bronze(ctx: &RunContext, t: usize) -> Result<(LayerOutput, Built), String> {
    let started_at = Utc::now();
    let table = &ctx.plan.tables[t];
    let mut log = layers::transition(ctx, t, Layer::Staged, started_at);
    let mut file = ctx.writer.create_file(Layer::Staged.name(), &table.name)?;
    let mut staged = Staged::default();
    let mut bronze = Built::empty();
    let result = {
        let mut writer: Option<LayerWriter<&mut std::io::BufWriter<std::fs::File>>> = None;
        let mut out = Some(&mut file.out);
        let read = crate::reader::read_csv_batches(&table.file.path, &table.read, batch_bytes(), |batch| {
            let batch = layers::with_provenance(ctx, t, Layer::Staged, batch).map_err(|e| e.to_string())?;
            if let Some(out) = out.take() {
                // A batched source is large (at least a batch): compressed, with statistics.
                writer = Some(LayerWriter::new(out, batch.schema(), false).map_err(|e| e.to_string())?);
            }
            if let Some(w) = writer.as_mut() {
                w.write(&batch).map_err(|e| e.to_string())?;
            }
            staged.add(&batch);
            let built = layers::bronze(ctx.plan, t, batch)?;
            bronze.absorb(without_provenance(built)).map_err(|e| e.to_string())
        });
        read.and_then(|()| match writer.take() {
            Some(w) => w.finish().map_err(|e| e.to_string()),
            None => Err(format!("{}: no header row", table.file.path.display())),
        })
    };
    let written = result.and_then(|()| {
        let first = staged.first.take().unwrap_or_default();
        let entry = file.finish(staged.rows, &layers::schema_of(&first))?;
        let meta = metadata::batched_metadata(ctx, t, Layer::Staged, &first, staged.rows, &staged.nulls, &entry);
        Ok((first, entry, meta))
    });
    log.ended_at = Utc::now();
    match written {
        Ok((first, entry, meta)) => {
            let warnings = layers::schema_drift(ctx, t, &first);
            log.status = "success".into();
            log.source_files = vec![table.file.path.display().to_string()];
            log.counts = RowCounts { rows_in: staged.rows, rows_out: staged.rows, ..Default::default() };
            log.warnings = warnings.clone();
            layers::record(ctx, log, Some(meta))?;
            let out = LayerOutput { df: DataFrame::empty(), file: entry, quarantined: vec![], warnings };
            Ok((out, bronze))
        }
        Err(e) => {
            log.errors.push(e.clone());
            layers::record(ctx, log, None)?;
            Err(e)
        }
    }
}

/// The bytes per batch: `reader::BATCH_BYTES`, or `JOBFORGE_BATCH_BYTES` (for tests that
/// batch small files).
fn batch_bytes() -> usize {
    std::env::var("JOBFORGE_BATCH_BYTES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(crate::reader::BATCH_BYTES as usize)
}

/// Bronze rows without the provenance columns that are the same on every row of a run: they
/// are put back, as constants, when bronze is written (`layers::with_provenance`).
fn without_provenance(mut built: Built) -> Built {
    let present: Vec<&str> = PROVENANCE.iter().copied().filter(|c| built.df.get_column_index(c).is_some()).collect();
    built.df = built.df.drop_many(present);
    built
}

/// What the staged layer's metadata needs of the batches: the first, the rows, the nulls.
#[derive(Default)]
struct Staged {
    first: Option<DataFrame>,
    rows: u64,
    nulls: Vec<u64>,
}

impl Staged {
    fn add(&mut self, batch: &DataFrame) {
        if self.first.is_none() {
            self.first = Some(batch.head(Some(1_000)));
            self.nulls = vec![0; batch.width()];
        }
        self.rows += batch.height() as u64;
        for (n, c) in self.nulls.iter_mut().zip(batch.columns()) {
            *n += c.null_count() as u64;
        }
    }
}
