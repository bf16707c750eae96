//! The parquet writer of the layers: Polars' page encoder, with the choice of dictionary
//! encoding for text made here. Polars estimates each text column's distinct values with a
//! HyperLogLog sketch (16,384 registers allocated and summed per column, however short) and
//! then builds the dictionary in a second pass; here a column of up to `EXACT_DICTIONARY_ROWS`
//! gets its dictionary in one exact pass, given up as soon as it would not pay (more distinct
//! values than three quarters of the rows of a column over 128 rows: Polars' own rule), and a
//! constant column (the provenance) is written as its one value and keys of zero, never
//! repeated row by row. Every other column, and the file around the pages, is Polars' own.

use polars::io::parquet::write::{BatchedWriter, ParquetCompression, ParquetWriter, StatisticsOptions};
use polars::prelude::*;
use polars_arrow::array::{Array, DictionaryArray, MutableBinaryViewArray, PrimitiveArray, Utf8ViewArray};
use polars_arrow::datatypes::{ArrowDataType, IntegerType};
use polars_parquet::write::{
    array_to_columns, compress, get_dtype_encoding, CompressedPage, Encoding, ParquetType, Version, WriteOptions,
};
use rayon::prelude::*;
use std::io::Write;

/// Frames smaller than this in memory are written uncompressed and without column statistics:
/// compressing them costs more time than their bytes do, and a reader reads them whole.
pub const COMPRESS_FROM_BYTES: usize = 8 << 20;

/// Rows per parquet row group.
const ROW_GROUP_ROWS: usize = 512 * 512;

/// Text columns of at most this many rows get their dictionary here (see the module's comment);
/// longer ones as Polars decides.
const EXACT_DICTIONARY_ROWS: usize = 64 * 1024;

/// Row groups of at least this many rows have their columns encoded in parallel.
const PARALLEL_FROM_ROWS: usize = 64 * 1024;

/// A parquet file being written a row group at a time.
pub struct LayerWriter<W: Write> {
    file: BatchedWriter<W>,
    /// The parquet type of each column, in the frame's order.
    fields: Vec<ParquetType>,
    options: WriteOptions,
}

impl<W: Write> LayerWriter<W> {
    /// A writer of frames with `schema` into `out`: a `small` one (see `COMPRESS_FROM_BYTES`)
    /// uncompressed and without column statistics (nothing to skip in a file read whole), else
    /// zstd with statistics.
    pub fn new(out: W, schema: &Schema, small: bool) -> PolarsResult<LayerWriter<W>> {
        let (compression, statistics) = if small {
            let none =
                StatisticsOptions { min_value: false, max_value: false, null_count: false, ..Default::default() };
            (ParquetCompression::Uncompressed, none)
        } else {
            (ParquetCompression::Zstd(None), StatisticsOptions::default())
        };
        let mut file =
            ParquetWriter::new(out).with_compression(compression).with_statistics(statistics).batched(schema)?;
        let fields = file.parquet_schema().fields().to_vec();
        let options =
            WriteOptions { statistics, version: Version::V1, compression: compression.into(), data_page_size: None };
        Ok(LayerWriter { file, fields, options })
    }

    /// Writes `df` (of the writer's schema), a row group of at most `ROW_GROUP_ROWS` at a time,
    /// the columns of a group of `PARALLEL_FROM_ROWS` or more encoded in parallel.
    pub fn write(&mut self, df: &DataFrame) -> PolarsResult<()> {
        let mut offset = 0;
        while offset < df.height() {
            let group = df.slice(offset as i64, ROW_GROUP_ROWS);
            offset += group.height();
            let (fields, options) = (&self.fields, self.options);
            let encode = |(column, field): (&Column, &ParquetType)| column_pages(column, field, options);
            // A small group is encoded on this thread: handing half its columns to another
            // worker costs more than it saves, and waits whenever that worker is busy.
            let pages = if group.height() < PARALLEL_FROM_ROWS {
                group.columns().iter().zip(fields).map(encode).collect::<PolarsResult<Vec<_>>>()
            } else {
                polars_core::runtime::THREAD_POOL
                    .install(|| group.columns().par_iter().zip(fields).map(encode).collect::<PolarsResult<Vec<_>>>())
            }?;
            let pages: Vec<Vec<CompressedPage>> = pages.into_iter().flatten().collect();
            self.file.write_row_group(group.height() as u64, &pages)?;
        }
        Ok(())
    }

