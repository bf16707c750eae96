//! The pages of a column written as a dictionary (`exec::parquet`: text, or a constant number,
//! date or time), made here rather than by Polars' page encoder for a layer without statistics:
//! the dictionary page (the values plain: a text's length and bytes, a number's 4 or 8 bytes)
//! and one data page of the definition levels and the keys, run-length or
//! bit-packed in Polars' hybrid encoding, byte for byte what its encoder writes (`tests`
//! compares the two), without the 32 KiB buffer it clears for every page nor its iterators.

use polars::prelude::PolarsResult;
use polars_arrow::array::{Array, DictionaryArray, PrimitiveArray, Utf8ViewArray};
use polars_parquet::parquet::encoding::{bitpacked, uleb128, Encoding};
use polars_parquet::parquet::metadata::Descriptor;
use polars_parquet::parquet::page::{DataPage, DataPageHeader, DataPageHeaderV1, DictPage, Page};
use polars_parquet::parquet::schema::types::{ParquetType, PrimitiveType};
use polars_parquet::parquet::schema::Repetition;
use polars_parquet::parquet::CowBuffer;
use polars_parquet::write::{write_def_levels, Version, WriteOptions};

/// Rows a data page holds at most: Polars starts another page past 1 MiB of keys.
const ONE_PAGE_ROWS: usize = 200_000;

/// The pages of `array`, or `None` where Polars' encoder writes them (statistics asked for, a
/// version 2 page, a column of no rows or of more than one page, a field that is not a plain
/// value).
pub fn pages(
    array: &DictionaryArray<u32>,
    field: &ParquetType,
    options: WriteOptions,
) -> Option<PolarsResult<Vec<Page>>> {
    let ParquetType::PrimitiveType(ptype) = field else { return None };
    if options.has_statistics() || options.version != Version::V1 || array.is_empty() || array.len() > ONE_PAGE_ROWS {
        return None;
    }
    if array.values().validity().is_some() {
        return None;
    }
    let dictionary = plain(array.values().as_ref())?;
    Some(encode(array, dictionary, ptype))
}

/// The dictionary page's bytes: the values plain encoded, text (each value's length and
/// bytes) or numbers of 4 or 8 bytes, stored as they are held (dates and times included);
/// `None` for any other array.
fn plain(values: &dyn Array) -> Option<Vec<u8>> {
    fn numbers<T: polars_arrow::types::NativeType>(values: &dyn Array) -> Option<Vec<u8>> {
        let values = values.as_any().downcast_ref::<PrimitiveArray<T>>()?;
        let mut bytes = Vec::with_capacity(std::mem::size_of_val(values.values().as_slice()));
        for v in values.values().iter() {
            bytes.extend_from_slice(v.to_le_bytes().as_ref());
        }
        Some(bytes)
    }
    if let Some(text) = values.as_any().downcast_ref::<Utf8ViewArray>() {
        let mut dictionary = Vec::with_capacity(text.total_bytes_len() + 4 * text.len());
        for v in text.values_iter() {
            dictionary.extend_from_slice(&(v.len() as u32).to_le_bytes());
            dictionary.extend_from_slice(v.as_bytes());
        }
        return Some(dictionary);
    }
    numbers::<i32>(values)
        .or_else(|| numbers::<i64>(values))
        .or_else(|| numbers::<f32>(values))
        .or_else(|| numbers::<f64>(values))
}

fn encode(array: &DictionaryArray<u32>, dictionary: Vec<u8>, ptype: &PrimitiveType) -> PolarsResult<Vec<Page>> {
    let dict = DictPage::new(CowBuffer::Owned(dictionary), array.values().len(), false);

    // A validity without a null is none (as Polars' slice of the array leaves it).
    let validity = array.keys().validity().filter(|v| v.unset_bits() > 0);
    let optional = ptype.field_info.repetition == Repetition::Optional;
    let mut buffer = Vec::with_capacity(array.len() / 2 + 16);
    write_def_levels(&mut buffer, optional, validity, array.len(), Version::V1)?;
    let keys = array.keys().values();
    let present: Vec<u32>;
    let keys: &[u32] = match validity {
        Some(v) => {
            present = keys.iter().zip(v.iter()).filter(|(_, valid)| *valid).map(|(k, _)| *k).collect();
            &present
        }
        None => keys,
    };
    let bits = 32 - keys.iter().copied().max().unwrap_or(0).leading_zeros();
    buffer.push(bits as u8);
    hybrid(&mut buffer, keys, bits as usize);
    let header = DataPageHeader::V1(DataPageHeaderV1 {
        num_values: array.len() as i32,
        encoding: Encoding::RleDictionary.into(),
        definition_level_encoding: Encoding::Rle.into(),
        repetition_level_encoding: Encoding::Rle.into(),
        statistics: None,
    });
    let descriptor = Descriptor { primitive_type: ptype.clone(), max_def_level: 0, max_rep_level: 0 };
    let data = DataPage::new(header, CowBuffer::Owned(buffer), descriptor, array.len());
    Ok(vec![Page::Dict(dict), Page::Data(data)])
}

