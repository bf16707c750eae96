//! Building one layer of one table: staged (read the source as published), bronze (names and
//! types), silver and gold (steps); then provenance, the parquet write into the run's folder,
//! the transition log and the table metadata.

use super::parquet::{Encoded, LayerWriter, COMPRESS_FROM_BYTES, ROW_GROUP_ROWS};
use super::{metadata, steps};
use crate::config::Project;
use crate::plan::check::PROVENANCE;
use crate::plan::render::step_label;
use crate::plan::{parse_ref, Layer, Plan};
use crate::records::{RowCounts, StepRecord, TableMetadata, TransitionLog};
use crate::store::{FileEntry, RunWriter};
use chrono::{DateTime, Utc};
use polars::prelude::*;
use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex};

/// What every layer of a run shares.
pub struct RunContext<'a> {
    pub project: &'a Project,
    pub plan: &'a Plan,
    pub writer: &'a RunWriter,
    /// The tables this run builds.
    pub selected: &'a BTreeSet<usize>,
    pub ingested_at: DateTime<Utc>,
    pub progress: Option<&'a indicatif::ProgressBar>,
    /// Frames this run built that other tables' layers still read, by (layer, table).
    pub frames: Mutex<HashMap<(Layer, usize), DataFrame>>,
    /// Layers several tables of the run build alike, built once (see `shared`).
    pub shared: super::shared::SharedLayers,
    /// The pages of each table's last written layer, for its next (see `parquet`).
    pub encoded: Mutex<HashMap<usize, Arc<Encoded>>>,
}

impl RunContext<'_> {
    pub fn batch_id(&self) -> &str {
        self.writer.run_id()
    }

    /// The stable path of `layer.table`, as records name it.
    pub fn stable_file(&self, layer: Layer, table: &str) -> String {
        self.writer.store().stable_file(layer.name(), table).display().to_string()
    }
}

/// What a layer's transforms read besides their input frame: the plan, the vars and the frames
/// of other tables (`layer.table`). A run reads them from the run; `jobforge test` from the test.
pub struct Inputs<'a> {
    pub plan: &'a Plan,
    pub vars: &'a std::collections::BTreeMap<String, String>,
    pub read: &'a steps::RefReader<'a>,
}

/// A layer's frame before provenance and writing, with what happened to the rows (`counts`
/// holds rows in and the causes; rows out is the frame's height).
pub struct Built {
    pub df: DataFrame,
    pub counts: RowCounts,
    pub quarantined: Vec<DataFrame>,
    steps: Vec<StepRecord>,
    source_files: Vec<String>,
    warnings: Vec<String>,
}

impl Built {
    fn new(df: DataFrame, source_files: Vec<String>, warnings: Vec<String>) -> Built {
        let counts = RowCounts { rows_in: df.height() as u64, ..Default::default() };
        Built { df, counts, quarantined: vec![], steps: vec![], source_files, warnings }
    }

    /// Applies `step` to the frame and records its result, checking that its rows balance.
    fn step(
        &mut self,
        label: String,
        step: impl FnOnce(DataFrame) -> Result<steps::StepResult, String>,
    ) -> Result<(), String> {
        let df = std::mem::take(&mut self.df);
        let rows_in = df.height() as u64;
        let r = step(df)?;
        let counts = RowCounts { rows_in, rows_out: r.df.height() as u64, ..r.counts };
        if !counts.balances() {
            return Err(format!("`{label}`: rows are unaccounted for: {}", counts.describe()));
        }
        self.counts.add_causes(&counts);
        self.quarantined.extend(r.quarantined);
        self.steps.push(StepRecord { step: label, counts });
        self.df = r.df;
        Ok(())
    }

