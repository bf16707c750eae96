//! The hand-written Polars program doing what `bench/pipelines/synthetic.yml` asks JobForge to
//! do, writing the same four layers and quarantine, with none of JobForge's bookkeeping beyond
//! what the output needs (provenance columns). Usage: baseline SOURCE.csv OUT_DIR

use polars::prelude::*;
use std::fs::File;

fn write(df: &mut DataFrame, path: &str) -> PolarsResult<()> {
    let file = File::create(path)?;
    ParquetWriter::new(file).with_compression(ParquetCompression::Zstd(None)).finish(df)?;
    Ok(())
}

fn main() -> PolarsResult<()> {
    let mut args = std::env::args().skip(1);
    let source = args.next().unwrap_or_else(|| "bench/out/source/synthetic.csv".into());
    let out = args.next().unwrap_or_else(|| "bench/out/baseline".into());
    for layer in ["staged", "bronze", "silver", "gold", "quarantine"] {
        std::fs::create_dir_all(format!("{out}/{layer}"))?;
    }
    let prov = |layer: &str| {
        vec![
            lit(source.clone()).alias("_source_file"),
            lit(0i64).cast(DataType::Datetime(TimeUnit::Microseconds, None)).alias("_ingested_at"),
            lit("batch").alias("_batch_id"),
            lit(layer.to_string()).alias("_layer"),
        ]
    };
    // staged: everything as text.
    let staged = CsvReadOptions::default()
        .with_has_header(true)
        .with_infer_schema_length(Some(0))
        .try_into_reader_with_file_path(Some(source.clone().into()))?
        .finish()?;
    let mut staged = staged.lazy().with_columns(prov("staged")).collect()?;
    write(&mut staged, &format!("{out}/staged/synthetic.parquet"))?;
    // bronze: snake_case names, casts; rows that do not cast go to quarantine.
    let names = staged.get_column_names_owned();
    let renamed: Vec<PlSmallStr> =
        names.iter().map(|n| n.trim_start_matches('\u{feff}').trim().to_lowercase().replace(' ', "_").into()).collect();
    let mut bronze = staged;
    bronze.set_column_names(&renamed)?;
    let value = col("value").str().strip_chars(lit(NULL)).cast(DataType::Float64);
    let year = col("year").str().strip_chars(lit(NULL)).cast(DataType::Int32);
    let bad = col("value")
        .is_not_null()
        .and(value.clone().is_null())
        .or(col("year").is_not_null().and(year.clone().is_null()));
    let marked = bronze.lazy().with_column(bad.alias("_bad")).collect()?;
    let mask = marked.column("_bad")?.bool()?.clone();
    let quarantine = marked.filter(&mask)?;
    let mut bronze = marked
        .filter(&!&mask)?
        .lazy()
        .with_columns([value.alias("value"), year.alias("year")])
        .drop(cols(["_bad"]))
        .with_columns(prov("bronze"))
        .collect()?;
    write(&mut bronze, &format!("{out}/bronze/synthetic.parquet"))?;
    // silver: unit groups only, trimmed names, unique (row_id).
    let silver = bronze.lazy().filter(polars::sql::sql_expr("regexp_like(code, '^[0-9]{5}$')")?).collect()?;
    let silver = silver
        .lazy()
        .with_column(col("occupation_name").str().strip_chars(lit(NULL)).alias("occupation_name"))
        .collect()?;
    let mut silver = silver.lazy().filter(col("row_id").is_first_distinct()).with_columns(prov("silver")).collect()?;
    write(&mut silver, &format!("{out}/silver/synthetic.parquet"))?;
    // gold: total by code and year.
    let mut gold = silver
        .lazy()
        .group_by_stable([col("code"), col("year")])
        .agg([col("value").sum().alias("total_value"), len().alias("rows")])
        .with_columns(prov("gold"))
        .collect()?;
    write(&mut gold, &format!("{out}/gold/synthetic.parquet"))?;
    let mut quarantine = quarantine.lazy().select([col("*").cast(DataType::String)]).collect()?;
    write(&mut quarantine, &format!("{out}/quarantine/synthetic.parquet"))?;
    println!("gold rows: {}", gold.height());
    Ok(())
}
