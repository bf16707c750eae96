//! The parquet writer of the layers: Polars' page encoder, with the choice of dictionary
//! encoding for text made here. Polars estimates each text column's distinct values with a
//! HyperLogLog sketch (16,384 registers allocated and summed per column, however short) and
//! then builds the dictionary in a second pass; here a column of up to `EXACT_DICTIONARY_ROWS`
//! gets its dictionary in one exact pass, given up as soon as it would not pay (more distinct
//! values than three quarters of the rows of a column over 128 rows: Polars' own rule), and a
//! constant column (the provenance: text, numbers, dates and times) is written as its one value
//! and keys of zero, never repeated row by row. The pages of such a dictionary are made by
//! `dictionary_pages` where the layer has no statistics; every other column, and the file around
//! the pages, is Polars' own.
//!
//! A table's layers share most of their columns (bronze renames staged's; a gold that only
//! sorts rows already in order keeps silver's): a written file's pages are kept (`Encoded`) for
//! the table's next layer, which takes a column's pages from there when it writes the same
//! arrays again instead of encoding them a second time.

use super::text_ids::TextIds;
use polars::io::parquet::write::{BatchedWriter, ParquetCompression, ParquetWriter, StatisticsOptions};
use polars::prelude::*;
use polars_arrow::array::{
    Array, BooleanArray, DictionaryArray, MutableBinaryViewArray, PrimitiveArray, Utf8ViewArray,
};
use polars_arrow::bitmap::Bitmap;
use polars_arrow::datatypes::{ArrowDataType, IntegerType};
use polars_parquet::parquet::compression::Compression;
use polars_parquet::parquet::metadata::Descriptor;
use polars_parquet::parquet::page::{CompressedDictPage, DataPage, DataPageHeader, DictPage};
use polars_parquet::parquet::CowBuffer;
use polars_parquet::write::{
    array_to_columns, compress, get_dtype_encoding, CompressedDataPage, CompressedPage, CompressionOptions, Encoding,
    Page, ParquetType, Version, WriteOptions,
};
use rayon::prelude::*;
use std::io::Write;
use std::sync::Arc;

/// Frames smaller than this in memory are written uncompressed and without column statistics:
/// compressing them costs more time than their bytes do, and a reader reads them whole.
pub const COMPRESS_FROM_BYTES: usize = 8 << 20;

/// Rows per parquet row group.
pub const ROW_GROUP_ROWS: usize = 512 * 512;

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
            let columns = self.encode(&group, None)?;
            self.write_group(group.height(), &columns)?;
        }
        Ok(())
    }

    /// `write`, taking the pages of every column that `previous` (the table's layer before,
    /// written by this process) holds unchanged; returns this file's pages for the next layer.
    /// Only a frame of one row group is written so (and kept); a longer one is written by `write`.
    pub fn write_reusing(&mut self, df: &DataFrame, previous: Option<&Encoded>) -> PolarsResult<Encoded> {
        if df.height() == 0 || df.height() > ROW_GROUP_ROWS {
            self.write(df)?;
            return Ok(Encoded::default());
        }
        let columns = self.encode(df, previous)?;
        self.write_group(df.height(), &columns)?;
        Ok(Encoded { columns })
    }

    /// The uncompressed pages of each column of `group` (one row group), taken from `previous`
    /// where it holds them.
    fn encode(&self, group: &DataFrame, previous: Option<&Encoded>) -> PolarsResult<Vec<EncodedColumn>> {
        let options = self.options;
        let encode = |(column, field): (&Column, &ParquetType)| {
            let (array, identity) = as_arrow(column);
            let kept = previous.and_then(|p| p.find(identity.as_ref()?, field, options));
            let pages = match kept {
                Some(kept) => kept.pages.clone(),
                None => {
                    let leaves = column_pages(column, array.as_ref(), field, options)?;
                    Arc::new(leaves.into_iter().map(|leaf| leaf.into_iter().map(SharedPage::of).collect()).collect())
                }
            };
            let taken = kept.is_some();
            Ok(EncodedColumn { identity, _array: array, field: field.clone(), options, pages, taken })
        };
        let fields = &self.fields;
        // A small group is encoded on this thread: handing half its columns to another
        // worker costs more than it saves, and waits whenever that worker is busy.
        if group.height() < PARALLEL_FROM_ROWS {
            group.columns().iter().zip(fields).map(encode).collect()
        } else {
            polars_core::runtime::THREAD_POOL.install(|| group.columns().par_iter().zip(fields).map(encode).collect())
        }
    }

    /// Compresses `columns`' pages and writes them as a row group of `rows` (uncompressed, the
    /// pages' own bytes: the columns keep them, for the next layer).
    fn write_group(&mut self, rows: usize, columns: &[EncodedColumn]) -> PolarsResult<()> {
        let compression = self.options.compression;
        let mut pages: Vec<Vec<CompressedPage>> = Vec::new();
        for leaf in columns.iter().flat_map(|c| c.pages.iter()) {
            pages.push(leaf.iter().map(|page| page.compressed(compression)).collect::<PolarsResult<_>>()?);
        }
        self.file.write_row_group(rows as u64, &pages)
    }

    /// Writes the footer.
    pub fn finish(self) -> PolarsResult<()> {
        self.file.finish().map(|_| ())
    }
}

