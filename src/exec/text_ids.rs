//! The distinct values of text arrays numbered in order of first appearance, for the layer
//! writer's dictionaries and the sort step's ranks. A value of up to 12 bytes is whole in its
//! view (zero-padded), so the view is the value: looked up as one number. A longer one is looked
//! up by its text.

use polars::prelude::{InitHashMaps, PlHashMap};
use polars_arrow::array::Utf8ViewArray;

/// The distinct values seen so far, numbered from 0.
pub struct TextIds<'a> {
    short: PlHashMap<u128, u32>,
    long: PlHashMap<&'a str, u32>,
    distinct: Vec<&'a str>,
}

impl<'a> TextIds<'a> {
    /// Room for about `capacity` distinct values.
    pub fn with_capacity(capacity: usize) -> TextIds<'a> {
        TextIds { short: PlHashMap::with_capacity(capacity), long: PlHashMap::new(), distinct: Vec::new() }
    }

    /// The number of value `i` of `text` (not null there): the one it had, or the next.
    #[inline]
    pub fn id(&mut self, text: &'a Utf8ViewArray, i: usize) -> u32 {
        let next = self.distinct.len() as u32;
        let view = text.views()[i];
        let distinct = &mut self.distinct;
        if view.is_inline() {
            *self.short.entry(view.as_u128()).or_insert_with(|| {
                distinct.push(text.value(i));
                next
            })
        } else {
            let value = text.value(i);
            *self.long.entry(value).or_insert_with(|| {
                distinct.push(value);
                next
            })
        }
    }

    /// The distinct values, by their numbers.
    #[inline]
    pub fn distinct(&self) -> &[&'a str] {
        &self.distinct
    }
}
