//! Located diagnostics: every user-facing problem names its file, line and column, says what is
//! wrong and, where it can, what would be right. Compile checks collect them all before failing.

use std::fmt;
use std::path::{Path, PathBuf};

/// One problem found in the user's files or data, with where it is and what would fix it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Diagnostic {
    pub file: PathBuf,
    pub line: usize,
    pub column: usize,
    pub message: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hint: Option<String>,
}

impl Diagnostic {
    pub fn new(file: impl Into<PathBuf>, (line, column): (usize, usize), message: impl Into<String>) -> Self {
        Diagnostic { file: file.into(), line, column, message: message.into(), hint: None }
    }

    pub fn with_hint(mut self, hint: Option<String>) -> Self {
        self.hint = hint;
        self
    }
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:{}: {}", self.file.display(), self.line, self.column, self.message)?;
        if let Some(hint) = &self.hint {
            write!(f, "; {hint}")?;
        }
        Ok(())
    }
}

/// All diagnostics found by one compile, shown together.
#[derive(Debug, Default, Clone)]
pub struct Diagnostics(pub Vec<Diagnostic>);

impl Diagnostics {
    /// Adds `d` unless the same problem is already listed (a `for_each` file is checked once
    /// per item).
    pub fn push(&mut self, d: Diagnostic) {
        if !self.0.contains(&d) {
            self.0.push(d);
        }
    }
    /// Adds each of `other`'s problems, in order (see `push`).
    pub fn extend(&mut self, other: Diagnostics) {
        for d in other.0 {
            self.push(d);
        }
    }
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Display for Diagnostics {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for d in &self.0 {
            writeln!(f, "error: {d}")?;
        }
        write!(f, "{} error(s)", self.0.len())
    }
}

impl std::error::Error for Diagnostics {}

/// The closest candidate to a misspelt name, as a "did you mean" hint: by edit distance, or a
/// candidate that contains the name (`title` -> `class_title`).
pub fn did_you_mean<'a>(name: &str, candidates: impl IntoIterator<Item = &'a str>) -> Option<String> {
    let name = name.to_lowercase();
    let score = |c: &str| {
        let c = c.to_lowercase();
        let contained = name.len() >= 3 && (c.contains(&name) || name.contains(&c));
        strsim::normalized_damerau_levenshtein(&name, &c).max(if contained { 0.5 } else { 0.0 })
    };
    let best =
        candidates.into_iter().map(|c| (score(c), c)).filter(|(s, _)| *s >= 0.5).max_by(|a, b| a.0.total_cmp(&b.0))?;
    Some(format!("did you mean `{}`?", best.1))
}

/// The text of one YAML file, kept to find where a name appears when serde cannot tell us.
#[derive(Debug, Clone)]
pub struct SourceText {
    pub path: PathBuf,
    pub text: String,
}

impl SourceText {
    /// Reads a UTF-8 file; a file that is not UTF-8 is a diagnostic at the first bad byte.
    pub fn read(path: &Path) -> Result<Self, Diagnostic> {
        let bytes = std::fs::read(path).map_err(|e| Diagnostic::new(path, (1, 1), format!("cannot read file: {e}")))?;
        match String::from_utf8(bytes) {
            Ok(text) => Ok(SourceText { path: path.to_path_buf(), text }),
            Err(e) => {
                let at = e.utf8_error().valid_up_to();
                let bytes = e.as_bytes();
                let line = bytes[..at].iter().filter(|b| **b == b'\n').count() + 1;
                let column = at - bytes[..at].iter().rposition(|b| *b == b'\n').map_or(0, |p| p + 1) + 1;
                let message = format!("byte 0x{:02X} is not valid UTF-8; YAML files must be UTF-8", bytes[at]);
                Err(Diagnostic::new(path, (line, column), message).with_hint(Some("save the file as UTF-8".into())))
            }
        }
    }

