//! Sources read whole by the compile of a run, kept for its staged layers: the header of a JSON
//! source is the fields of all its records, which takes as long to find as reading them, so a
//! run from nothing reads each JSON file once rather than once for the header and once for the
//! data. A frame is handed over only while its file has the size and modification time it had
//! when read; otherwise the layer reads the file again.

use super::{read_header, read_table, ReadError};
use crate::config::sources::{Format, ReadOptions};
use polars::prelude::DataFrame;
use std::collections::HashMap;
use std::path::Path;
use std::sync::Mutex;
use std::time::SystemTime;

/// The frames read ahead, by source id, until their layer takes them.
#[derive(Default)]
pub struct ReadAhead {
    frames: Mutex<HashMap<String, Kept>>,
}

struct Kept {
    df: DataFrame,
    size: u64,
    modified: SystemTime,
}

impl std::fmt::Debug for ReadAhead {
    fn fmt(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        let sources: Vec<String> = self.frames.lock().map(|k| k.keys().cloned().collect()).unwrap_or_default();
        f.debug_struct("ReadAhead").field("sources", &sources).finish()
    }
}

/// A file's size and modification time.
fn stat(path: &Path) -> Option<(u64, SystemTime)> {
    let meta = std::fs::metadata(path).ok()?;
    Some((meta.len(), meta.modified().ok()?))
}

impl ReadAhead {
    /// The header of source `id`'s file at `path`: read whole and kept where the format needs a
    /// whole read for its header (JSON), else as `read_header` reads it.
    pub fn header(&self, id: &str, path: &Path, format: Format, opts: &ReadOptions) -> Result<Vec<String>, ReadError> {
        if !matches!(format, Format::Json | Format::Ndjson) {
            return read_header(path, format, opts);
        }
        // Taken before the read: a file that changes during it is not handed over.
        let before = stat(path);
        let df = read_table(path, format, opts)?;
        let names = df.get_column_names().iter().map(|s| s.to_string()).collect();
        if let (Some((size, modified)), Ok(mut frames)) = (before, self.frames.lock()) {
            frames.insert(id.to_string(), Kept { df, size, modified });
        }
        Ok(names)
    }

    /// The frame read ahead for source `id` from `path`, when the file is as it was read.
    pub fn take(&self, id: &str, path: &Path) -> Option<DataFrame> {
        let kept = self.frames.lock().ok()?.remove(id)?;
        (stat(path) == Some((kept.size, kept.modified))).then_some(kept.df)
    }

    /// Drops the frames of the sources that `wanted` does not name (tables the run does not
    /// build).
    pub fn keep_only(&self, wanted: impl Fn(&str) -> bool) {
        if let Ok(mut frames) = self.frames.lock() {
            frames.retain(|id, _| wanted(id));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_frame_read_ahead_is_handed_over_once_while_its_file_is_unchanged() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("s.json");
        std::fs::write(&path, r#"[{"a": 1, "b": {"c": "x"}}]"#).expect("write");
        let opts = ReadOptions::default();
        let ahead = ReadAhead::default();
        let names = ahead.header("s", &path, Format::Json, &opts).expect("header");
        assert_eq!(names, read_header(&path, Format::Json, &opts).expect("scan"));
        let whole = read_table(&path, Format::Json, &opts).expect("read");
        assert!(ahead.take("s", &path).expect("kept").equals_missing(&whole));
        assert!(ahead.take("s", &path).is_none(), "taken once");
        // Changed after the read: read again.
        ahead.header("s", &path, Format::Json, &opts).expect("header");
        std::fs::write(&path, r#"[{"a": 2, "b": {"c": "y"}}, {"a": 3}]"#).expect("write");
        assert!(ahead.take("s", &path).is_none());
        // Not kept for a source the run does not build, nor for a format whose header is cheap.
        ahead.header("s", &path, Format::Json, &opts).expect("header");
        ahead.keep_only(|id| id != "s");
        assert!(ahead.take("s", &path).is_none());
        let csv = dir.path().join("s.csv");
        std::fs::write(&csv, "a,b\n1,2\n").expect("write");
        assert_eq!(ahead.header("c", &csv, Format::Csv, &opts).expect("header"), ["a", "b"]);
        assert!(ahead.take("c", &csv).is_none());
    }
}