/// The pages a written file's columns were encoded into, kept for the table's next layer (see
/// the module's comment).
#[derive(Default)]
pub struct Encoded {
    columns: Vec<EncodedColumn>,
}

/// One column of a written file: what it was written from, as what, and its pages.
struct EncodedColumn {
    /// `None` for an array whose buffers are not told apart here: never taken again.
    identity: Option<Identity>,
    /// The array written, held so that its buffers cannot be freed and their memory given to
    /// another array while its identity is kept.
    _array: Box<dyn Array>,
    field: ParquetType,
    options: WriteOptions,
    /// Uncompressed, one list per parquet leaf; shared with the layer it was taken from.
    pages: Arc<Vec<Vec<SharedPage>>>,
    /// Whether the pages were taken from the layer before.
    taken: bool,
}

impl Encoded {
    /// How many columns took their pages from the layer before, of how many.
    pub fn taken(&self) -> (usize, usize) {
        (self.columns.iter().filter(|c| c.taken).count(), self.columns.len())
    }

    /// The column written from the same data (`identity`), as the same type and with the same
    /// options: its name may differ (the file's schema names a column, not its pages).
    fn find(&self, identity: &Identity, field: &ParquetType, options: WriteOptions) -> Option<&EncodedColumn> {
        self.columns
            .iter()
            .find(|c| c.identity.as_ref() == Some(identity) && same_type(&c.field, field) && c.options == options)
    }
}

/// Whether two leaves are the same type, whatever their names.
fn same_type(a: &ParquetType, b: &ParquetType) -> bool {
    match (a, b) {
        (ParquetType::PrimitiveType(a), ParquetType::PrimitiveType(b)) => {
            a.physical_type == b.physical_type
                && a.logical_type == b.logical_type
                && a.converted_type == b.converted_type
                && a.field_info.repetition == b.field_info.repetition
                && a.field_info.id == b.field_info.id
        }
        // Nested columns (lists from JSON sources) are encoded each time.
        _ => false,
    }
}

/// An uncompressed page as encoded, its bytes shared: the file it is written into, and the
/// table's next layer when it takes the column, use them without a copy. (Most pages are data
/// pages: boxing their header would only add an allocation to each.)
#[allow(clippy::large_enum_variant)]
enum SharedPage {
    Data { header: DataPageHeader, bytes: PrimitiveArray<u8>, descriptor: Descriptor, rows: usize },
    Dict { bytes: PrimitiveArray<u8>, values: usize, sorted: bool },
}