    /// Adds a later batch of the same layer: its rows after these, its counts, quarantined rows
    /// and step counts added to these.
    pub(super) fn absorb(&mut self, batch: Built) -> PolarsResult<()> {
        if self.df.width() == 0 {
            self.df = batch.df;
        } else {
            self.df.vstack_mut_owned(batch.df)?;
        }
        self.counts.rows_in += batch.counts.rows_in;
        self.counts.add_causes(&batch.counts);
        self.quarantined.extend(batch.quarantined);
        for (mine, theirs) in self.steps.iter_mut().zip(&batch.steps) {
            let counts = &mut mine.counts;
            counts.rows_in += theirs.counts.rows_in;
            counts.rows_out += theirs.counts.rows_out;
            counts.add_causes(&theirs.counts);
        }
        if self.steps.is_empty() {
            self.steps = batch.steps;
        }
        Ok(())
    }

    /// An empty layer to absorb batches into.
    pub(super) fn empty() -> Built {
        Built::new(DataFrame::empty(), vec![], vec![])
    }
}

/// What a written layer hands on: its frame, its file, its quarantined rows and its warnings.
pub struct LayerOutput {
    pub df: DataFrame,
    pub file: FileEntry,
    pub quarantined: Vec<DataFrame>,
    pub warnings: Vec<String>,
}

/// Builds, writes and records one layer.
pub fn build_layer(ctx: &RunContext, t: usize, layer: Layer, input: Option<DataFrame>) -> Result<LayerOutput, String> {
    let table = &ctx.plan.tables[t];
    let started_at = Utc::now();
    let result = match layer {
        Layer::Staged => staged(ctx, t),
        Layer::Silver | Layer::Gold | Layer::Bronze => {
            let read = |reference: &str| read_reference(ctx, reference);
            let inputs = Inputs { plan: ctx.plan, vars: &ctx.project.vars, read: &read };
            input.ok_or("no input frame".to_string()).and_then(|df| transform(&inputs, t, layer, df)).map(|mut b| {
                for reference in crate::plan::step_references(table.steps(layer)) {
                    if let Ok((l, name)) = parse_ref(&reference) {
                        b.source_files.push(ctx.stable_file(l, name));
                    }
                }
                b
            })
        }
    };
    finish_layer(ctx, t, layer, started_at, result)
}

/// The transition log of `layer` of table `t`, begun at `started_at`, as failed until it is not.
pub(super) fn transition(ctx: &RunContext, t: usize, layer: Layer, started_at: DateTime<Utc>) -> TransitionLog {
    let table = &ctx.plan.tables[t];
    let source_layer = match layer {
        Layer::Staged => "source",
        Layer::Bronze => "staged",
        Layer::Silver => "bronze",
        Layer::Gold => "silver",
    };
    TransitionLog {
        transition_id: uuid::Uuid::new_v4().to_string(),
        batch_id: ctx.batch_id().to_string(),
        table: table.name.clone(),
        source_layer: source_layer.into(),
        target_layer: layer.name().into(),
        source_files: vec![],
        target_file: ctx.stable_file(layer, &table.name),
        counts: RowCounts::default(),
        steps_applied: vec![],
        started_at,
        ended_at: started_at,
        status: "failed".into(),
        errors: vec![],
        warnings: vec![],
    }
}

/// Adds a layer's transition log and metadata to the run's records.
pub(super) fn record(ctx: &RunContext, log: TransitionLog, meta: Option<TableMetadata>) -> Result<(), String> {
    ctx.writer.record(meta.as_ref(), &log)
}