/// Values a literal run holds at most (Polars' own bound).
const MOST_LITERALS: usize = 8 * 1024;

/// Writes `values` in the hybrid encoding exactly as Polars' encoder decides its runs: a value
/// repeated more than 8 times is a run-length run, the values between are bit-packed in groups
/// of 8 (a literal run padded to 8 with the repeats that follow it), at most `MOST_LITERALS` to
/// a literal run.
fn hybrid(out: &mut Vec<u8>, values: &[u32], bits: usize) {
    // The literals not yet written start at `base`: Polars copies them to a buffer, whose
    // first `buffered` entries are always `values[base..]`.
    let (mut repeats, mut previous, mut buffered, mut literals, mut base) = (0usize, 0u32, 0usize, 0usize, 0usize);
    let mut at = 0;
    while at < values.len() {
        let value = values[at];
        if value == previous {
            repeats += 1;
            if repeats > 8 {
                // Within a run (all of a constant's keys after the eighth): on to its end, where
                // a value repeated counts and nothing else.
                let more = leading(&values[at + 1..], previous);
                repeats += more;
                at += 1 + more;
                continue;
            }
            if repeats == 8 {
                let padding = (8 - literals % 8) % 8;
                repeats -= padding;
                literals += padding;
            }
        } else if repeats > 8 {
            if literals > 0 {
                bit_packed(out, &values[base..base + literals], bits);
                literals = 0;
            }
            run(out, repeats, previous, bits);
            repeats = 1;
            buffered = 0;
            base = at;
        } else {
            literals = buffered;
            repeats = 1;
        }
        if buffered == MOST_LITERALS {
            bit_packed(out, &values[base..base + buffered], bits);
            repeats = 1;
            buffered = 0;
            literals = 0;
            base = at;
        }
        previous = value;
        buffered += 1;
        at += 1;
    }
    if repeats <= 8 {
        literals = buffered;
    }
    if literals > 0 {
        bit_packed(out, &values[base..base + literals], bits);
    }
    if repeats > 8 {
        run(out, repeats, previous, bits);
    }
}

/// How many of `values` from the first are `value`: 16 at a time, compared without a branch
/// each, then one at a time.
fn leading(values: &[u32], value: u32) -> usize {
    let mut n = 0;
    for block in values.chunks_exact(16) {
        if !block.iter().fold(true, |same, &v| same & (v == value)) {
            break;
        }
        n += 16;
    }
    n + values[n..].iter().take_while(|&&v| v == value).count()
}

/// A run of `length` times `value`.
fn run(out: &mut Vec<u8>, length: usize, value: u32, bits: usize) {
    let mut header = [0u8; 10];
    let n = uleb128::encode((length as u64) << 1, &mut header);
    out.extend_from_slice(&header[..n]);
    out.extend_from_slice(&value.to_le_bytes()[..bits.div_ceil(8)]);
}

