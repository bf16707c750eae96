//! Text similarity for the `match` step, every score in [0, 1]: normalisation (case, accents,
//! punctuation, the inclusive French middle dot, stop words), token-set and token-sort ratios
//! (on the normalised InDel distance, as rapidfuzz defines them), Jaro-Winkler and normalised
//! Levenshtein. The longest common subsequence behind the InDel distance is computed
//! bit-parallel (Hyyrö), 64 characters of the shorter text per machine word, so a title
//! against a paragraph costs one pass over the paragraph. A text is prepared once for the many
//! it is scored against (`Prepared`: its words' characters and, under TF-IDF, their weights),
//! so that scoring a pair decodes, hashes and allocates nothing.

use polars::prelude::PlHashMap as HashMap;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use std::cmp::Ordering;

/// Words left out of the token scorers by default: English and French function words.
pub const STOP_WORDS: [&str; 40] = [
    "a", "an", "and", "as", "at", "by", "for", "from", "in", "into", "of", "on", "or", "the", "to", "with", "other",
    "au", "aux", "d", "de", "des", "du", "en", "et", "l", "la", "le", "les", "ou", "par", "pour", "sur", "un", "une",
    "autres", "dans", "avec", "s", "n",
];

/// How texts are normalised before scoring.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Normalize {
    /// Compare without letter case; default true.
    #[serde(default = "yes")]
    pub case: bool,
    /// Compare without accents (`é` as `e`, `ç` as `c`); default true.
    #[serde(default = "yes")]
    pub accents: bool,
    /// Punctuation as spaces, and the inclusive French ending after a middle dot dropped
    /// (`officier·ère` as `officier`); default true.
    #[serde(default = "yes")]
    pub punctuation: bool,
    /// Words the token scorers leave out; default English and French function words
    /// (`and`, `of`, `the`, `de`, `et`, `les`, ...). `[]` keeps every word.
    pub stop_words: Option<Vec<String>>,
    /// Reduce English words to a crude stem for the token scorers (`managers`, `management`
    /// and `manager` all as `manag`); default false.
    #[serde(default)]
    pub stem: bool,
}

fn yes() -> bool {
    true
}

impl Default for Normalize {
    fn default() -> Self {
        Normalize { case: true, accents: true, punctuation: true, stop_words: None, stem: false }
    }
}

impl Normalize {
    /// The text normalised, words separated by single spaces, stop words kept.
    pub fn apply(&self, text: &str) -> String {
        self.normalised(text, true)
    }

    /// `apply`, ASCII characters by a lookup (`ascii_by_lookup`) or, as the others, through
    /// the accent table and Unicode's classes and case mapping (which give the same).
    fn normalised(&self, text: &str, ascii_by_lookup: bool) -> String {
        let mut out = String::with_capacity(text.len());
        let mut chars = text.chars().peekable();
        while let Some(c) = chars.next() {
            if ascii_by_lookup && c.is_ascii() {
                // The usual character: no accent, and its own case and class by a lookup.
                if self.punctuation && !c.is_ascii_alphanumeric() {
                    out.push(' ');
                } else {
                    out.push(if self.case { c.to_ascii_lowercase() } else { c });
                }
                continue;
            }
            if self.punctuation && c == '·' {
                // The inclusive ending: `officier·ère`, `directeur·rice·s`.
                while chars.peek().is_some_and(|n| n.is_alphabetic() || *n == '·') {
                    chars.next();
                }
                continue;
            }
            let c = if self.accents { fold_accent(c) } else { c };
            if self.punctuation && !c.is_alphanumeric() {
                out.push(' ');
            } else if self.case {
                out.extend(c.to_lowercase());
            } else {
                out.push(c);
            }
        }
        out.split_whitespace().collect::<Vec<_>>().join(" ")
    }

    /// The stop words, normalised like the texts.
    pub fn stop_set(&self) -> std::collections::HashSet<String> {
        match &self.stop_words {
            Some(words) => words.iter().map(|w| self.apply(w)).collect(),
            None => STOP_WORDS.iter().map(|w| w.to_string()).collect(),
        }
    }
}