impl SharedPage {
    /// `page`, its bytes moved, not copied.
    fn of(page: Page) -> SharedPage {
        match page {
            Page::Data(mut p) => SharedPage::Data {
                bytes: PrimitiveArray::from_vec(std::mem::take(p.buffer_mut())),
                header: p.header().clone(),
                descriptor: p.descriptor.clone(),
                rows: p.num_rows().unwrap_or_default(),
            },
            Page::Dict(p) => SharedPage::Dict {
                values: p.num_values,
                sorted: p.is_sorted,
                bytes: PrimitiveArray::from_vec(p.buffer.into_vec()),
            },
        }
    }

    /// The page as written with `compression`; uncompressed, over the same bytes.
    fn compressed(&self, compression: CompressionOptions) -> PolarsResult<CompressedPage> {
        let (bytes, uncompressed) = match self {
            SharedPage::Data { bytes, .. } | SharedPage::Dict { bytes, .. } => {
                (CowBuffer::Borrowed(bytes.values().clone()), compression == CompressionOptions::Uncompressed)
            }
        };
        let len = bytes.len();
        Ok(match self {
            SharedPage::Data { header, descriptor, rows, .. } if uncompressed => {
                CompressedPage::Data(CompressedDataPage::new(
                    header.clone(),
                    bytes,
                    Compression::Uncompressed,
                    len,
                    descriptor.clone(),
                    *rows,
                ))
            }
            SharedPage::Dict { values, sorted, .. } if uncompressed => {
                CompressedPage::Dict(CompressedDictPage::new(bytes, Compression::Uncompressed, len, *values, *sorted))
            }
            SharedPage::Data { header, descriptor, rows, .. } => compress(
                Page::Data(DataPage::new(header.clone(), bytes, descriptor.clone(), *rows)),
                vec![],
                compression,
            )?,
            SharedPage::Dict { values, sorted, .. } => {
                compress(Page::Dict(DictPage::new(bytes, *values, *sorted)), vec![], compression)?
            }
        })
    }
}