/// Writes layer `layer` of table `t` as `result` built it (with provenance), and records its
/// transition and metadata.
pub(super) fn finish_layer(
    ctx: &RunContext,
    t: usize,
    layer: Layer,
    started_at: DateTime<Utc>,
    result: Result<Built, String>,
) -> Result<LayerOutput, String> {
    let table = &ctx.plan.tables[t];
    let previous_file = |l: Layer| ctx.stable_file(l, &table.name);
    let mut log = transition(ctx, t, layer, started_at);
    let written = result.and_then(|mut built| {
        if layer != Layer::Staged {
            built.source_files.insert(0, previous_file(Layer::ALL[layer as usize - 1]));
        }
        let mut df = with_provenance(ctx, t, layer, built.df).map_err(|e| e.to_string())?;
        // A frame of one row group in one chunk per column, here once: the writer needs it, and
        // the next layer then writes the same arrays (see `parquet`). A longer frame is written
        // a group at a time, never copied whole.
        if df.height() <= ROW_GROUP_ROWS {
            df.rechunk_mut();
        }
        let quarantined = built
            .quarantined
            .into_iter()
            .filter(|q| q.height() > 0)
            .map(|q| with_provenance(ctx, t, layer, q))
            .collect::<PolarsResult<Vec<_>>>()
            .map_err(|e| e.to_string())?;
        let counts = RowCounts { rows_out: df.height() as u64, ..built.counts };
        let quarantined_rows: u64 = quarantined.iter().map(|q| q.height() as u64).sum();
        if !counts.balances() || quarantined_rows != counts.rows_quarantined {
            return Err(format!("rows are unaccounted for: {}", counts.describe()));
        }
        tracing::debug!(table = %table.name, layer = layer.name(), rows = df.height(), bytes = frame_bytes(&df), "layer built");
        let file = write_layer(ctx, t, layer, &df)?;
        ctx.shared.keep(ctx.plan.node(t, layer), || super::shared::Shared {
            df: df.clone(),
            file: file.clone(),
            encoded: ctx.encoded.lock().ok().and_then(|e| e.get(&t).cloned()),
            quarantined: quarantined.clone(),
            counts,
            steps: built.steps.clone(),
        });
        log.source_files = built.source_files;
        log.counts = counts;
        log.steps_applied = built.steps;
        log.warnings = built.warnings.clone();
        Ok(LayerOutput { df, file, quarantined, warnings: built.warnings })
    });
    close(ctx, t, layer, log, written)
}

/// Ends layer `layer` of table `t` as `written` went: its transition log closed (success, or
/// the error) and, when written, its metadata, both added to the run's records.
pub(super) fn close(
    ctx: &RunContext,
    t: usize,
    layer: Layer,
    mut log: TransitionLog,
    written: Result<LayerOutput, String>,
) -> Result<LayerOutput, String> {
    log.ended_at = Utc::now();
    let meta = match &written {
        Ok(out) => {
            log.status = "success".into();
            Some(metadata::table_metadata(ctx, t, layer, &out.df, &out.file))
        }
        Err(e) => {
            log.errors.push(e.clone());
            None
        }
    };
    record(ctx, log, meta)?;
    written
}

fn staged(ctx: &RunContext, t: usize) -> Result<Built, String> {
    let table = &ctx.plan.tables[t];
    let df = match ctx.plan.read_ahead.take(&table.source_id, &table.file.path) {
        Some(df) => df,
        None => crate::reader::read_table(&table.file.path, table.format, &table.read).map_err(|e| e.to_string())?,
    };
    let warnings = schema_drift(ctx, t, &df);
    Ok(Built::new(df, vec![table.file.path.display().to_string()], warnings))
}

/// Source columns that appeared or disappeared since the last staged write of this table (as
/// the committed staged file's schema has them: its footer, not the previous records, which
/// may still be being read).
pub(super) fn schema_drift(ctx: &RunContext, t: usize, df: &DataFrame) -> Vec<String> {
    let table = &ctx.plan.tables[t];
    let Some(previous) = ctx.writer.committed_file(Layer::Staged.name(), &table.name) else {
        return vec![];
    };
    let parquet = crate::config::sources::Format::Parquet;
    let Ok(names) = crate::reader::read_header(&previous, parquet, &Default::default()) else {
        return vec![];
    };
    let before: Vec<&str> = names.iter().map(String::as_str).collect();
    let now: Vec<String> =
        df.get_column_names().iter().map(|c| c.to_string()).filter(|c| !PROVENANCE.contains(&c.as_str())).collect();
    let file = table.file.path.display();
    let mut out: Vec<String> =
        now.iter().filter(|c| !before.contains(&c.as_str())).map(|c| format!("new column `{c}` in {file}")).collect();
    out.extend(
        before
            .iter()
            .filter(|c| !PROVENANCE.contains(c) && !now.iter().any(|n| n == *c))
            .map(|c| format!("column `{c}` is no longer in {file}")),
    );
    out
}