    /// Keys that appear twice in the same block mapping, at their second appearance (serde
    /// keeps the last silently, and YAML libraries point at the mapping, not the key).
    pub fn duplicate_keys(&self) -> Vec<Diagnostic> {
        let mut out = Vec::new();
        // Open mappings: (indent of their keys, keys seen with their line).
        let mut open: Vec<(usize, std::collections::HashMap<String, usize>)> = Vec::new();
        let mut block_scalar: Option<usize> = None;
        for (i, raw) in self.text.lines().enumerate() {
            let indent = raw.len() - raw.trim_start().len();
            let line = raw.trim_end();
            if line.trim().is_empty() || line.trim_start().starts_with('#') {
                continue;
            }
            if let Some(parent) = block_scalar {
                if indent > parent {
                    continue;
                }
                block_scalar = None;
            }
            let mut rest = line.trim_start();
            let mut key_indent = indent;
            let mut new_item = false;
            while let Some(r) = rest.strip_prefix("- ") {
                rest = r.trim_start();
                key_indent = line.len() - rest.len();
                new_item = true;
            }
            let Some(key) = mapping_key(rest) else { continue };
            while open.last().is_some_and(|(k, _)| *k > key_indent || (new_item && *k == key_indent)) {
                open.pop();
            }
            if open.last().is_none_or(|(k, _)| *k < key_indent) {
                open.push((key_indent, Default::default()));
            }
            if let Some((_, keys)) = open.last_mut() {
                if let Some(first) = keys.insert(key.clone(), i + 1) {
                    out.push(Diagnostic::new(
                        &self.path,
                        (i + 1, key_indent + 1),
                        format!("`{key}` is given twice in the same mapping (first at line {first})"),
                    ));
                }
            }
            let value = rest[rest.find(':').map_or(rest.len(), |c| c + 1)..].trim();
            if value.starts_with('|') || value.starts_with('>') {
                block_scalar = Some(indent);
            }
        }
        out
    }

    /// Line and column (1-based) of the first `token` at or after the first line mentioning
    /// `section` (a top-level key such as `silver:`); the section's line, or 1:1, if not found.
    pub fn locate(&self, section: Option<&str>, token: &str) -> (usize, usize) {
        let lines: Vec<&str> = self.text.lines().collect();
        let start = section.and_then(|s| lines.iter().position(|l| l.trim_start().starts_with(s))).unwrap_or(0);
        for (i, line) in lines.iter().enumerate().skip(start) {
            if let Some(col) = find_token(line, token) {
                return (i + 1, col + 1);
            }
        }
        if section.is_some() && start > 0 {
            return (start + 1, 1);
        }
        (1, 1)
    }

    pub fn diag(&self, section: Option<&str>, token: &str, message: impl Into<String>) -> Diagnostic {
        Diagnostic::new(&self.path, self.locate(section, token), message)
    }
}

/// The key of a `key: value` (or `key:`) line: plain or quoted, not a flow mapping.
fn mapping_key(rest: &str) -> Option<String> {
    let (key, after) = if let Some(q) = rest.chars().next().filter(|c| *c == '"' || *c == '\'') {
        let end = rest[1..].find(q)? + 1;
        (rest[1..end].to_string(), &rest[end + 1..])
    } else {
        let colon = rest.find(": ").or_else(|| rest.strip_suffix(':').map(|r| r.len()))?;
        let key = &rest[..colon];
        if key.is_empty() || key.starts_with(['{', '[', '&', '*', '!', '|', '>']) || key.contains(" #") {
            return None;
        }
        (key.to_string(), &rest[colon..])
    };
    (after.starts_with(": ") || after == ":").then_some(key)
}

/// Byte offset of `token` in `line` as a whole word (not inside a longer identifier).
fn find_token(line: &str, token: &str) -> Option<usize> {
    let is_word = |c: char| c.is_alphanumeric() || c == '_';
    let mut from = 0;
    while let Some(pos) = line[from..].find(token) {
        let at = from + pos;
        let before = line[..at].chars().next_back();
        let after = line[at + token.len()..].chars().next();
        if !before.is_some_and(is_word) && !after.is_some_and(is_word) {
            return Some(line[..at].chars().count());
        }
        from = at + token.len().max(1);
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locates_whole_words_after_section() {
        let t =
            SourceText { path: "p.yml".into(), text: "a: code\nsilver:\n  - derive: { x: code_x + code }\n".into() };
        assert_eq!(t.locate(Some("silver:"), "code"), (3, 27));
        assert_eq!(t.locate(None, "code"), (1, 4));
    }

    #[test]
    fn finds_duplicate_keys_where_they_repeat() {
        let text = "version: 1\nsources:\n  a:\n    path: x\n  b: { path: y }\n  a:\n    path: z\n    path: w\n\
                    gold:\n  - derive: { x: y }\n  - derive: { x: z }\n  - sql: |\n      a: 1\n      a: 2\nversion: 2\n";
        let t = SourceText { path: "s.yml".into(), text: text.into() };
        let found: Vec<(usize, usize, String)> =
            t.duplicate_keys().into_iter().map(|d| (d.line, d.column, d.message)).collect();
        assert_eq!(
            found,
            [
                (6, 3, "`a` is given twice in the same mapping (first at line 3)".to_string()),
                (8, 5, "`path` is given twice in the same mapping (first at line 7)".to_string()),
                (15, 1, "`version` is given twice in the same mapping (first at line 1)".to_string()),
            ]
        );
    }

    #[test]
    fn suggests_closest_name() {
        assert_eq!(did_you_mean("noc_cod", ["noc_code", "level"]).as_deref(), Some("did you mean `noc_code`?"));
        assert_eq!(did_you_mean("zzz", ["noc_code"]), None);
    }
}