/// What a column holds, told apart without reading its values: a constant column by its value
/// and length, an array by its type, length and the addresses of its buffers. Arrow buffers are
/// immutable and the array an identity was taken from is held with it (`EncodedColumn`), so the
/// same identity means the same values.
#[derive(Debug, PartialEq)]
enum Identity {
    Constant(DataType, AnyValue<'static>, usize),
    Array(ArrowDataType, usize, Vec<(usize, usize)>),
}

/// The arrow array a column is written from, and its identity when one can be told.
fn as_arrow(column: &Column) -> (Box<dyn Array>, Option<Identity>) {
    if let Column::Scalar(scalar) = column {
        // Text (the provenance) made directly: Polars makes a one-value series through its
        // builders of any value, and every layer writes several.
        let text = match scalar.scalar().value() {
            AnyValue::String(text) => Some(*text),
            AnyValue::StringOwned(text) => Some(text.as_str()),
            _ => None,
        };
        let one = match text {
            Some(text) if scalar.dtype() == &DataType::String && !scalar.is_empty() => {
                Utf8ViewArray::from_slice_values([text]).boxed()
            }
            _ => scalar.as_single_value_series().rechunk().to_arrow(0, CompatLevel::newest()),
        };
        let value = scalar.scalar().value().clone().into_static();
        return (one, Some(Identity::Constant(scalar.dtype().clone(), value, scalar.len())));
    }
    let array = column.as_materialized_series().rechunk().to_arrow(0, CompatLevel::newest());
    let identity = buffers(array.as_ref()).map(|b| Identity::Array(array.dtype().clone(), array.len(), b));
    (array, identity)
}

/// Where an array's buffers are (address and length, or offset, of each), for the arrays the
/// layers write: text, numbers, dates and times, booleans.
fn buffers(array: &dyn Array) -> Option<Vec<(usize, usize)>> {
    fn slice<T>(s: &[T]) -> (usize, usize) {
        (s.as_ptr() as usize, s.len())
    }
    fn bitmap(b: &Bitmap) -> [(usize, usize); 2] {
        let (bytes, offset, len) = b.as_slice();
        [(bytes.as_ptr() as usize, offset), (len, 0)]
    }
    let any = array.as_any();
    let mut out = Vec::new();
    if let Some(a) = any.downcast_ref::<Utf8ViewArray>() {
        out.push(slice(a.views()));
        out.extend(a.data_buffers().iter().map(|b| slice(b)));
    } else if let Some(a) = any.downcast_ref::<BooleanArray>() {
        out.extend(bitmap(a.values()));
    } else {
        macro_rules! primitive {
            ($($t:ty),*) => {
                $(if let Some(a) = any.downcast_ref::<PrimitiveArray<$t>>() { out.push(slice(a.values())) } else)*
                { return None }
            };
        }
        primitive!(i8, i16, i32, i64, u8, u16, u32, u64, f32, f64);
    }
    match array.validity() {
        Some(v) => out.extend(bitmap(v)),
        None => out.push((0, 0)),
    }
    Some(out)
}

/// The uncompressed pages of one column (as the arrow `array`) of a row group, one list per
/// parquet leaf.
fn column_pages(
    column: &Column,
    array: &dyn Array,
    field: &ParquetType,
    options: WriteOptions,
) -> PolarsResult<Vec<Vec<Page>>> {
    let (array, encodings) = encode_as(column, array)?;
    if let Some(dictionary) = array.as_any().downcast_ref::<DictionaryArray<u32>>() {
        if let Some(pages) = super::dictionary_pages::pages(dictionary, field, options) {
            return Ok(vec![pages?]);
        }
    }
    let leaves = array_to_columns(array, field.clone(), options, &encodings)?;
    leaves.into_iter().map(|pages| pages.collect()).collect()
}

/// The array a column is written from and its leaves' encodings: a text column as a dictionary
/// when it pays (see the module's comment), anything else as Polars writes it.
fn encode_as(column: &Column, array: &dyn Array) -> PolarsResult<(Box<dyn Array>, Vec<Encoding>)> {
    if let Column::Scalar(scalar) = column {
        // A constant: its one value and keys of zero (Polars' shared zeroes where they suffice,
        // nothing allocated), never its value repeated row by row. Text, numbers, dates and
        // times; anything else (a boolean, a list) is written as Polars writes it.
        let one_value = |a: &dyn Array| a.len() == 1 && a.null_count() == 0;
        let constant = array.as_any().is::<Utf8ViewArray>()
            || matches!(
                array.dtype().to_physical_type(),
                polars_arrow::datatypes::PhysicalType::Primitive(
                    polars_arrow::types::PrimitiveType::Int32
                        | polars_arrow::types::PrimitiveType::Int64
                        | polars_arrow::types::PrimitiveType::Float32
                        | polars_arrow::types::PrimitiveType::Float64
                )
            );
        if constant && one_value(array) && !scalar.is_empty() {
            let zeroes = polars_buffer::Buffer::zeroed(scalar.len());
            let keys = PrimitiveArray::new(ArrowDataType::UInt32, zeroes, None);
            return Ok((Box::new(dictionary_array(keys, array.to_boxed())?), vec![Encoding::RleDictionary]));
        }
    }
    let array = match column {
        Column::Scalar(_) => column.as_materialized_series().rechunk().to_arrow(0, CompatLevel::newest()),
        _ => array.to_boxed(),
    };
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
    let mut ids = TextIds::with_capacity(len.min(1024));
    let mut keys = Vec::with_capacity(len);
    let validity = text.validity();
    for i in 0..len {
        if validity.is_some_and(|v| !v.get_bit(i)) {
            keys.push(0);
            continue;
        }
        keys.push(ids.id(text, i));
        if ids.distinct().len() > most {
            return Ok(None);
        }
    }
    let mut values = MutableBinaryViewArray::<str>::with_capacity(ids.distinct().len());
    for value in ids.distinct() {
        values.push_value(*value);
    }
    let keys = PrimitiveArray::new(ArrowDataType::UInt32, keys.into(), validity.cloned());
    dictionary_array(keys, values.freeze().boxed()).map(Some)
}

/// The dictionary array of `keys` into `values`, keys made here: each below `values.len()`, a
/// null's (zero) too whenever there are values. Polars' check of every key is not repeated.
fn dictionary_array(keys: PrimitiveArray<u32>, values: Box<dyn Array>) -> PolarsResult<DictionaryArray<u32>> {
    let dtype = ArrowDataType::Dictionary(IntegerType::UInt32, Box::new(values.dtype().clone()), false);
    if values.is_empty() {
        // Keys of nulls only (Polars checks none).
        return DictionaryArray::try_new(dtype, keys, values);
    }
    debug_assert!(keys.values().iter().all(|&k| (k as usize) < values.len()));
    // SAFETY: every key is below `values.len()` (above: the keys of a constant are zero, of
    // `dictionary` the numbers `TextIds` gave its distinct values, or zero).
    unsafe { DictionaryArray::try_new_unchecked(dtype, keys, values) }
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

    /// Writes `df` through a layer writer taking what it can from `previous`; returns the bytes
    /// and the pages kept.
    fn written_reusing(df: &DataFrame, previous: Option<&Encoded>) -> (Vec<u8>, Encoded) {
        let mut out = Vec::new();
        let mut writer = LayerWriter::new(&mut out, df.schema(), true).expect("writer");
        let encoded = writer.write_reusing(df, previous).expect("write");
        writer.finish().expect("finish");
        (out, encoded)
    }

    #[test]
    fn a_layer_takes_the_pages_of_the_columns_it_keeps_and_writes_the_same_bytes() {
        let n = 300;
        let constant = |value: &str| {
            Column::new_scalar(
                "_batch_id".into(),
                Scalar::new(DataType::String, AnyValue::StringOwned(value.into())),
                n,
            )
        };
        let staged = DataFrame::new_infer_height(vec![
            Column::new("code".into(), (0..n).map(|i| format!("c{}", i % 40)).collect::<Vec<_>>()),
            Column::new("text".into(), (0..n).map(|i| Some(format!("t{i}")).filter(|_| i % 9 > 0)).collect::<Vec<_>>()),
            Column::new("n".into(), (0..n as i64).collect::<Vec<_>>()),
            Column::new("flag".into(), (0..n).map(|i| i % 3 == 0).collect::<Vec<_>>()),
            constant("run 1"),
        ])
        .expect("frame");
        let (_, encoded) = written_reusing(&staged, None);
        assert_eq!(encoded.taken(), (0, 5));
        // Renamed, one column computed anew, one copied (same values, other buffers), the constant
        // kept, and a column that is the same numbers as another type.
        let mut next = staged.clone();
        next.rename("code", "unit_group_id".into()).expect("rename");
        next.with_column(Column::new("text".into(), (0..n).map(|i| format!("u{i}")).collect::<Vec<_>>()))
            .expect("text");
        let copied: Vec<bool> = (0..n).map(|i| i % 3 == 0).collect();
        next.with_column(Column::new("flag".into(), copied)).expect("flag");
        let as_time = staged.column("n").unwrap().cast(&DataType::Datetime(TimeUnit::Microseconds, None)).unwrap();
        next.with_column(as_time.with_name("at".into())).expect("at");
        let (reused, kept) = written_reusing(&next, Some(&encoded));
        assert_eq!(kept.taken(), (3, 6), "code, n and the constant");
        assert_eq!(reused, written(&next, true), "the same bytes as encoding every column");
        let back = ParquetReader::new(std::io::Cursor::new(reused)).finish().expect("read back");
        assert!(back.equals_missing(&next));
        // Another constant is not the same column.
        let mut other = staged.clone();
        other.with_column(constant("run 2")).expect("constant");
        assert_eq!(written_reusing(&other, Some(&encoded)).1.taken(), (4, 5));
    }

    #[test]
    fn constants_of_every_kind_read_back_the_same() {
        let n = 1000;
        let constant = |name: &str, dtype: DataType, value: AnyValue<'static>| {
            Column::new_scalar(name.into(), Scalar::new(dtype, value), n)
        };
        let utc = Some(polars::prelude::TimeZone::UTC);
        let df = DataFrame::new_infer_height(vec![
            Column::new("n".into(), (0..n as i64).collect::<Vec<_>>()),
            constant("text", DataType::String, AnyValue::StringOwned("gold".into())),
            constant(
                "at",
                DataType::Datetime(TimeUnit::Microseconds, None),
                AnyValue::Datetime(1_700_000_000_000_000, TimeUnit::Microseconds, None),
            ),
            constant(
                "at_utc",
                DataType::Datetime(TimeUnit::Nanoseconds, utc.clone()),
                AnyValue::DatetimeOwned(1_700_000_000_000_000_123, TimeUnit::Nanoseconds, utc.map(Arc::new)),
            ),
            constant("day", DataType::Date, AnyValue::Date(19_000)),
            constant("big", DataType::Int64, AnyValue::Int64(-7)),
            constant("small", DataType::Int32, AnyValue::Int32(42)),
            constant("ratio", DataType::Float64, AnyValue::Float64(0.25)),
            constant("flag", DataType::Boolean, AnyValue::Boolean(true)),
            constant("nothing", DataType::String, AnyValue::Null),
            constant("no_number", DataType::Int64, AnyValue::Null),
        ])
        .expect("frame");
        for small in [true, false] {
            let bytes = written(&df, small);
            let back = ParquetReader::new(std::io::Cursor::new(bytes.clone())).finish().expect("read back");
            assert_eq!(back.schema(), df.schema(), "small: {small}");
            assert!(back.equals_missing(&df), "small: {small}\n{back}\n{df}");
            // Every constant but the boolean is one dictionary value and keys.
            let dictionaries = dictionary_encoded(&bytes);
            assert!(dictionaries[1..8].iter().all(|d| *d), "small: {small}: {dictionaries:?}");
        }
    }