/// Applies the transforms of `layer` (bronze, silver or gold) of table `t` to `df`; writes
/// nothing.
pub fn transform(inputs: &Inputs, t: usize, layer: Layer, df: DataFrame) -> Result<Built, String> {
    match layer {
        Layer::Staged => Ok(Built::new(df, vec![], vec![])),
        Layer::Bronze => bronze(inputs.plan, t, df),
        Layer::Silver | Layer::Gold => run_steps(inputs, t, layer, df),
    }
}

pub(super) fn bronze(plan: &Plan, t: usize, df: DataFrame) -> Result<Built, String> {
    let table = &plan.tables[t];
    let published: Vec<String> = df
        .get_column_names()
        .iter()
        .map(|s| s.to_string())
        .filter(|c| !crate::plan::check::PROVENANCE.contains(&c.as_str()))
        .collect();
    if published != table.header {
        return Err(format!(
            "the header of {} changed since the plan was compiled (now [{}])",
            table.file.path.display(),
            published.join(", ")
        ));
    }
    let names: std::collections::HashMap<&str, &String> =
        table.header.iter().map(String::as_str).zip(&table.bronze_names).collect();
    let df = steps::renamed(df, |c| names.get(c).map(|n| n.to_string())).map_err(|e| e.to_string())?;
    let casts: Vec<_> = table.spec.bronze.cast.iter().map(|(c, d)| (c.clone(), *d)).collect();
    let mut built = Built::new(df, vec![], vec![]);
    built.step("bronze".into(), |df| steps::cast(df, &casts).map_err(|e| first_line(&e)))?;
    Ok(built)
}

fn run_steps(inputs: &Inputs, t: usize, layer: Layer, df: DataFrame) -> Result<Built, String> {
    let table = &inputs.plan.tables[t];
    let mut built = Built::new(df, vec![], vec![]);
    for (i, step) in table.steps(layer).iter().enumerate() {
        let label = step_label(step);
        crate::fault::panic_point(&format!("panic:{layer}/{}", table.name));
        built
            .step(label.clone(), |df| {
                steps::apply(step, df, inputs.read, inputs.vars).map_err(|e| format!("`{label}`: {}", first_line(&e)))
            })
            .map_err(|e| format!("step {} {e}", i + 1))?;
    }
    Ok(built)
}

/// The first line of an error: Polars appends its whole query plan to some messages.
fn first_line(e: &PolarsError) -> String {
    e.to_string().lines().next().unwrap_or_default().to_string()
}

/// Reads `layer.table`: this run's frame when the run builds that table (the plan's edges make
/// the layer wait for it), else the committed snapshot's file.
fn read_reference(ctx: &RunContext, reference: &str) -> PolarsResult<DataFrame> {
    let (layer, name) = parse_ref(reference).map_err(|e| polars_err!(ComputeError: "{e}"))?;
    let table = ctx.plan.table(name).filter(|t| ctx.selected.contains(t));
    if let Some(t) = table {
        if let Some(df) = ctx.frames.lock().ok().and_then(|f| f.get(&(layer, t)).cloned()) {
            return Ok(df);
        }
    }
    let path = if table.is_some() {
        ctx.writer.file(layer.name(), name).map_err(|e| polars_err!(ComputeError: "{e}"))?
    } else {
        ctx.writer.committed_file(layer.name(), name).ok_or_else(
            || polars_err!(ComputeError: "`{reference}` has not been built; run it first or select it with `+`"),
        )?
    };
    let file = std::fs::File::open(&path)
        .map_err(|e| polars_err!(ComputeError: "cannot read `{reference}` ({}): {e}", path.display()))?;
    ParquetReader::new(file).finish()
}