/// The letter without its accent, for the Latin letters of English and French (and the rest
/// of Latin-1 and Latin Extended-A); other characters unchanged.
pub fn fold_accent(c: char) -> char {
    match c {
        'à' | 'á' | 'â' | 'ã' | 'ä' | 'å' | 'ā' | 'ă' | 'ą' => 'a',
        'À' | 'Á' | 'Â' | 'Ã' | 'Ä' | 'Å' | 'Ā' | 'Ă' | 'Ą' => 'A',
        'ç' | 'ć' | 'ĉ' | 'ċ' | 'č' => 'c',
        'Ç' | 'Ć' | 'Ĉ' | 'Ċ' | 'Č' => 'C',
        'ď' | 'đ' => 'd',
        'Ď' | 'Đ' => 'D',
        'è' | 'é' | 'ê' | 'ë' | 'ē' | 'ĕ' | 'ė' | 'ę' | 'ě' => 'e',
        'È' | 'É' | 'Ê' | 'Ë' | 'Ē' | 'Ĕ' | 'Ė' | 'Ę' | 'Ě' => 'E',
        'ì' | 'í' | 'î' | 'ï' | 'ĩ' | 'ī' | 'ĭ' | 'į' | 'ı' => 'i',
        'Ì' | 'Í' | 'Î' | 'Ï' | 'Ĩ' | 'Ī' | 'Ĭ' | 'Į' | 'İ' => 'I',
        'ñ' | 'ń' | 'ņ' | 'ň' => 'n',
        'Ñ' | 'Ń' | 'Ņ' | 'Ň' => 'N',
        'ò' | 'ó' | 'ô' | 'õ' | 'ö' | 'ø' | 'ō' | 'ŏ' | 'ő' => 'o',
        'Ò' | 'Ó' | 'Ô' | 'Õ' | 'Ö' | 'Ø' | 'Ō' | 'Ŏ' | 'Ő' => 'O',
        'ù' | 'ú' | 'û' | 'ü' | 'ũ' | 'ū' | 'ŭ' | 'ů' | 'ű' | 'ų' => 'u',
        'Ù' | 'Ú' | 'Û' | 'Ü' | 'Ũ' | 'Ū' | 'Ŭ' | 'Ů' | 'Ű' | 'Ų' => 'U',
        'ý' | 'ÿ' => 'y',
        'Ý' | 'Ÿ' => 'Y',
        'ś' | 'ŝ' | 'ş' | 'š' => 's',
        'Ś' | 'Ŝ' | 'Ş' | 'Š' => 'S',
        'ź' | 'ż' | 'ž' => 'z',
        'Ź' | 'Ż' | 'Ž' => 'Z',
        'œ' => 'o',
        'Œ' => 'O',
        'æ' => 'a',
        'Æ' => 'A',
        '’' | '‘' => '\'',
        other => other,
    }
}

/// A normalised text prepared for every scorer: its characters, and its distinct non-stop
/// words sorted.
#[derive(Debug, Clone)]
pub struct Prepared {
    pub chars: Vec<char>,
    pub tokens: Vec<String>,
    /// The words' characters one after another, the `i`th word ending at `word_ends[i]`: the
    /// token scorers join words as characters, pair after pair.
    word_chars: Vec<char>,
    word_ends: Vec<usize>,
    /// Each word's weight squared (`tfidf`) and the root of their sum, the length of the
    /// text's weight vector, once computed: a text is scored against many, always under the
    /// same weights.
    weighed: std::sync::OnceLock<(Vec<f64>, f64)>,
}

impl Prepared {
    pub fn new(normalised: &str, stop: &std::collections::HashSet<String>, stem_words: bool) -> Self {
        let mut tokens: Vec<String> = normalised
            .split(' ')
            .filter(|w| !w.is_empty() && !stop.contains(*w))
            .map(|w| if stem_words { stem(w) } else { w.to_string() })
            .collect();
        tokens.sort();
        tokens.dedup();
        let mut word_chars = Vec::new();
        let word_ends = tokens
            .iter()
            .map(|t| {
                word_chars.extend(t.chars());
                word_chars.len()
            })
            .collect();
        Prepared {
            chars: normalised.chars().collect(),
            tokens,
            word_chars,
            word_ends,
            weighed: std::sync::OnceLock::new(),
        }
    }

