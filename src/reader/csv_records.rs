//! CSV text into text columns in one pass over its bytes: the records after `skip` lines, split
//! at the delimiter outside quotes, a quoted value unquoted (`""` read as `"`), every value kept
//! as text. Reads as Polars' CSV reader reads the same text with every column as text, no
//! header and empty values kept as empty text (`tests` compares the two), at a fraction of its
//! cost: the files of a run are small, and read on the cores at once, one file to a core. Where
//! values end is found 64 bytes at a time (`Ends`: a mask of each block's delimiters and line
//! ends), not searched for from each value's start.

use polars::prelude::*;
use polars_arrow::array::MutableBinaryViewArray;
use std::borrow::Cow;

/// How a CSV text is split into values.
pub(super) struct Layout<'a> {
    pub delimiter: u8,
    /// Lines before the first record.
    pub skip: usize,
    /// Whether a record longer than the first is cut to its length (else refused).
    pub truncate: bool,
    /// Values read as null (not in the first record when it is the header).
    pub nulls: &'a [String],
    pub header: bool,
}

/// `text_frame` by Polars' reader, which parses a text on every core (for the batches of a large
/// file), without the null values (`layout.nulls` and `layout.header` are not read). One chunk:
/// Polars parses a text in about 32 pieces, and every step that works a chunk at a time
/// (`rules::by_chunks`, meant for frames built from batches) would run once per piece.
pub(super) fn polars_text_frame(text: &str, layout: &Layout) -> PolarsResult<DataFrame> {
    CsvReadOptions::default()
        .with_rechunk(true)
        .with_has_header(false)
        .with_skip_rows(layout.skip)
        .with_infer_schema_length(Some(0))
        .with_parse_options(
            CsvParseOptions::default()
                .with_separator(layout.delimiter)
                .with_missing_is_null(false)
                .with_truncate_ragged_lines(layout.truncate),
        )
        .into_reader_with_file_handle(std::io::Cursor::new(text.as_bytes()))
        .finish()
}

/// The frame of `text`'s records: columns `column_1` to `column_N`, N the fields of its first
/// record; a shorter record's missing fields are empty (a blank line is a record of empty
/// values). A longer record is cut to N fields when `truncate`, else it is an error naming its
/// line, as is text after a value's closing quote.
pub(super) fn text_frame(text: &str, layout: &Layout) -> Result<DataFrame, String> {
    let Layout { delimiter, skip, truncate, nulls, header } = *layout;
    // The usual null, the empty value, is told without comparing text.
    let only_empty = nulls.len() == 1 && nulls[0].is_empty();
    let is_null = |v: &str| if only_empty { v.is_empty() } else { nulls.iter().any(|n| n == v) };
    let bytes = text.as_bytes();
    let mut at = skip_lines(bytes, skip);
    if at >= bytes.len() {
        return Err(format!("no records after the first {skip} line(s)"));
    }
    let mut line = skip + 1;
    let mut ends = Ends::new(bytes, delimiter);
    let mut fields: Vec<Cow<str>> = Vec::new();
    let mut columns: Vec<MutableBinaryViewArray<str>> = Vec::new();
    let mut width = None;
    let mut blank_header = false;
    while at < bytes.len() {
        let first_line = line;
        (at, line) = record(text, at, line, &mut ends, &mut fields)?;
        let n = *width.get_or_insert_with(|| {
            // Room for a value per line left (a line end inside quotes counts one too many).
            let rows = memchr::memchr_iter(b'\n', &bytes[at..]).count() + 1;
            columns = (0..fields.len()).map(|_| MutableBinaryViewArray::with_capacity(rows)).collect();
            blank_header = fields.len() == 1 && fields[0].is_empty();
            fields.len()
        });
        if fields.len() > n && !truncate {
            let mut message = format!("line {first_line} has {} fields, the header has {n}", fields.len());
            if blank_header {
                // The first line read, the header, is blank (a file starting with a blank line).
                message.push_str(&format!(
                    ": the header is line {}, which is blank; remove the blank line(s) before the header, or skip \
                     them with `read: {{ skip_rows: N }}`",
                    skip + 1
                ));
            }
            return Err(message);
        }
        let keep_all = header && columns[0].len() == 0;
        let mut values = fields.drain(..);
        for column in &mut columns {
            let value = values.next();
            let value = value.as_deref().unwrap_or("");
            if !keep_all && is_null(value) {
                column.push_null();
            } else {
                column.push_value(value);
            }
        }
    }
    let columns = columns
        .into_iter()
        .enumerate()
        .map(|(i, c)| StringChunked::with_chunk(format!("column_{}", i + 1).into(), c.freeze()).into_column())
        .collect();
    DataFrame::new_infer_height(columns).map_err(|e| e.to_string())
}