    /// Writes the footer.
    pub fn finish(self) -> PolarsResult<()> {
        self.file.finish().map(|_| ())
    }
}

/// The compressed pages of one column of a row group, one list per parquet leaf.
fn column_pages(column: &Column, field: &ParquetType, options: WriteOptions) -> PolarsResult<Vec<Vec<CompressedPage>>> {
    let (array, encodings) = encode_as(column)?;
    let leaves = array_to_columns(array, field.clone(), options, &encodings)?;
    leaves
        .into_iter()
        .map(|pages| pages.map(|page| Ok(compress(page?, vec![], options.compression)?)).collect())
        .collect()
}

/// The array a column is written from and its leaves' encodings: a text column as a dictionary
/// when it pays (see the module's comment), anything else as Polars writes it.
fn encode_as(column: &Column) -> PolarsResult<(Box<dyn Array>, Vec<Encoding>)> {
    if let Column::Scalar(scalar) = column {
        if let (DataType::String, AnyValue::String(_) | AnyValue::StringOwned(_)) =
            (scalar.dtype(), scalar.scalar().value())
        {
            let one = scalar.as_single_value_series().rechunk().to_arrow(0, CompatLevel::newest());
            if let Some(one) = one.as_any().downcast_ref::<Utf8ViewArray>() {
                let keys = PrimitiveArray::new(ArrowDataType::UInt32, vec![0u32; scalar.len()].into(), None);
                return Ok((Box::new(dictionary_array(keys, one.clone())?), vec![Encoding::RleDictionary]));
            }
        }
    }
    let array = column.as_materialized_series().rechunk().to_arrow(0, CompatLevel::newest());
    if let Some(text) = array.as_any().downcast_ref::<Utf8ViewArray>() {
        // A long column is left to Polars, whose sketch costs little there and which gives up
        // on mostly distinct values without building anything.
        if !text.is_empty() && text.len() <= EXACT_DICTIONARY_ROWS {
            return Ok(match dictionary(text)? {
                Some(dict) => (Box::new(dict), vec![Encoding::RleDictionary]),
                None => (array, vec![Encoding::Plain]),
            });
        }
    }
    let encodings = get_dtype_encoding(array.dtype());
    Ok((array, encodings))
}

/// `text` as a dictionary of its distinct values in order of first appearance, or `None` when
/// more than three quarters of the values of a column over 128 rows are distinct (stops there).
fn dictionary(text: &Utf8ViewArray) -> PolarsResult<Option<DictionaryArray<u32>>> {
    let len = text.len();
    let most = if len > 128 { len * 3 / 4 } else { len };
    let mut index: PlHashMap<&str, u32> = PlHashMap::with_capacity(len.min(1024));
    let mut values = MutableBinaryViewArray::<str>::with_capacity(len.min(1024));
    let mut keys = Vec::with_capacity(len);
    for value in text.iter() {
        let key = match value {
            None => 0,
            Some(value) => {
                let next = index.len() as u32;
                let key = *index.entry(value).or_insert_with(|| {
                    values.push_value(value);
                    next
                });
                if index.len() > most {
                    return Ok(None);
                }
                key
            }
        };
        keys.push(key);
    }
    let keys = PrimitiveArray::new(ArrowDataType::UInt32, keys.into(), text.validity().cloned());
    dictionary_array(keys, values.freeze()).map(Some)
}