/// Sets `_layer` and fills any provenance column a step dropped.
pub(super) fn with_provenance(ctx: &RunContext, t: usize, layer: Layer, mut df: DataFrame) -> PolarsResult<DataFrame> {
    let table = &ctx.plan.tables[t];
    let height = df.height();
    // Constant columns: one value, however many rows (see `frame_bytes`).
    let constant = |name: &str, dtype: DataType, value: AnyValue<'static>| {
        Column::new_scalar(name.into(), Scalar::new(dtype, value), height)
    };
    let text = |name: &str, value: String| constant(name, DataType::String, AnyValue::StringOwned(value.into()));
    df.with_column(text("_layer", layer.name().to_string()))?;
    if df.get_column_index("_source_file").is_none() {
        df.with_column(text("_source_file", table.file.path.display().to_string()))?;
    }
    if df.get_column_index("_ingested_at").is_none() {
        let micros = ctx.ingested_at.timestamp_micros();
        let dtype = DataType::Datetime(TimeUnit::Microseconds, None);
        df.with_column(constant("_ingested_at", dtype, AnyValue::Datetime(micros, TimeUnit::Microseconds, None)))?;
    }
    if df.get_column_index("_batch_id").is_none() {
        df.with_column(text("_batch_id", ctx.batch_id().to_string()))?;
    }
    Ok(df)
}

/// Writes layer `layer` of table `t` (see `write_parquet`), taking the pages of the columns it
/// shares with the table's layer before; keeps its own for the next.
fn write_layer(ctx: &RunContext, t: usize, layer: Layer, df: &DataFrame) -> Result<FileEntry, String> {
    let previous = ctx.encoded.lock().ok().and_then(|mut e| e.remove(&t));
    let mut encoded = None;
    let file = write_parquet(ctx, layer.name(), &ctx.plan.tables[t].name, df, |writer| {
        encoded = Some(writer.write_reusing(df, previous.as_deref())?);
        Ok(())
    })?;
    if let Some(encoded) = &encoded {
        let (taken, of) = encoded.taken();
        tracing::debug!(table = %ctx.plan.tables[t].name, layer = layer.name(), taken, of, "layer written");
    }
    if layer != Layer::Gold {
        if let (Some(encoded), Ok(mut kept)) = (encoded, ctx.encoded.lock()) {
            kept.insert(t, Arc::new(encoded));
        }
    }
    Ok(file)
}

/// Writes a frame as `layer.table` of this run (see `parquet`): compressed, with statistics,
/// from `COMPRESS_FROM_BYTES` in memory; `write` puts the rows.
fn write_parquet(
    ctx: &RunContext,
    layer: &str,
    table: &str,
    df: &DataFrame,
    write: impl FnOnce(&mut LayerWriter<&mut dyn std::io::Write>) -> PolarsResult<()>,
) -> Result<FileEntry, String> {
    let schema = schema_of(df);
    let small = frame_bytes(df) < COMPRESS_FROM_BYTES;
    ctx.writer.write_file(layer, table, df.height() as u64, &schema, |out| {
        let mut writer = LayerWriter::new(out, df.schema(), small).map_err(std::io::Error::other)?;
        write(&mut writer).map_err(std::io::Error::other)?;
        writer.finish().map_err(std::io::Error::other)
    })
}

/// A frame's size in memory, counting a constant column (provenance) as its one value: Polars'
/// own estimate materializes it, every row, and keeps it. Text counts its values' bytes (as
/// Polars' estimate does), null or not, summed here from the views in one pass: Polars sums
/// them through an iterator of optional lengths, ten times the instructions.
fn frame_bytes(df: &DataFrame) -> usize {
    let text_bytes = |s: &Series| -> Option<usize> {
        let text = s.str().ok()?;
        Some(text.downcast_iter().map(|a| a.views().iter().map(|v| v.length as usize).sum::<usize>()).sum())
    };
    df.columns().iter().filter_map(|c| c.as_series()).map(|s| text_bytes(s).unwrap_or_else(|| s.estimated_size())).sum()
}

/// The names and types of a frame's columns, as a file's manifest entry fingerprints them.
pub(super) fn schema_of(df: &DataFrame) -> Vec<(String, String)> {
    df.columns().iter().map(|c| (c.name().to_string(), c.dtype().to_string())).collect()
}

