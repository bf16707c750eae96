//! The column names a JSON source makes (see `json`), found in one pass over its text without
//! building its records: field names are kept, values are only stepped over. Anything this
//! pass does not expect (a record that is not an object, a missing field, a key given twice in
//! one object, malformed JSON) gives `None`, and the caller reads the file the full way, which
//! names the problem.

use crate::config::sources::ReadOptions;
use indexmap::IndexSet;
use serde::de::{DeserializeSeed, Deserializer, Error as _, IgnoredAny, MapAccess, SeqAccess, Visitor};
use std::borrow::Cow;
use std::collections::HashMap;
use std::fmt;

/// The names of the columns of `text` (a document, or JSON lines when `lines`), in the order a
/// read makes them, envelope fields last; `None` where the full read is needed.
pub fn scan(text: &[u8], opts: &ReadOptions, lines: bool) -> Option<Vec<String>> {
    let mut names = IndexSet::new();
    if lines {
        if opts.records.is_some() || !opts.envelope.is_empty() {
            return None;
        }
        for line in text.split(|b| *b == b'\n').filter(|l| !l.iter().all(u8::is_ascii_whitespace)) {
            let mut de = serde_json::Deserializer::from_slice(line);
            Record(&mut names).deserialize(&mut de).ok()?;
            de.end().ok()?;
        }
        return Some(names.into_iter().collect());
    }
    let mut envelope = HashMap::new();
    let mut de = serde_json::Deserializer::from_slice(text);
    match &opts.records {
        None if opts.envelope.is_empty() => Records(&mut names).deserialize(&mut de).ok()?,
        None => return None,
        Some(path) => {
            let path: Vec<&str> = path.split('.').collect();
            let wanted = opts.envelope.iter().map(String::as_str).collect();
            let mut found = false;
            let top =
                Object { path: &path, envelope: wanted, names: &mut names, found: &mut found, kept: &mut envelope };
            top.deserialize(&mut de).ok()?;
            if !found {
                return None;
            }
        }
    }
    de.end().ok()?;
    // The envelope's fields in the order the options give them, each a field of the document
    // and none a field of the records or given twice.
    for field in &opts.envelope {
        for name in envelope.remove(field.as_str())? {
            if !names.insert(name) {
                return None;
            }
        }
    }
    Some(names.into_iter().collect())
}

/// A list of records.
struct Records<'a>(&'a mut IndexSet<String>);

impl<'de> DeserializeSeed<'de> for Records<'_> {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_seq(self)
    }
}

impl<'de> Visitor<'de> for Records<'_> {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a list of records")
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        while seq.next_element_seed(Record(&mut *self.0))?.is_some() {}
        Ok(())
    }
}

/// One record: an object whose fields are columns, nested objects as dotted names.
struct Record<'a>(&'a mut IndexSet<String>);

impl<'de> DeserializeSeed<'de> for Record<'_> {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for Record<'_> {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a record (an object)")
    }
    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<(), A::Error> {
        fields(map, &mut String::new(), self.0).map(|_| ())
    }
}

/// Adds the names of an object's fields under `name` (`name.field`, or the field at the top)
/// to `out`; returns how many fields it has. `name` is a buffer, as it was when this returns:
/// a name is only allocated the first time it is seen, and records repeat their fields.
fn fields<'de, A: MapAccess<'de>>(
    mut map: A,
    name: &mut String,
    out: &mut IndexSet<String>,
) -> Result<usize, A::Error> {
    let base = name.len();
    let mut keys: Vec<Cow<'de, str>> = Vec::new();
    while let Some(key) = map.next_key::<Cow<'de, str>>()? {
        if keys.contains(&key) {
            return Err(A::Error::custom("a key given twice"));
        }
        if base > 0 {
            name.push('.');
        }
        name.push_str(&key);
        map.next_value_seed(Field { name: &mut *name, out: &mut *out })?;
        name.truncate(base);
        keys.push(key);
    }
    Ok(keys.len())
}

/// A field's value: a non-empty object spreads into dotted names; anything else is one column.
struct Field<'a> {
    name: &'a mut String,
    out: &'a mut IndexSet<String>,
}

impl<'de> DeserializeSeed<'de> for Field<'_> {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Field<'_> {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON value")
    }
    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<(), A::Error> {
        // An empty object is one column, at its place among the fields.
        if fields(map, self.name, self.out)? == 0 {
            self.leaf()
        } else {
            Ok(())
        }
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        self.leaf()
    }
    fn visit_bool<E>(self, _: bool) -> Result<(), E> {
        self.leaf()
    }
    fn visit_i64<E>(self, _: i64) -> Result<(), E> {
        self.leaf()
    }
    fn visit_u64<E>(self, _: u64) -> Result<(), E> {
        self.leaf()
    }
    fn visit_f64<E>(self, _: f64) -> Result<(), E> {
        self.leaf()
    }
    fn visit_str<E>(self, _: &str) -> Result<(), E> {
        self.leaf()
    }
    fn visit_unit<E>(self) -> Result<(), E> {
        self.leaf()
    }
}

impl Field<'_> {
    fn leaf<E>(self) -> Result<(), E> {
        if !self.out.contains(self.name.as_str()) {
            self.out.insert(self.name.clone());
        }
        Ok(())
    }
}

/// An object on the way down `path` to the records (the document itself when nothing of the
/// path is walked yet), keeping the names of the `envelope` fields it holds (at the top only).
struct Object<'p, 'a> {
    path: &'p [&'p str],
    envelope: Vec<&'p str>,
    names: &'a mut IndexSet<String>,
    found: &'a mut bool,
    kept: &'a mut HashMap<String, Vec<String>>,
}

impl<'de> DeserializeSeed<'de> for Object<'_, '_> {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for Object<'_, '_> {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("an object")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let Object { path, envelope, names, found, kept } = self;
        let mut seen = Vec::new();
        while let Some(key) = map.next_key::<Cow<'de, str>>()? {
            if seen.contains(&key) {
                return Err(A::Error::custom("a key given twice"));
            }
            seen.push(key.clone());
            if key == path[0] {
                if path.len() == 1 {
                    *found = true;
                    map.next_value_seed(Records(&mut *names))?;
                } else {
                    let below = Object {
                        path: &path[1..],
                        envelope: vec![],
                        names: &mut *names,
                        found: &mut *found,
                        kept: &mut *kept,
                    };
                    map.next_value_seed(below)?;
                }
            } else if envelope.contains(&key.as_ref()) {
                let mut flat = IndexSet::new();
                map.next_value_seed(Field { name: &mut key.to_string(), out: &mut flat })?;
                kept.insert(key.to_string(), flat.into_iter().collect());
            } else {
                map.next_value::<IgnoredAny>()?;
            }
        }
        Ok(())
    }
}
