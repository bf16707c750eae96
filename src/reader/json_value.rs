//! A JSON value as a read of a source holds it: texts and keys borrowed from the file's bytes
//! where they hold no escape, an object's fields a list in the document's order. Parsed by
//! serde_json (the same syntax, numbers and errors as `serde_json::Value`), without a map and
//! a `String` per field of every record; a key given twice keeps its first place and its last
//! value, as `serde_json::Value` (ordered) does.

use serde::de::{Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::{Number, Value};
use std::borrow::Cow;
use std::fmt;

/// Objects of more fields than this find a repeated key by hashing rather than by looking.
const SCAN_FIELDS: usize = 32;

#[derive(Debug, Clone, PartialEq)]
pub enum Json<'a> {
    Null,
    Bool(bool),
    Number(Number),
    Text(Cow<'a, str>),
    List(Vec<Json<'a>>),
    Object(Vec<(Cow<'a, str>, Json<'a>)>),
}

impl<'a> Json<'a> {
    /// Parses `text` (one JSON value, nothing after it but white space). Text that is UTF-8
    /// throughout (checked at once, many bytes at a time) is parsed as text, whose strings
    /// serde_json then takes without checking each again; any other is parsed as bytes, for
    /// serde_json's own error and where it is.
    pub fn parse(text: &'a [u8]) -> serde_json::Result<Json<'a>> {
        match simdutf8::basic::from_utf8(text) {
            Ok(text) => serde_json::from_str(text),
            Err(_) => serde_json::from_slice(text),
        }
    }

    pub fn as_bool(&self) -> Option<bool> {
        match self {
            Json::Bool(b) => Some(*b),
            _ => None,
        }
    }

    pub fn as_i64(&self) -> Option<i64> {
        match self {
            Json::Number(n) => n.as_i64(),
            _ => None,
        }
    }

    pub fn as_f64(&self) -> Option<f64> {
        match self {
            Json::Number(n) => n.as_f64(),
            _ => None,
        }
    }

    /// What kind of value this is, for messages ("a number").
    pub fn kind_name(&self) -> &'static str {
        match self {
            Json::Null => "null",
            Json::Bool(_) => "a boolean",
            Json::Number(_) => "a number",
            Json::Text(_) => "a text",
            Json::List(_) => "a list",
            Json::Object(_) => "an object",
        }
    }

    /// The same value as a `serde_json::Value`.
    pub fn to_value(&self) -> Value {
        match self {
            Json::Null => Value::Null,
            Json::Bool(b) => Value::Bool(*b),
            Json::Number(n) => Value::Number(n.clone()),
            Json::Text(s) => Value::String(s.to_string()),
            Json::List(items) => Value::Array(items.iter().map(Json::to_value).collect()),
            Json::Object(fields) => Value::Object(fields.iter().map(|(k, v)| (k.to_string(), v.to_value())).collect()),
        }
    }

    /// A `serde_json::Value` as a value of this kind, borrowing its texts.
    pub fn of_value(value: &'a Value) -> Json<'a> {
        match value {
            Value::Null => Json::Null,
            Value::Bool(b) => Json::Bool(*b),
            Value::Number(n) => Json::Number(n.clone()),
            Value::String(s) => Json::Text(Cow::Borrowed(s)),
            Value::Array(items) => Json::List(items.iter().map(Json::of_value).collect()),
            Value::Object(fields) => {
                Json::Object(fields.iter().map(|(k, v)| (Cow::Borrowed(k.as_str()), Json::of_value(v))).collect())
            }
        }
    }
}

impl<'de> Deserialize<'de> for Json<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Json<'de>, D::Error> {
        d.deserialize_any(JsonVisitor)
    }
}

/// A key, borrowed where it holds no escape.
struct Key<'a>(Cow<'a, str>);

impl<'de> Deserialize<'de> for Key<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Key<'de>, D::Error> {
        match d.deserialize_str(JsonVisitor)? {
            Json::Text(s) => Ok(Key(s)),
            // A key is always a text in JSON.
            other => Err(serde::de::Error::custom(format!("a key that is {}", other.kind_name()))),
        }
    }
}

struct JsonVisitor;