/// Writes the table's quarantined rows of this run (all columns as text).
pub fn write_quarantine(ctx: &RunContext, table: &str, frames: Vec<DataFrame>) -> Result<FileEntry, String> {
    let frames: Vec<DataFrame> = frames.into_iter().filter(|f| f.height() > 0).collect();
    let none = frames.is_empty();
    if none {
        // Every table with no quarantined rows has the same empty file: written once, linked.
        if let Some(empty) = ctx.shared.empty_quarantine() {
            return ctx.writer.link_file("quarantine", table, &empty);
        }
    }
    let df = quarantine_text(frames).map_err(|e| e.to_string())?;
    let df = mask_reasons(df, &ctx.plan.pii_columns(table)).map_err(|e| e.to_string())?;
    let file = write_parquet(ctx, "quarantine", table, &df, |writer| writer.write(&df))?;
    if none {
        ctx.shared.keep_empty_quarantine(&file);
    }
    Ok(file)
}

/// Quarantined rows of several steps as one frame of text, as the quarantine file holds them
/// (lists from JSON sources as JSON arrays).
pub fn quarantine_text(frames: Vec<DataFrame>) -> PolarsResult<DataFrame> {
    if frames.is_empty() {
        let names = ["_rule", "_reason", "_layer", "_source_file", "_batch_id"];
        return DataFrame::new(0, names.iter().map(|c| Column::new((*c).into(), Vec::<String>::new())).collect());
    }
    let as_text = |df: DataFrame| -> PolarsResult<LazyFrame> {
        let height = df.height();
        let columns = df.columns().iter().map(text_column).collect::<PolarsResult<Vec<_>>>()?;
        Ok(DataFrame::new(height, columns)?.lazy())
    };
    let frames = frames.into_iter().map(as_text).collect::<PolarsResult<Vec<_>>>()?;
    concat_lf_diagonal(frames, UnionArgs::default())?.collect()
}

/// A column as text for the quarantine file: lists (from JSON sources) as JSON arrays, the rest
/// cast.
fn text_column(c: &Column) -> PolarsResult<Column> {
    if !matches!(c.dtype(), DataType::List(_)) {
        return c.cast(&DataType::String);
    }
    let texts: Vec<Option<String>> = c
        .list()?
        .amortized_iter()
        .map(|item| {
            item.map(|s| {
                let values: Vec<serde_json::Value> = s
                    .as_ref()
                    .iter()
                    .map(|v| match v {
                        AnyValue::Null => serde_json::Value::Null,
                        v => serde_json::Value::String(v.str_value().to_string()),
                    })
                    .collect();
                serde_json::Value::Array(values).to_string()
            })
        })
        .collect();
    Ok(Column::new(c.name().clone(), texts))
}

/// `_reason` with every value of the row's personal-information columns replaced by `***`
/// (the rows themselves keep their values: they are data).
fn mask_reasons(df: DataFrame, pii: &std::collections::BTreeSet<String>) -> PolarsResult<DataFrame> {
    let present: Vec<&String> = pii.iter().filter(|c| df.column(c.as_str()).is_ok()).collect();
    if present.is_empty() || df.height() == 0 {
        return Ok(df);
    }
    let reasons = df.column(crate::exec::rules::REASON)?.str()?.clone();
    let values: Vec<StringChunked> =
        present.iter().map(|c| Ok(df.column(c.as_str())?.str()?.clone())).collect::<PolarsResult<_>>()?;
    let masked: StringChunked = (0..df.height())
        .map(|i| {
            reasons.get(i).map(|r| {
                values
                    .iter()
                    .filter_map(|v| v.get(i))
                    .filter(|v| !v.is_empty())
                    .fold(r.to_string(), |r, v| r.replace(v, "***"))
            })
        })
        .collect();
    let mut df = df;
    df.with_column(masked.into_series().with_name(crate::exec::rules::REASON.into()).into_column())?;
    Ok(df)
}