/// The dictionary array of `keys` into `values`.
fn dictionary_array(keys: PrimitiveArray<u32>, values: Utf8ViewArray) -> PolarsResult<DictionaryArray<u32>> {
    let dtype = ArrowDataType::Dictionary(IntegerType::UInt32, Box::new(values.dtype().clone()), false);
    DictionaryArray::try_new(dtype, keys, values.boxed())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Writes `df` through a layer writer (`small` or not); returns the bytes.
    fn written(df: &DataFrame, small: bool) -> Vec<u8> {
        let mut out = Vec::new();
        let mut writer = LayerWriter::new(&mut out, df.schema(), small).expect("writer");
        writer.write(df).expect("write");
        writer.finish().expect("finish");
        out
    }

    /// Whether each column of the first row group was written with a dictionary page.
    fn dictionary_encoded(bytes: &[u8]) -> Vec<bool> {
        let meta = polars_parquet::read::read_metadata(&mut std::io::Cursor::new(bytes)).expect("metadata");
        meta.row_groups[0].parquet_columns().iter().map(|c| c.dictionary_page_offset().is_some()).collect()
    }

    #[test]
    fn text_is_a_dictionary_when_it_repeats_and_reads_back_the_same() {
        let n = 1000;
        let repeated: Vec<Option<String>> =
            (0..n).map(|i| if i % 7 == 0 { None } else { Some(format!("code {}", i % 5)) }).collect();
        let unique: Vec<String> = (0..n).map(|i| format!("a value long enough to be out of line {i}")).collect();
        // Three quarters distinct is still a dictionary; one more distinct value is not.
        let at_limit: Vec<String> = (0..n).map(|i| format!("v{}", i % 750)).collect();
        let over_limit: Vec<String> = (0..n).map(|i| format!("v{}", i % 751)).collect();
        let none: Vec<Option<String>> = vec![None; n];
        let mut df = DataFrame::new_infer_height(vec![
            Column::new("repeated".into(), repeated),
            Column::new("unique".into(), unique),
            Column::new("at_limit".into(), at_limit),
            Column::new("over_limit".into(), over_limit),
            Column::new("number".into(), (0..n as i64).collect::<Vec<_>>()),
            Column::new("none".into(), none),
        ])
        .expect("frame");
        let constant = Scalar::new(DataType::String, AnyValue::StringOwned("run 1".into()));
        df.with_column(Column::new_scalar("_batch_id".into(), constant, n)).expect("constant");
        for small in [true, false] {
            let bytes = written(&df, small);
            // (Numbers are encoded as Polars decides.)
            let text: Vec<bool> =
                dictionary_encoded(&bytes).into_iter().enumerate().filter(|(i, _)| *i != 4).map(|(_, d)| d).collect();
            assert_eq!(text, [true, false, true, false, true, true], "small: {small}");
            let back = ParquetReader::new(std::io::Cursor::new(bytes)).finish().expect("read back");
            assert!(back.equals_missing(&df), "small: {small}\n{back}\n{df}");
        }
    }

    #[test]
    fn long_text_is_left_to_polars_and_reads_back_the_same() {
        let n = EXACT_DICTIONARY_ROWS + 1;
        let repeated: Vec<String> = (0..n).map(|i| format!("code {}", i % 50)).collect();
        let unique: Vec<String> = (0..n).map(|i| format!("row {i}")).collect();
        let df = DataFrame::new_infer_height(vec![
            Column::new("repeated".into(), repeated),
            Column::new("unique".into(), unique),
        ])
        .expect("frame");
        let bytes = written(&df, true);
        assert_eq!(dictionary_encoded(&bytes), [true, false]);
        let back = ParquetReader::new(std::io::Cursor::new(bytes)).finish().expect("read back");
        assert!(back.equals_missing(&df));
    }

    #[test]
    fn empty_and_short_frames_read_back_the_same() {
        for n in [0usize, 1, 100] {
            let unique: Vec<String> = (0..n).map(|i| format!("u{i}")).collect();
            let df = DataFrame::new_infer_height(vec![Column::new("unique".into(), unique)]).expect("frame");
            let bytes = written(&df, true);
            if n > 0 {
                // At most 128 rows, text is always a dictionary (as Polars writes it).
                assert_eq!(dictionary_encoded(&bytes), [true]);
            }
            let back = ParquetReader::new(std::io::Cursor::new(bytes)).finish().expect("read back");
            assert!(back.equals_missing(&df), "{n} rows\n{back}");
        }
    }
}