/// Where values may end: the delimiters and line ends of a text, found 64 bytes at a time as
/// the bits of a mask (four SSE2 comparisons on x86_64), then taken in order by position. A value of a few bytes is told in a few instructions, where a search
/// from its start would set up its vectors again for each.
struct Ends<'a> {
    bytes: &'a [u8],
    delimiter: u8,
    /// The block the mask is of, and the mask: bit `i` set when byte `block + i` ends a value.
    block: usize,
    mask: u64,
}

impl<'a> Ends<'a> {
    fn new(bytes: &'a [u8], delimiter: u8) -> Self {
        let mut ends = Ends { bytes, delimiter, block: 0, mask: 0 };
        ends.mask = ends.mask_at(0);
        ends
    }

    /// The mask of the 64 bytes from `block` (fewer at the text's end).
    fn mask_at(&self, block: usize) -> u64 {
        let d = self.delimiter;
        match self.bytes.get(block..block + 64) {
            Some(chunk) => mask64(chunk, d),
            None => mask_of(&self.bytes[block.min(self.bytes.len())..], d),
        }
    }

    /// The first delimiter or line end at or after `at`; the text's end when none.
    #[inline]
    fn from(&mut self, at: usize) -> usize {
        if at >= self.bytes.len() {
            return self.bytes.len();
        }
        if at >= self.block + 64 {
            self.block = at & !63;
            self.mask = self.mask_at(self.block);
        }
        loop {
            let later = self.mask & (u64::MAX << (at.max(self.block) - self.block));
            if later != 0 {
                return self.block + later.trailing_zeros() as usize;
            }
            if self.block + 64 >= self.bytes.len() {
                return self.bytes.len();
            }
            self.block += 64;
            self.mask = self.mask_at(self.block);
        }
    }
}

/// The mask of a block of 64 bytes: bit `i` set when byte `i` is `delimiter` or a line end.
#[cfg(target_arch = "x86_64")]
#[inline]
fn mask64(chunk: &[u8], delimiter: u8) -> u64 {
    use std::arch::x86_64::{_mm_cmpeq_epi8, _mm_loadu_si128, _mm_movemask_epi8, _mm_or_si128, _mm_set1_epi8};
    assert!(chunk.len() >= 64);
    let mut mask = 0u64;
    // SAFETY: SSE2 is part of every x86_64 processor; each load reads 16 of the chunk's 64 bytes.
    unsafe {
        let (d, n) = (_mm_set1_epi8(delimiter as i8), _mm_set1_epi8(b'\n' as i8));
        for i in 0..4 {
            let v = _mm_loadu_si128(chunk.as_ptr().add(16 * i).cast());
            let hits = _mm_or_si128(_mm_cmpeq_epi8(v, d), _mm_cmpeq_epi8(v, n));
            mask |= u64::from(_mm_movemask_epi8(hits) as u16) << (16 * i);
        }
    }
    mask
}

/// The mask of a block of 64 bytes: bit `i` set when byte `i` is `delimiter` or a line end.
#[cfg(not(target_arch = "x86_64"))]
fn mask64(chunk: &[u8], delimiter: u8) -> u64 {
    mask_of(&chunk[..64], delimiter)
}