    #[test]
    fn short_and_long_values_share_one_dictionary_in_order_of_first_appearance() {
        let values = ["ab", "a value longer than twelve bytes", "", "ab", "a value longer than twelve bytes!"];
        let text: Vec<Option<&str>> = (0..200).map(|i| Some(values[i % 5]).filter(|_| i % 7 != 3)).collect();
        let array = Utf8ViewArray::from_slice(&text);
        let dict = dictionary(&array).expect("dictionary").expect("repeats: a dictionary");
        let distinct: Vec<Option<&str>> =
            dict.values().as_any().downcast_ref::<Utf8ViewArray>().unwrap().iter().collect();
        assert_eq!(distinct, [Some("ab"), Some(values[1]), Some(""), Some(values[4])]);
        let keys: Vec<Option<u32>> = dict.keys().iter().map(|k| k.copied()).collect();
        let expected: Vec<Option<u32>> =
            (0..200).map(|i| Some([0, 1, 2, 0, 3][i % 5]).filter(|_| i % 7 != 3)).collect();
        assert_eq!(keys, expected);
        let df = DataFrame::new_infer_height(vec![Column::new("t".into(), text)]).expect("frame");
        let back = ParquetReader::new(std::io::Cursor::new(written(&df, true))).finish().expect("read back");
        assert!(back.equals_missing(&df));
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