    /// The characters of the `i`th word.
    fn word(&self, i: usize) -> &[char] {
        let start = if i == 0 { 0 } else { self.word_ends[i - 1] };
        &self.word_chars[start..self.word_ends[i]]
    }

    /// The words joined by single spaces, as characters, into `out`.
    fn joined_into(&self, out: &mut Vec<char>) {
        out.clear();
        for i in 0..self.tokens.len() {
            push_word(out, self.word(i));
        }
    }

    /// Each word's weight squared under `weights`, and the root of their sum.
    fn weighed(&self, weights: &WordWeights) -> &(Vec<f64>, f64) {
        self.weighed.get_or_init(|| {
            let squared: Vec<f64> = self.tokens.iter().map(|t| weights.get(t).powi(2)).collect();
            let norm = squared.iter().sum::<f64>().sqrt();
            (squared, norm)
        })
    }
}

/// Appends `word` to `out`, after a space unless `out` is empty.
fn push_word(out: &mut Vec<char>, word: &[char]) {
    if !out.is_empty() {
        out.push(' ');
    }
    out.extend_from_slice(word);
}

std::thread_local! {
    /// The token scorers' working texts, kept between the pairs a thread scores.
    static SCRATCH: std::cell::RefCell<(Vec<char>, Vec<char>)> = const { std::cell::RefCell::new((Vec::new(), Vec::new())) };
}

/// Suffixes `stem` removes, longest first within each family; the stem keeps 4 letters.
const SUFFIXES: [&str; 16] = [
    "ements", "ement", "ment", "ings", "ing", "ion", "ers", "er", "ors", "or", "ist", "ian", "ical", "ial", "ic", "al",
];

/// A crude English stem: the plural dropped, then up to two common suffixes, then a final `e` or `y`,
/// so that `managers`, `management` and `manage` meet, as do `auditors` and `auditing`.
pub fn stem(word: &str) -> String {
    let mut w = word.to_string();
    if w.len() > 4 && w.ends_with("ies") {
        w.truncate(w.len() - 3);
        w.push('y');
    } else if w.len() > 3 && w.ends_with('s') && !w.ends_with("ss") {
        w.pop();
    }
    // Twice: `engineering` to `engineer` to `engine`.
    for _ in 0..2 {
        // A suffix's last letter first: most words end in none of them.
        let last = w.as_bytes().last();
        let ends = |s: &&str| s.as_bytes().last() == last && w.ends_with(*s);
        if let Some(suffix) = SUFFIXES.iter().find(|s| ends(s) && w.chars().count() - s.chars().count() >= 4) {
            w.truncate(w.len() - suffix.len());
        }
    }
    if w.chars().count() > 4 && (w.ends_with('e') || w.ends_with('y')) {
        w.pop();
    }
    w
}

