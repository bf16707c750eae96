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
    pub fn push(&mut self, d: Diagnostic) {
        self.0.push(d);
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
    pub fn read(path: &Path) -> std::io::Result<Self> {
        Ok(SourceText { path: path.to_path_buf(), text: std::fs::read_to_string(path)? })
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
    fn suggests_closest_name() {
        assert_eq!(did_you_mean("noc_cod", ["noc_code", "level"]).as_deref(), Some("did you mean `noc_code`?"));
        assert_eq!(did_you_mean("zzz", ["noc_code"]), None);
    }
}