/// The mask of up to 64 bytes, a byte at a time (a text's last block): bit `i` set when byte
/// `i` is `delimiter` or a line end.
fn mask_of(bytes: &[u8], delimiter: u8) -> u64 {
    bytes.iter().take(64).enumerate().fold(0u64, |m, (i, &b)| m | (u64::from((b == delimiter) | (b == b'\n')) << i))
}

/// The offset just past the first `n` lines of `bytes` (a line end inside quotes is not one).
fn skip_lines(bytes: &[u8], n: usize) -> usize {
    let (mut at, mut in_quotes, mut lines) = (0, false, 0);
    while lines < n {
        match memchr::memchr2(b'"', b'\n', &bytes[at..]) {
            Some(i) => {
                at += i + 1;
                match bytes[at - 1] {
                    b'"' => in_quotes = !in_quotes,
                    _ if !in_quotes => lines += 1,
                    _ => {}
                }
            }
            None => return bytes.len(),
        }
    }
    at
}

/// Reads the record starting at `at` (on line `line`) into `fields`; returns the offset just
/// past it and the line after it.
fn record<'a>(
    text: &'a str,
    mut at: usize,
    mut line: usize,
    ends: &mut Ends,
    fields: &mut Vec<Cow<'a, str>>,
) -> Result<(usize, usize), String> {
    let bytes = text.as_bytes();
    fields.clear();
    loop {
        let field = if bytes.get(at) == Some(&b'"') {
            // Quoted: to the quote not doubled, then up to the delimiter or line end.
            let start = at + 1;
            let mut i = start;
            let mut doubled = false;
            let close = loop {
                match memchr::memchr(b'"', &bytes[i..]) {
                    Some(q) if bytes.get(i + q + 1) == Some(&b'"') => {
                        doubled = true;
                        i += q + 2;
                    }
                    Some(q) => break i + q,
                    None => return Err(format!("line {line}: a quoted value opened here is never closed")),
                }
            };
            line += bytes[start..close].iter().filter(|b| **b == b'\n').count();
            let inner = &text[start..close];
            let value: Cow<str> = if doubled { Cow::Owned(inner.replace("\"\"", "\"")) } else { Cow::Borrowed(inner) };
            at = (close + 1).min(bytes.len());
            let end = ends.from(at);
            // Only a `\r` (of a `\r\n` line end, or stray) may follow the closing quote.
            let rest = &text[at..end];
            if !rest.is_empty() && rest != "\r" {
                return Err(format!(
                    "line {line}: the value `{}` has text after its closing quote; quote the whole value \
                     (a quote inside a value is written `\"\"`)",
                    &text[start - 1..end]
                ));
            }
            at = end;
            value
        } else {
            let end = ends.from(at);
            // A `\r` ending a value is dropped (a `\r\n` line end, or stray), as Polars does.
            let value = &text[at..end];
            let value = Cow::Borrowed(value.strip_suffix('\r').unwrap_or(value));
            at = end;
            value
        };
        fields.push(field);
        match bytes.get(at) {
            Some(b'\n') => return Ok((at + 1, line + 1)),
            Some(_) => at += 1,
            None => return Ok((at, line + 1)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Comma-separated, no nulls, as the comparison with Polars reads.
    fn layout(skip: usize, truncate: bool) -> Layout<'static> {
        Layout { delimiter: b',', skip, truncate, nulls: &[], header: false }
    }

    fn polars(text: &str, skip: usize, truncate: bool) -> Result<DataFrame, String> {
        polars_text_frame(text, &layout(skip, truncate)).map_err(|e| e.to_string())
    }

    fn rows(df: &DataFrame) -> Vec<Vec<Option<String>>> {
        (0..df.height())
            .map(|r| df.columns().iter().map(|c| c.str().ok().and_then(|s| s.get(r).map(str::to_string))).collect())
            .collect()
    }

    #[test]
    fn reads_as_polars_reads() {
        let cases = [
            "a,b\n1,2\n",
            "a,b\n1,2",
            "a,b\r\n1,2\r\n",
            "a,b\n,\n1,\n,2\n",
            "a,b\n\"x,y\",\"he said \"\"hi\"\"\"\n",
            "a,b\n\"l1\nl2\",z\n",
            "a,b\n1,2\n\n3,4\n",
            "a,b\n1,2\n\n\n",
            "a,b,c\n1\n1,2\n",
            "a,b\nx\"y,z\n",
            "a,b\n\"x\"y,z\n",
            "a\n1\n\n2\n",
            "a,b\n \n1,2\n",
            "a,b\n1\r2,3\n",
            "a,b\r\n\r\n1,2\r\n",
            "a,b\n\"\",x\n",
            "a,b\n",
            "a,b\n\"x\"\r\n",
            "a,b\n \"x\",y\n",
            "a,b\n1,\"2\"\n",
            "a,b\n1,\"\"\n",
            "a,b,c\n1,,3\n",
            "é,b\nçà,\"ü\"\n",
            "junk\n\"q\nq\"\na,b\n1,2",
            "j,k\r\nx\r\na,b\r\n\"1\r\n2\",3\r\n",
            "a,b\n\"x,y\n",
            "a,b\n1,2,3\n4,5\n",
            "a,b\n1,2,\n",
            "a,b\n\"x\" ,y\n",
            "a,b\n\"x\"\r,y\n",
            "a,b\n\"x\r\",y\n",
            "\n\na,b\n1,2\n",
            "a\n\"\"\"\"\n\"\"\"x\"\"\"\n",
            "a,b\n1,2\r",
            "a,b\n1,\"2\"",
            "",
            "\n",
            "a,b\nx\r,y\n",
            "a,b\nx\r\r,y\n",
            "a,b\nx,y\r\r\n",
            "a,b\n\"x\"\r\r,y\n",
        ];
        let mut differ = Vec::new();
        for case in cases {
            for truncate in [false, true] {
                for skip in [0, 1, 2] {
                    let ours = text_frame(case, &layout(skip, truncate)).map(|df| rows(&df)).map_err(|_| ());
                    let theirs = polars(case, skip, truncate).map(|df| rows(&df)).map_err(|_| ());
                    if ours != theirs {
                        differ.push(format!(
                            "{case:?} skip {skip} truncate {truncate}\n ours   {ours:?}\n polars {theirs:?}"
                        ));
                    }
                }
            }
        }
        assert!(differ.is_empty(), "{}", differ.join("\n"));
    }

    /// A little generator of pseudo-random numbers below `n` (xorshift), the same every run.
    fn numbers(seed: u64) -> impl FnMut(usize) -> usize {
        let mut state = seed;
        move |n| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state % n as u64) as usize
        }
    }

    /// Random well-formed CSV (values plain or quoted, quoted ones holding delimiters, quotes
    /// and line ends; records of any length, blank ones, `\n` or `\r\n` line ends, with or
    /// without a last line end) that the reader's check lets through reads as Polars reads it,
    /// or both refuse it.
    #[test]
    fn random_csv_reads_as_polars_reads() {
        let plain = ["a", "bb", "", " ", "é", "x y", "0012"];
        let quoted = ["", "a,b", "say \"\"hi\"\"", "two\nlines", "cr\r\nlf", " ", "\"\"", "é,"];
        let mut next = numbers(0x9E37_79B9_7F4A_7C15);
        let mut differ = Vec::new();
        for _ in 0..3000 {
            let end = if next(2) == 0 { "\n" } else { "\r\n" };
            let records: Vec<String> = (0..1 + next(5))
                .map(|_| {
                    (0..next(4))
                        .map(|_| match next(3) {
                            0 => format!("\"{}\"", quoted[next(quoted.len())]),
                            _ => plain[next(plain.len())].to_string(),
                        })
                        .collect::<Vec<_>>()
                        .join(",")
                })
                .collect();
            let mut text = records.join(end);
            if next(2) == 0 {
                text.push_str(end);
            }
            let (skip, truncate) = (next(3) / 2, next(2) == 1);
            if !truncate && super::super::csv_problem(&text, ',', skip, true).is_some() {
                // Refused before either reads it (Polars would keep a longer last line).
                continue;
            }
            let ours = text_frame(&text, &layout(skip, truncate)).map(|df| rows(&df)).map_err(|_| ());
            let theirs = polars(&text, skip, truncate).map(|df| rows(&df)).map_err(|_| ());
            if ours != theirs {
                differ.push(format!("{text:?} skip {skip} truncate {truncate}\n ours   {ours:?}\n polars {theirs:?}"));
            }
        }
        assert!(differ.is_empty(), "{} differ:\n{}", differ.len(), differ[..differ.len().min(12)].join("\n"));
    }

    /// Long texts (records of three values, plain or quoted, some long, some holding
    /// delimiters and line ends) read as Polars reads them: values end in every place of the
    /// 64-byte blocks the reader finds delimiters in, and quoted ones span blocks.
    #[test]
    fn long_csv_reads_as_polars_reads() {
        let plain = ["a", "", "0012", "a plain value of some forty-odd bytes or so", "é"];
        let quoted = ["a,b", "two\nlines", "say \"\"hi\"\"", "a quoted value, with a delimiter, of some length"];
        let mut next = numbers(0x5851_F42D_4C95_7F2D);
        for _ in 0..40 {
            let end = if next(2) == 0 { "\n" } else { "\r\n" };
            let mut text = String::from("x,y,z");
            for _ in 0..next(400) {
                text.push_str(end);
                let values: Vec<String> = (0..3)
                    .map(|_| match next(4) {
                        0 => format!("\"{}\"", quoted[next(quoted.len())]),
                        _ => plain[next(plain.len())].to_string(),
                    })
                    .collect();
                text.push_str(&values.join(","));
            }
            let ours = text_frame(&text, &layout(0, false)).map(|df| rows(&df)).map_err(|e| e.to_string());
            let theirs = polars(&text, 0, false).map(|df| rows(&df));
            assert_eq!(ours, theirs, "{text:?}");
        }
    }

    /// A text whose first line read is blank, then longer lines: refused, the message naming the
    /// blank header line and what to do; a blank line later is a record of empty values.
    #[test]
    fn a_blank_header_line_is_named() {
        for (text, skip, blank) in [("\nx,y\n1,2\n", 0, 1), ("title\n\r\nx,y\n", 1, 2)] {
            let message = text_frame(text, &layout(skip, false)).expect_err("refused");
            assert!(message.starts_with(&format!("line {} has 2 fields, the header has 1", blank + 1)), "{message}");
            assert!(message.contains(&format!("the header is line {blank}, which is blank")), "{message}");
            assert!(message.contains("skip_rows"), "{message}");
        }
        let message = text_frame("x\n\n1,2\n", &layout(0, false)).expect_err("refused");
        assert!(!message.contains("blank"), "{message}");
    }

    /// Any text at all, malformed included, reads or is refused: nothing panics.
    #[test]
    fn any_text_reads_or_is_refused() {
        let alphabet = ["a", ",", "\"", "\n", "\r", " ", "é"];
        let mut next = numbers(0x2545_F491_4F6C_DD1D);
        for _ in 0..20_000 {
            let text: String = (0..next(32)).map(|_| alphabet[next(alphabet.len())]).collect();
            for truncate in [false, true] {
                if let Ok(df) = text_frame(&text, &layout(next(3), truncate)) {
                    assert!(df.width() > 0, "{text:?}");
                }
            }
        }
    }

    #[test]
    fn null_values_are_null_except_in_the_header() {
        let nulls = ["".to_string(), "NA".to_string()];
        let layout = Layout { delimiter: b';', skip: 1, truncate: false, nulls: &nulls, header: true };
        let df = text_frame("title\nNA;b;\n1;NA;\"\"\n", &layout).unwrap();
        assert_eq!(
            rows(&df),
            [vec![Some("NA".into()), Some("b".into()), Some("".into())], vec![Some("1".into()), None, None]]
        );
        let only_empty = ["".to_string()];
        let df = text_frame("a;b\n;NA\n", &Layout { nulls: &only_empty, skip: 0, ..layout }).unwrap();
        assert_eq!(rows(&df)[1], [None, Some("NA".into())]);
    }
}