/// Length of the longest common subsequence of two texts, bit-parallel over the shorter one.
pub fn lcs_len(a: &[char], b: &[char]) -> usize {
    let (short, long) = if a.len() <= b.len() { (a, b) } else { (b, a) };
    if short.is_empty() {
        return 0;
    }
    // The common case, a short ASCII text: one machine word, masks in an array.
    if short.len() <= 64 && short.iter().all(char::is_ascii) {
        let mut masks = [0u64; 128];
        for (i, c) in short.iter().enumerate() {
            masks[*c as usize] |= 1 << i;
        }
        let mut v = u64::MAX;
        for c in long.iter().filter(|c| c.is_ascii()) {
            let u = v & masks[*c as usize];
            v = v.wrapping_add(u) | (v - u);
        }
        let used = if short.len() == 64 { u64::MAX } else { (1u64 << short.len()) - 1 };
        return short.len() - (v & used).count_ones() as usize;
    }
    let words = short.len().div_ceil(64);
    let mut masks: HashMap<char, Vec<u64>> = HashMap::default();
    for (i, c) in short.iter().enumerate() {
        masks.entry(*c).or_insert_with(|| vec![0; words])[i / 64] |= 1 << (i % 64);
    }
    // V has a 0 bit where the LCS grew; its zero count over the short text is the length.
    let mut v = vec![u64::MAX; words];
    for c in long {
        let Some(m) = masks.get(c) else { continue };
        let mut carry = 0u64;
        for (w, x) in v.iter_mut().enumerate() {
            let u = *x & m[w];
            let (sum, c1) = x.overflowing_add(u);
            let (sum, c2) = sum.overflowing_add(carry);
            carry = u64::from(c1 || c2);
            *x = sum | (*x - u);
        }
    }
    let mut ones = 0usize;
    for (w, x) in v.iter().enumerate() {
        let bits = if w + 1 == words && short.len() % 64 != 0 { short.len() % 64 } else { 64 };
        let mask = if bits == 64 { u64::MAX } else { (1u64 << bits) - 1 };
        ones += (x & mask).count_ones() as usize;
    }
    short.len() - ones
}

/// Normalised InDel similarity: 2 * LCS / (|a| + |b|); 1 for two empty texts.
pub fn ratio(a: &[char], b: &[char]) -> f64 {
    let total = a.len() + b.len();
    if total == 0 {
        return 1.0;
    }
    2.0 * lcs_len(a, b) as f64 / total as f64
}

/// Token-sort ratio: the ratio of the sorted distinct words.
pub fn token_sort(a: &Prepared, b: &Prepared) -> f64 {
    if a.tokens.is_empty() || b.tokens.is_empty() {
        return 0.0;
    }
    SCRATCH.with(|scratch| {
        let (ja, jb) = &mut *scratch.borrow_mut();
        a.joined_into(ja);
        b.joined_into(jb);
        ratio(ja, jb)
    })
}

/// Token-set ratio: the words both texts share against each text's own words, so that a text
/// whose words all occur in the other scores 1.
pub fn token_set(a: &Prepared, b: &Prepared) -> f64 {
    if a.tokens.is_empty() || b.tokens.is_empty() {
        return 0.0;
    }
    SCRATCH.with(|scratch| {
        // The words only one side has, joined by spaces, as characters; the shared words' count
        // and characters (the sorted words merged, nothing joined).
        let (diff_a, diff_b) = &mut *scratch.borrow_mut();
        diff_a.clear();
        diff_b.clear();
        let (mut common, mut common_chars) = (0usize, 0usize);
        let (mut i, mut j) = (0, 0);
        while i < a.tokens.len() || j < b.tokens.len() {
            let order = match (a.tokens.get(i), b.tokens.get(j)) {
                (Some(x), Some(y)) => x.cmp(y),
                (Some(_), None) => Ordering::Less,
                _ => Ordering::Greater,
            };
            match order {
                Ordering::Equal => {
                    common += 1;
                    common_chars += a.word(i).len();
                    i += 1;
                    j += 1;
                }
                Ordering::Less => {
                    push_word(diff_a, a.word(i));
                    i += 1;
                }
                Ordering::Greater => {
                    push_word(diff_b, b.word(j));
                    j += 1;
                }
            }
        }
        if common == 0 {
            return ratio(diff_a, diff_b);
        }
        if diff_a.is_empty() || diff_b.is_empty() {
            return 1.0;
        }
        // `common + " " + diff` against `common` and against each other; the common words are
        // a shared prefix, so only the differences need a subsequence.
        let sect = common_chars + common - 1;
        let (la, lb) = (sect + 1 + diff_a.len(), sect + 1 + diff_b.len());
        let with_a = 2.0 * sect as f64 / (sect + la) as f64;
        let with_b = 2.0 * sect as f64 / (sect + lb) as f64;
        let both = 2.0 * (sect + 1 + lcs_len(diff_a, diff_b)) as f64 / (la + lb) as f64;
        with_a.max(with_b).max(both)
    })
}

