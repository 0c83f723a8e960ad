//! The shape of a list read: filters, page size and where the previous page ended, and the page
//! that comes back. Every capability's storage trait pages its lists with these.
//!
//! What it must never hold: a column name taken from a request. A [`Predicate`]'s field comes
//! from core's per-resource whitelist ([`crate::kernel::odata`]).

use crate::Result;
use time::OffsetDateTime;

/// A comparison in a list query. `field` is a column name from core's per-resource whitelist
/// ([`crate::kernel::odata`]), never text from a request.
#[derive(Debug, Clone, PartialEq)]
pub struct Predicate {
    pub field: &'static str,
    pub op: Op,
    pub value: Value,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    /// Case-insensitive for text, as Graph's `eq` is for directory properties.
    Eq,
    Ne,
    /// Case-insensitive prefix match.
    StartsWith,
    /// Case-insensitive match of any part of the text. Nothing in the value is a wildcard: a
    /// search for `50%` finds `50%` and nothing else. No index serves it; every row the other
    /// predicates leave is read.
    Contains,
    Ge,
    Gt,
    Le,
    Lt,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Text(String),
    Bool(bool),
    Int(i64),
    Instant(OffsetDateTime),
}

/// Where the previous page ended: the sort key of its last row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cursor {
    pub created: OffsetDateTime,
    pub id: String,
    /// The lowercased text the list was ordered by, when it was ordered by a text column
    /// ([`Order::by`]); `None` when ordered by time.
    pub key: Option<String>,
}

/// The order of a list other than its own (creation time, then id): a column and a direction,
/// always followed by the id so that equal values still page in one fixed order.
///
/// `by` is a column name from core's per-resource whitelist ([`crate::kernel::odata`]), never
/// text from a request; text columns are ordered case-insensitively, by code point.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Order {
    pub by: &'static str,
    pub descending: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ListQuery {
    /// All must hold.
    pub filter: Vec<Predicate>,
    pub top: usize,
    pub after: Option<Cursor>,
    /// `$count=true`: also count every row the filter matches (one `COUNT` with the same
    /// condition, whatever the page).
    pub count: bool,
}

impl Default for ListQuery {
    fn default() -> Self {
        ListQuery {
            filter: Vec::new(),
            top: 100,
            after: None,
            count: false,
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Page<T> {
    pub items: Vec<T>,
    /// Present when more rows follow.
    pub next: Option<Cursor>,
    /// Every row the filter matches, when the query asked for the count.
    pub count: Option<u64>,
}

/// The result of taking a one-use secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Taken<T> {
    /// This caller is the first and only one to use it.
    Fresh(T),
    /// It exists and was used before: a replay.
    Replayed(T),
    Unknown,
}

/// The rows of a paged list read `page_size` at a time, stopping once there are more than
/// `limit` (a caller that refuses those does not read a large tenant whole just to say so).
pub async fn every_page<T, F, Fut>(limit: usize, page_size: usize, mut page: F) -> Result<Vec<T>>
where
    F: FnMut(ListQuery) -> Fut,
    Fut: std::future::Future<Output = Result<Page<T>>>,
{
    let mut out = Vec::new();
    let mut after: Option<Cursor> = None;
    loop {
        let found = page(ListQuery {
            top: page_size,
            after: after.take(),
            ..ListQuery::default()
        })
        .await?;
        out.extend(found.items);
        match found.next {
            Some(next) if out.len() <= limit => after = Some(next),
            _ => return Ok(out),
        }
    }
}