/// `values` bit-packed 32 at a time; the last group's padding to 8 values holds what Polars'
/// buffer held there (the group before's values, or zeros), so that the bytes are its bytes.
fn bit_packed(out: &mut Vec<u8>, values: &[u32], bits: usize) {
    let mut header = [0u8; 10];
    let n = uleb128::encode(((values.len().div_ceil(8) as u64) << 1) | 1, &mut header);
    out.extend_from_slice(&header[..n]);
    let mut group = [0u32; 32];
    let mut packed = [0u8; 128];
    let mut chunks = values.chunks_exact(32);
    for chunk in chunks.by_ref() {
        group.copy_from_slice(chunk);
        bitpacked::encode_pack::<u32>(&group, bits, &mut packed);
        out.extend_from_slice(&packed[..4 * bits]);
    }
    let rest = chunks.remainder();
    if !rest.is_empty() {
        group[..rest.len()].copy_from_slice(rest);
        packed = [0u8; 128];
        bitpacked::encode_pack::<u32>(&group, bits, &mut packed);
        out.extend_from_slice(&packed[..rest.len().div_ceil(8) * bits]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use polars_arrow::array::PrimitiveArray;
    use polars_arrow::bitmap::Bitmap;
    use polars_arrow::datatypes::{ArrowDataType, IntegerType};
    use polars_parquet::write::{array_to_columns, to_parquet_type, CompressionOptions, StatisticsOptions};

    fn options() -> WriteOptions {
        WriteOptions {
            statistics: StatisticsOptions::empty(),
            version: Version::V1,
            compression: CompressionOptions::Uncompressed,
            data_page_size: None,
        }
    }

    /// A dictionary array of `keys` over `n` distinct values, nulls where `valid` says.
    fn array(keys: Vec<u32>, n: usize, valid: Option<Vec<bool>>) -> DictionaryArray<u32> {
        let values: Vec<String> = (0..n).map(|i| format!("value {i}{}", "x".repeat(i % 17))).collect();
        let values = Utf8ViewArray::from_slice_values(&values);
        let validity = valid.map(Bitmap::from);
        let keys = PrimitiveArray::new(ArrowDataType::UInt32, keys.into(), validity);
        let dtype = ArrowDataType::Dictionary(IntegerType::UInt32, Box::new(values.dtype().clone()), false);
        DictionaryArray::try_new(dtype, keys, values.boxed()).unwrap()
    }

    /// The pages Polars' own encoder writes for `a` as `ptype`.
    fn polars_pages(a: &DictionaryArray<u32>, ptype: &ParquetType) -> Vec<Page> {
        array_to_columns(a.to_boxed(), ptype.clone(), options(), &[Encoding::RleDictionary])
            .unwrap()
            .remove(0)
            .collect::<PolarsResult<_>>()
            .unwrap()
    }

    fn bytes(pages: &[Page]) -> Vec<(Vec<u8>, usize)> {
        pages
            .iter()
            .map(|p| match p {
                Page::Dict(d) => (d.buffer.to_vec(), d.num_values),
                Page::Data(d) => (d.buffer().to_vec(), d.num_values()),
            })
            .collect()
    }

    #[test]
    fn pages_of_numbers_dates_and_times_are_the_bytes_polars_writes() {
        let i64s = PrimitiveArray::<i64>::from_vec(vec![-3, 1_700_000_000_000_000, 7]);
        let valueses: Vec<Box<dyn Array>> = vec![
            PrimitiveArray::<i32>::from_vec(vec![19_000, -1, 5]).boxed(),
            PrimitiveArray::<i32>::from_vec(vec![19_000, -1, 5]).to(ArrowDataType::Date32).boxed(),
            i64s.clone().boxed(),
            i64s.to(ArrowDataType::Timestamp(polars_arrow::datatypes::TimeUnit::Microsecond, None)).boxed(),
            PrimitiveArray::<f32>::from_vec(vec![0.5, -2.25, 1e10]).boxed(),
            PrimitiveArray::<f64>::from_vec(vec![0.1, f64::MAX, -0.0]).boxed(),
        ];
        for values in valueses {
            for (keys, valid) in [
                (vec![0u32; 500], None),
                (vec![2u32; 3], None),
                (
                    (0..300).map(|i| (i / 7 % 3) as u32).collect(),
                    Some((0..300).map(|i| i % 11 != 4).collect::<Vec<_>>()),
                ),
            ] {
                let keys = PrimitiveArray::new(ArrowDataType::UInt32, keys.into(), valid.map(Bitmap::from));
                let dtype = ArrowDataType::Dictionary(IntegerType::UInt32, Box::new(values.dtype().clone()), false);
                let a = DictionaryArray::try_new(dtype, keys, values.clone()).unwrap();
                let field = polars_arrow::datatypes::Field::new("n".into(), values.dtype().clone(), true);
                let ptype = to_parquet_type(&field).unwrap();
                let ours = pages(&a, &ptype, options()).expect("numbers are written here").unwrap();
                let theirs = polars_pages(&a, &ptype);
                assert_eq!(bytes(&ours), bytes(&theirs), "{:?}, {} rows", values.dtype(), a.len());
            }
        }
    }

    #[test]
    fn pages_are_the_bytes_polars_writes() {
        let mut state: u64 = 0x2545_F491_4F6C_DD1D;
        let mut next = |n: u64| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state % n) as u32
        };
        // Constants (one value, or one key of several values), at and around 8 rows.
        let mut cases: Vec<(Vec<u32>, usize)> = vec![(vec![0; 1000], 1), (vec![], 1), (vec![0, 1, 2], 3)];
        for len in [1, 8, 9, 17] {
            cases.extend([(vec![0; len], 1), (vec![2; len], 3)]);
        }
        for len in [1, 7, 8, 9, 31, 33, 100, 1000, 9000, 20_000] {
            for distinct in [1u64, 2, 3, 50, 700, 70_000] {
                // Runs of random length, so that some repeat more than 8 times.
                let mut keys = Vec::with_capacity(len);
                while keys.len() < len {
                    let long = next(3) == 0;
                    let (value, times) = (next(distinct), 1 + next(if long { 40 } else { 3 }) as usize);
                    keys.extend(std::iter::repeat_n(value, times.min(len - keys.len())));
                }
                let n = (distinct as usize).min(len.max(1));
                let keys: Vec<u32> = keys.into_iter().map(|k| k % n as u32).collect();
                cases.push((keys, n));
            }
        }
        for (i, (keys, n)) in cases.into_iter().enumerate() {
            let len = keys.len();
            let nulls = (i % 2 == 1).then(|| (0..len).map(|r| r % 5 != 3).collect::<Vec<_>>());
            let a = array(keys, n, nulls);
            for nullable in [true, false] {
                if !nullable && a.null_count() > 0 {
                    continue;
                }
                let field = polars_arrow::datatypes::Field::new("t".into(), a.values().dtype().clone(), nullable);
                let ptype = to_parquet_type(&field).unwrap();
                let Some(ours) = pages(&a, &ptype, options()) else {
                    assert_eq!(len, 0, "case {i}: only a column of no rows is left to Polars");
                    continue;
                };
                let ours = ours.unwrap();
                let theirs = polars_pages(&a, &ptype);
                assert_eq!(bytes(&ours), bytes(&theirs), "case {i} (length {len}, {n} values, nullable {nullable})");
            }
        }
    }
}