/// How rare each word is among the candidates: inverse document frequency,
/// `ln((n + 1) / (df + 1)) + 1`; a word no candidate has weighs the most.
#[derive(Debug, Clone, Default)]
pub struct WordWeights {
    idf: HashMap<String, f64>,
    unseen: f64,
}

impl WordWeights {
    /// Weights from the candidates' word sets.
    pub fn new<'a>(documents: impl IntoIterator<Item = &'a Prepared>) -> Self {
        let mut df: HashMap<String, usize> = HashMap::default();
        let mut n = 0usize;
        for d in documents {
            n += 1;
            for t in &d.tokens {
                *df.entry(t.clone()).or_default() += 1;
            }
        }
        let weight = |k: usize| ((n as f64 + 1.0) / (k as f64 + 1.0)).ln() + 1.0;
        WordWeights { idf: df.into_iter().map(|(t, k)| (t, weight(k))).collect(), unseen: weight(0) }
    }

    fn get(&self, word: &str) -> f64 {
        self.idf.get(word).copied().unwrap_or(self.unseen)
    }
}

/// Cosine of the two word sets weighted by rarity (TF-IDF over distinct words): shared rare
/// words count for much, shared common ones (`services`, `operators`) for little. A text is
/// scored under one `weights` only: its norm is computed once, then kept.
pub fn tfidf(a: &Prepared, b: &Prepared, weights: &WordWeights) -> f64 {
    let ((squared, na), (_, nb)) = (a.weighed(weights), b.weighed(weights));
    if *na == 0.0 || *nb == 0.0 {
        return 0.0;
    }
    // The words of `a` that `b` has, in `a`'s order (both sorted: one walk over `b`).
    let mut j = 0;
    let mut in_b = |t: &String| {
        while b.tokens.get(j).is_some_and(|u| u < t) {
            j += 1;
        }
        b.tokens.get(j) == Some(t)
    };
    let shared: f64 = a.tokens.iter().zip(squared).filter(|(t, _)| in_b(t)).map(|(_, w)| *w).sum();
    (shared / (na * nb)).min(1.0)
}

/// Jaro-Winkler similarity (prefix scale 0.1, up to 4 characters).
pub fn jaro_winkler(a: &[char], b: &[char]) -> f64 {
    if a.is_empty() && b.is_empty() {
        return 1.0;
    }
    if a.is_empty() || b.is_empty() {
        return 0.0;
    }
    let window = (a.len().max(b.len()) / 2).saturating_sub(1);
    let mut b_used = vec![false; b.len()];
    let mut a_matched = Vec::new();
    for (i, c) in a.iter().enumerate() {
        let lo = i.saturating_sub(window);
        let hi = (i + window + 1).min(b.len());
        if let Some(j) = (lo..hi).find(|&j| !b_used[j] && b[j] == *c) {
            b_used[j] = true;
            a_matched.push(*c);
        }
    }
    let m = a_matched.len();
    if m == 0 {
        return 0.0;
    }
    let b_matched = b.iter().zip(&b_used).filter(|(_, u)| **u).map(|(c, _)| *c);
    let transpositions = a_matched.iter().zip(b_matched).filter(|(x, y)| **x != *y).count() / 2;
    let m = m as f64;
    let jaro = (m / a.len() as f64 + m / b.len() as f64 + (m - transpositions as f64) / m) / 3.0;
    let prefix = a.iter().zip(b).take(4).take_while(|(x, y)| x == y).count() as f64;
    jaro + prefix * 0.1 * (1.0 - jaro)
}