impl<'de> Visitor<'de> for JsonVisitor {
    type Value = Json<'de>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("any valid JSON value")
    }
    fn visit_bool<E>(self, b: bool) -> Result<Json<'de>, E> {
        Ok(Json::Bool(b))
    }
    fn visit_i64<E>(self, n: i64) -> Result<Json<'de>, E> {
        Ok(Json::Number(n.into()))
    }
    fn visit_u64<E>(self, n: u64) -> Result<Json<'de>, E> {
        Ok(Json::Number(n.into()))
    }
    fn visit_f64<E>(self, n: f64) -> Result<Json<'de>, E> {
        // As serde_json::Value: a number that is not finite is null.
        Ok(Number::from_f64(n).map_or(Json::Null, Json::Number))
    }
    fn visit_borrowed_str<E>(self, s: &'de str) -> Result<Json<'de>, E> {
        Ok(Json::Text(Cow::Borrowed(s)))
    }
    fn visit_str<E>(self, s: &str) -> Result<Json<'de>, E> {
        Ok(Json::Text(Cow::Owned(s.to_string())))
    }
    fn visit_string<E>(self, s: String) -> Result<Json<'de>, E> {
        Ok(Json::Text(Cow::Owned(s)))
    }
    fn visit_unit<E>(self) -> Result<Json<'de>, E> {
        Ok(Json::Null)
    }
    fn visit_none<E>(self) -> Result<Json<'de>, E> {
        Ok(Json::Null)
    }
    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Json<'de>, D::Error> {
        Deserialize::deserialize(d)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Json<'de>, A::Error> {
        let mut items = Vec::with_capacity(seq.size_hint().unwrap_or(0));
        while let Some(item) = seq.next_element()? {
            items.push(item);
        }
        Ok(Json::List(items))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Json<'de>, A::Error> {
        let mut fields: Vec<(Cow<'de, str>, Json<'de>)> = Vec::new();
        let mut index: Option<std::collections::HashMap<Cow<'de, str>, usize>> = None;
        while let Some(Key(key)) = map.next_key()? {
            let value: Json<'de> = map.next_value()?;
            if fields.len() == SCAN_FIELDS && index.is_none() {
                index = Some(fields.iter().enumerate().map(|(i, (k, _))| (k.clone(), i)).collect());
            }
            let before = match &mut index {
                Some(index) => match index.get(&key) {
                    Some(&i) => Some(i),
                    None => {
                        index.insert(key.clone(), fields.len());
                        None
                    }
                },
                None => fields.iter().position(|(k, _)| *k == key),
            };
            match before {
                Some(i) => fields[i].1 = value,
                None => fields.push((key, value)),
            }
        }
        Ok(Json::Object(fields))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Generated JSON documents parse to what `serde_json::Value` makes of them.
    #[test]
    fn parses_as_serde_json_values_do() {
        let texts = [
            r#"[{"a": 1, "b": -2, "c": 2.5, "d": 1e3, "e": 18446744073709551615, "f": -9223372036854775808}]"#,
            r#"{"k": "plain", "e": "esc\"aped\\ \u00e9 \n", "k": "again", "n": null, "t": true, "f": false}"#,
            r#"{"nested": {"x": [1, [2, {"y": "z"}]], "empty": {}, "list": []}, "x": 0.1}"#,
            "  [ ]  ",
            r#""just text""#,
        ];
        for text in texts {
            let ours = Json::parse(text.as_bytes()).expect("parses");
            let theirs: Value = serde_json::from_str(text).expect("parses");
            assert_eq!(ours.to_value(), theirs, "{text}");
            assert_eq!(ours.to_value().to_string(), theirs.to_string(), "{text}");
            assert_eq!(Json::of_value(&theirs), ours, "{text}");
        }
        // Many fields, some repeated: the first place, the last value.
        let mut text = String::from("{");
        for i in 0..100 {
            text.push_str(&format!("\"k{}\": {i},", i % 70));
        }
        text.push_str("\"end\": 0}");
        let ours = Json::parse(text.as_bytes()).expect("parses");
        let theirs: Value = serde_json::from_str(&text).expect("parses");
        assert_eq!(ours.to_value(), theirs);
        assert_eq!(ours.to_value().to_string(), theirs.to_string());
        // Malformed text fails as serde_json fails, at the same place.
        for bad in ["[1, 2", "{\"a\" 1}", "[1] x", "{\"a\": tru}"] {
            let ours = Json::parse(bad.as_bytes()).expect_err("malformed");
            let theirs = serde_json::from_str::<Value>(bad).expect_err("malformed");
            assert_eq!(ours.to_string(), theirs.to_string(), "{bad}");
        }
        // So does text that is not UTF-8, in a string or out of one.
        for bad in [&b"{\"a\": \"caf\xE9\"}"[..], b"[1,\n \xE9]"] {
            let ours = Json::parse(bad).expect_err("not UTF-8");
            let theirs = serde_json::from_slice::<Value>(bad).expect_err("not UTF-8");
            assert_eq!(ours.to_string(), theirs.to_string());
            assert!(ours.line() > 0);
        }
    }
}