/// 1 - Levenshtein distance / the longer length.
pub fn levenshtein(a: &[char], b: &[char]) -> f64 {
    let longest = a.len().max(b.len());
    if longest == 0 {
        return 1.0;
    }
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.iter().enumerate() {
        let mut diagonal = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let next = (diagonal + usize::from(ca != cb)).min(row[j] + 1).min(row[j + 1] + 1);
            diagonal = row[j + 1];
            row[j + 1] = next;
        }
    }
    1.0 - row[b.len()] as f64 / longest as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Titles that share some words, all words, or none, in two languages.
    const TEXTS: [&str; 9] = [
        "",
        "Financial managers",
        "Financial Management and Policy",
        "Software engineers and designers",
        "Ingénieurs en logiciel",
        "Air traffic control officer",
        "control of air traffic",
        "managers of financial software",
        "Economics Services research",
    ];

    fn prep(s: &str) -> Prepared {
        let n = Normalize::default();
        Prepared::new(&n.apply(s), &n.stop_set(), false)
    }
    fn chars(s: &str) -> Vec<char> {
        s.chars().collect()
    }

    #[test]
    fn normalises_case_accents_punctuation_and_inclusive_endings() {
        let n = Normalize::default();
        assert_eq!(n.apply("Officier·ère du Génie  aérospatial"), "officier du genie aerospatial");
        assert_eq!(n.apply("Air Traffic Control(AI)"), "air traffic control ai");
        assert_eq!(n.apply("Aircraft Maintenance Engineer – Avionics"), "aircraft maintenance engineer avionics");
        assert_eq!(prep("Directeurs et directrices des finances").tokens, ["directeurs", "directrices", "finances"]);
    }

    #[test]
    fn stems_bring_word_families_together() {
        for family in [
            ["managers", "management", "manager"],
            ["auditors", "auditing", "audit"],
            ["engineers", "engineering", "engineer"],
            ["economists", "economics", "economist"],
            ["translators", "translation", "translator"],
        ] {
            let stems: Vec<String> = family.iter().map(|w| stem(w)).collect();
            assert!(stems.iter().all(|s| *s == stems[0]), "{stems:?}");
        }
        assert_ne!(stem("nurses"), stem("nations"));
    }

    #[test]
    fn token_set_is_the_ratio_of_the_joined_words() {
        // The definition: the shared words joined, each side's own words joined, and the
        // best of three ratios of texts made from them.
        fn joined(a: &Prepared, b: &Prepared) -> f64 {
            if a.tokens.is_empty() || b.tokens.is_empty() {
                return 0.0;
            }
            let common: Vec<&String> = a.tokens.iter().filter(|t| b.tokens.contains(t)).collect();
            let own = |x: &Prepared, y: &Prepared| {
                x.tokens.iter().filter(|t| !y.tokens.contains(t)).cloned().collect::<Vec<_>>().join(" ")
            };
            let (diff_a, diff_b) = (own(a, b), own(b, a));
            let sect = common.iter().map(|t| t.as_str()).collect::<Vec<_>>().join(" ");
            if common.is_empty() {
                return ratio(&chars(&diff_a), &chars(&diff_b));
            }
            if diff_a.is_empty() || diff_b.is_empty() {
                return 1.0;
            }
            let (with_a, with_b) = (format!("{sect} {diff_a}"), format!("{sect} {diff_b}"));
            let r = |x: &str, y: &str| ratio(&chars(x), &chars(y));
            r(&sect, &with_a).max(r(&sect, &with_b)).max(r(&with_a, &with_b))
        }
        for a in TEXTS {
            for b in TEXTS {
                let (pa, pb) = (prep(a), prep(b));
                assert!((token_set(&pa, &pb) - joined(&pa, &pb)).abs() < 1e-12, "{a:?} / {b:?}");
            }
        }
    }

    /// ASCII normalised by a lookup as by the accent table and Unicode's classes and case
    /// mapping, for every ASCII character between letters, under each setting.
    #[test]
    fn ascii_normalises_as_every_character_does() {
        for (case, punctuation) in [(true, true), (true, false), (false, true), (false, false)] {
            let n = Normalize { case, punctuation, ..Normalize::default() };
            for c in (0u8..128).map(char::from) {
                let text = format!("A{c}b É{c}");
                assert_eq!(
                    n.apply(&text),
                    n.normalised(&text, false),
                    "{text:?} case {case} punctuation {punctuation}"
                );
            }
        }
    }

    /// TF-IDF and the token-sort ratio as their definitions compute them, to the last bit:
    /// the shared words' squared weights summed in word order over the two lengths, and the
    /// ratio of the sorted words joined.
    #[test]
    fn tfidf_and_token_sort_are_their_definitions() {
        let prepared: Vec<Prepared> = TEXTS.iter().map(|t| prep(t)).collect();
        let weights = WordWeights::new(&prepared);
        let norm = |p: &Prepared| p.tokens.iter().map(|t| weights.get(t).powi(2)).sum::<f64>().sqrt();
        for a in &prepared {
            for b in &prepared {
                let (na, nb) = (norm(a), norm(b));
                let expected = if na == 0.0 || nb == 0.0 {
                    0.0
                } else {
                    let shared: f64 = a
                        .tokens
                        .iter()
                        .filter(|t| b.tokens.binary_search(t).is_ok())
                        .map(|t| weights.get(t).powi(2))
                        .sum();
                    (shared / (na * nb)).min(1.0)
                };
                assert_eq!(tfidf(a, b, &weights).to_bits(), expected.to_bits(), "{:?} / {:?}", a.tokens, b.tokens);
                let (ja, jb) = (chars(&a.tokens.join(" ")), chars(&b.tokens.join(" ")));
                let sorted = if ja.is_empty() || jb.is_empty() { 0.0 } else { ratio(&ja, &jb) };
                assert_eq!(token_sort(a, b), sorted, "{:?} / {:?}", a.tokens, b.tokens);
            }
        }
    }

    #[test]
    fn subsequence_is_exact_across_machine_words() {
        fn slow(a: &[char], b: &[char]) -> usize {
            let mut t = vec![vec![0usize; b.len() + 1]; a.len() + 1];
            for i in 0..a.len() {
                for j in 0..b.len() {
                    t[i + 1][j + 1] = if a[i] == b[j] { t[i][j] + 1 } else { t[i][j + 1].max(t[i + 1][j]) };
                }
            }
            t[a.len()][b.len()]
        }
        let texts = [
            "",
            "a",
            "kitten",
            "sitting",
            "the quick brown fox jumps over the lazy dog and keeps running past the river bank until dusk",
            "quick brown dogs jump over lazy foxes by the river bank while the sun sets slowly behind the hills of town",
            &"abcde".repeat(40),
            &"edcba".repeat(27),
        ];
        for a in &texts {
            for b in &texts {
                assert_eq!(lcs_len(&chars(a), &chars(b)), slow(&chars(a), &chars(b)), "{a:?} / {b:?}");
            }
        }
    }

    #[test]
    fn scorers_agree_with_their_definitions() {
        assert!((levenshtein(&chars("kitten"), &chars("sitting")) - (1.0 - 3.0 / 7.0)).abs() < 1e-12);
        assert!((jaro_winkler(&chars("martha"), &chars("marhta")) - 0.961_111).abs() < 1e-5);
        assert!((jaro_winkler(&chars("dixon"), &chars("dicksonx")) - 0.813_333).abs() < 1e-5);
        assert_eq!(token_set(&prep("Financial managers"), &prep("managers, financial")), 1.0);
        // Every word of the shorter in the longer: 1.
        assert_eq!(token_set(&prep("Software engineers"), &prep("Software engineers and designers")), 1.0);
        let partial = token_set(&prep("Financial managers"), &prep("Financial Management"));
        assert!(partial > 0.8 && partial < 1.0, "{partial}");
        assert_eq!(
            token_set(&prep("Legislators"), &prep("Air traffic control")),
            ratio(&chars("legislators"), &chars("air control traffic"))
        );
        assert!(token_sort(&prep("b a"), &prep("a b")) == 1.0);
        // A rare shared word outweighs a common one.
        let candidates =
            [prep("Economics Services"), prep("Operational Services"), prep("Technical Services"), prep("Research")];
        let w = WordWeights::new(&candidates);
        let economists = prep("Economics research services");
        assert!(tfidf(&economists, &candidates[0], &w) > tfidf(&economists, &candidates[1], &w));
        assert_eq!(tfidf(&candidates[3], &candidates[3], &w), 1.0);
    }
}
