//! `$filter` predicates and keyset paging for the list reads.
//!
//! Core chooses the column names (from its per-resource whitelist); this module checks them
//! again against the columns each table really has, so a mismatch between the two is a clear
//! 400 instead of an SQL error, and only ever interpolates those names. Values are always bound.
//!
//! `startswith` is a range on the lowercased column, `lower(col) >= lower(prefix) AND lower(col)
//! < successor`, where the successor is the lowercased prefix with its last character moved one
//! code point up: exactly the values that begin with the prefix, in code-point order, read from
//! the index on `lower(col)` instead of every row through `LIKE` (which neither database can
//! serve from an index when the pattern is a bound value). Both bounds are computed by the
//! database from the bound prefix, so the prefix is lowercased exactly as the index's values
//! were (SQLite folds ASCII only, PostgreSQL follows its locale). Order is by code point on both:
//! SQLite compares text bytewise, and on PostgreSQL the comparison and its index say
//! `COLLATE "C"`, and the indexes of migration 0014 are built that way on both databases, since
//! a locale's collation does not keep prefixes together.
//! Nothing in the prefix is a wildcard: it is a bound value compared, never a pattern.
//!
//! `contains` (any part of the text) is `lower(col) LIKE '%' || lower(value) || '%'` with `%`,
//! `_` and `\` in the value escaped, the same text on both databases. No index serves it: it
//! reads every row the other predicates leave, which is what searching by any part costs. A
//! listing may name a group of text columns searched together ([`Listing::any_name`]): the
//! portal's one search box over a user's names.
//!
//! A list may be ordered other than by its own instant ([`Order`]): by a text column, compared
//! lowercased and by code point like the prefixes above (SQLite folds ASCII only, so names
//! that differ beyond ASCII may sort apart on the two databases), then by id. The page reads
//! that lowercased value back as `sort_key` to make the cursor, so the next page starts exactly
//! after it as the database compares it, whatever either side's idea of lowercase.
//!
//! Paging is by keyset, never by offset: the cursor is the sort key of the last row returned,
//! and the next page starts strictly after it, so rows inserted or deleted between pages neither
//! repeat nor vanish. One row more than asked is fetched to know whether a next page exists.

use crate::db::{self, Row};
use crate::rows;
use crate::{Dialect, SqlStore};
use portcullis_core::Error;
use portcullis_core::kernel::clock::unix_millis;
use portcullis_core::kernel::odata::USER_ANY_NAME;
use portcullis_core::kernel::query::{Cursor, ListQuery, Op, Order, Value};

/// A listable table: its name, the columns a filter may name (and which of them hold text),
/// and how it is ordered.
pub(crate) struct Listing {
    pub table: &'static str,
    pub columns: &'static str,
    /// Columns a predicate may compare, with whether they hold text.
    pub filterable: &'static [(&'static str, Kind)],
    /// Text columns with an index on `lower(col)` in code-point order (migration 0014): on
    /// PostgreSQL their comparisons say `COLLATE "C"` so that the index serves them.
    pub prefix_indexed: &'static [&'static str],
    /// The instant column of the sort key; the id column is always `id`.
    pub sort: &'static str,
    pub descending: bool,
    /// Text columns (never empty) a list may be ordered by instead ([`Order`]).
    pub orderable: &'static [&'static str],
    /// The text columns core's [`USER_ANY_NAME`] searches, any of them; empty where the table
    /// has no such search.
    pub any_name: &'static [&'static str],
    /// A condition every row listed meets, whatever the filter: live users are the rows of
    /// `users` not deleted, deleted users the others.
    pub scope: Option<&'static str>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    Text,
    /// BIGINT: numbers, 0/1 flags and unix-millisecond instants.
    Number,
    /// Not a column of the table: the rows whose `id` the statement selects for a lowercased
    /// text value, bound as its one placeholder `$v` (only `eq`), e.g. an audit entry's targets.
    Via(&'static str),
}

pub(crate) const SIGN_INS: Listing = Listing {
    table: "sign_ins",
    columns: crate::sign_ins::sign_in_columns!(),
    filterable: &[
        ("id", Kind::Text),
        ("created", Kind::Number),
        ("user_principal_name", Kind::Text),
        ("user_id", Kind::Text),
        ("app_id", Kind::Text),
        ("app_display_name", Kind::Text),
        ("ip_address", Kind::Text),
        ("error_code", Kind::Number),
        ("conditional_access_status", Kind::Text),
        ("correlation_id", Kind::Text),
        ("client_app_used", Kind::Text),
    ],
    prefix_indexed: &[],
    sort: "created",
    descending: true,
    orderable: &[],
    any_name: &[],
    scope: None,
};

pub(crate) const USERS: Listing = Listing {
    table: "users",
    columns: rows::user_columns!(),
    filterable: &[
        ("id", Kind::Text),
        ("user_principal_name", Kind::Text),
        ("display_name", Kind::Text),
        ("mail", Kind::Text),
        ("account_enabled", Kind::Number),
        ("user_type", Kind::Text),
        ("created", Kind::Number),
    ],
    prefix_indexed: &["display_name", "mail", "user_principal_name"],
    sort: "created",
    descending: false,
    orderable: &["display_name", "user_principal_name"],
    any_name: &["display_name", "user_principal_name", "mail"],
    scope: Some("deleted IS NULL"),
};

/// Users in deleted items, most recently deleted first.
pub(crate) const DELETED_USERS: Listing = Listing {
    table: "users",
    columns: rows::deleted_user_columns!(),
    filterable: &[
        ("id", Kind::Text),
        ("user_principal_name", Kind::Text),
        ("display_name", Kind::Text),
        ("mail", Kind::Text),
        ("deleted", Kind::Number),
    ],
    prefix_indexed: &["display_name", "mail", "user_principal_name"],
    sort: "deleted",
    descending: true,
    scope: Some("deleted IS NOT NULL"),
    orderable: &[],
    any_name: &[],
};

pub(crate) const GROUPS: Listing = Listing {
    table: "groups",
    columns: rows::group_columns!(),
    filterable: &[
        ("id", Kind::Text),
        ("display_name", Kind::Text),
        ("description", Kind::Text),
        ("mail_nickname", Kind::Text),
        ("security_enabled", Kind::Number),
        ("is_assignable_to_role", Kind::Number),
        ("created", Kind::Number),
    ],
    prefix_indexed: &["display_name", "mail_nickname"],
    sort: "created",
    descending: false,
    orderable: &[],
    any_name: &[],
    scope: None,
};

pub(crate) const APPLICATIONS: Listing = Listing {
    table: "applications",
    columns: rows::application_columns!(),
    filterable: &[
        ("id", Kind::Text),
        ("app_id", Kind::Text),
        ("display_name", Kind::Text),
        ("is_fallback_public_client", Kind::Number),
        ("created", Kind::Number),
    ],
    prefix_indexed: &["display_name"],
    sort: "created",
    descending: false,
    orderable: &[],
    any_name: &[],
    scope: None,
};

pub(crate) const AUDITS: Listing = Listing {
    table: "directory_audits",
    columns: rows::audit_columns!(),
    filterable: &[
        ("id", Kind::Text),
        ("activity_date_time", Kind::Number),
        ("category", Kind::Text),
        ("activity_display_name", Kind::Text),
        ("result", Kind::Text),
        ("correlation_id", Kind::Text),
        ("initiated_by_id", Kind::Text),
        ("operation_type", Kind::Text),
        (
            "target_id",
            Kind::Via("SELECT audit_id FROM directory_audit_targets WHERE target_id = $v"),
        ),
    ],
    prefix_indexed: &[],
    sort: "activity_date_time",
    descending: true,
    orderable: &[],
    any_name: &[],
    scope: None,
};

/// A bound value: the store keeps only text and BIGINT columns.
enum Arg {
    Text(String),
    Number(i64),
}

/// SQL text under construction with its bound values, numbering `$n` as values are added.
struct Sql {
    text: String,
    args: Vec<Arg>,
}

impl Sql {
    fn bind(&mut self, arg: Arg) -> String {
        self.args.push(arg);
        format!("${}", self.args.len())
    }
}

/// The `startswith` condition on `column` for `prefix` (see the module's note).
fn starts_with(sql: &mut Sql, dialect: Dialect, column: &str, prefix: &str) -> String {
    let Some(last) = prefix.chars().last() else {
        // Every value begins with the empty string; a row with no value has none.
        return format!("{column} IS NOT NULL");
    };
    // The last character of the (lowercased) prefix must have a successor that both databases
    // can spell: not the last code point, nor the one before the surrogates (PostgreSQL's
    // `chr` refuses those). Lowercasing never yields either from another character, so a
    // prefix that ends in one of them is matched the old way, by scanning.
    if matches!(last, '\u{D7FF}' | '\u{10FFFF}') {
        let n = sql.bind(Arg::Text(like_prefix(prefix)));
        return format!("lower({column}) LIKE lower({n}) ESCAPE '\\'");
    }
    let n = sql.bind(Arg::Text(prefix.to_string()));
    match dialect {
        Dialect::Sqlite => format!(
            "lower({column}) >= lower({n}) AND lower({column}) < \
             substr(lower({n}), 1, length(lower({n})) - 1) || \
             char(unicode(substr(lower({n}), -1)) + 1)"
        ),
        Dialect::Postgres => format!(
            "lower({column}) COLLATE \"C\" >= lower({n}) AND lower({column}) COLLATE \"C\" < \
             left(lower({n}), -1) || chr(ascii(right(lower({n}), 1)) + 1)"
        ),
    }
}

/// Escapes LIKE's wildcards so that a value matches only itself as a prefix.
fn like_prefix(value: &str) -> String {
    let mut out = like_literal(value);
    out.push('%');
    out
}

/// The value with LIKE's wildcards (and the escape character itself) escaped by `\`.
fn like_literal(value: &str) -> String {
    let mut out = String::with_capacity(value.len() + 1);
    for c in value.chars() {
        if matches!(c, '\\' | '%' | '_') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// The `contains` condition on each of `columns`, any of them, for `part` (see the module's
/// note). The value is bound once, escaped.
fn contains(sql: &mut Sql, columns: &[&str], part: &str) -> String {
    let n = sql.bind(Arg::Text(like_literal(part)));
    let each: Vec<String> = columns
        .iter()
        .map(|column| format!("lower({column}) LIKE '%' || lower({n}) || '%' ESCAPE '\\'"))
        .collect();
    format!("({})", each.join(" OR "))
}

/// What a page is ordered by: the listing's instant, or a text column.
#[derive(Clone, Copy)]
enum SortKey {
    Instant(&'static str),
    Text(&'static str),
}

/// The sort key and direction `order` asks of `listing` (its own without one); a column the
/// listing cannot be ordered by is a 400 naming `$orderby`.
fn sort_of(listing: &Listing, order: Option<Order>) -> Result<(SortKey, bool), Error> {
    let Some(order) = order else {
        return Ok((SortKey::Instant(listing.sort), listing.descending));
    };
    if order.by == listing.sort {
        return Ok((SortKey::Instant(listing.sort), order.descending));
    }
    match listing.orderable.iter().find(|c| **c == order.by) {
        Some(column) => Ok((SortKey::Text(column), order.descending)),
        None => Err(Error::bad_query(
            "$orderby",
            format!("ordering by '{}' is not supported", order.by),
        )),
    }
}

/// The expression a text sort compares: lowercased, by code point (see the module's note).
fn text_key(dialect: Dialect, column: &str) -> String {
    match dialect {
        Dialect::Sqlite => format!("lower({column})"),
        Dialect::Postgres => format!("lower({column}) COLLATE \"C\""),
    }
}

fn comparison(op: Op) -> &'static str {
    match op {
        // Never asked for these: they are conditions of their own above.
        Op::Eq | Op::StartsWith | Op::Contains => "=",
        Op::Ne => "<>",
        Op::Ge => ">=",
        Op::Gt => ">",
        Op::Le => "<=",
        Op::Lt => "<",
    }
}

/// Every row of `listing` that `query`'s filter matches, when `query` asks for the count.
pub(crate) async fn count(
    store: &SqlStore,
    listing: &Listing,
    query: &ListQuery,
) -> Result<Option<u64>, Error> {
    if !query.count {
        return Ok(None);
    }
    let statement = count_statement(store.dialect(), listing, query)?;
    // Counting reads every matching index entry: off the request threads, as a page is.
    let row = store
        .fetch_all_scanning(statement)
        .await?
        .pop()
        .ok_or_else(|| Error::Internal("COUNT answered no row".to_string()))?;
    let n = rows::int(&row, "n")?;
    Ok(Some(u64::try_from(n).unwrap_or(0)))
}

/// One page of rows of `listing` that satisfy `query`, and whether more rows follow.
pub(crate) async fn page(
    store: &SqlStore,
    listing: &Listing,
    query: &ListQuery,
) -> Result<(Vec<Row>, Option<Cursor>), Error> {
    ordered_page(store, listing, query, None).await
}

/// One page like [`page`], in `order` (the listing's own when `None`).
pub(crate) async fn ordered_page(
    store: &SqlStore,
    listing: &Listing,
    query: &ListQuery,
    order: Option<Order>,
) -> Result<(Vec<Row>, Option<Cursor>), Error> {
    let (statement, top) = built(store.dialect(), listing, query, order, Purpose::Page)?;
    let mut found = store.fetch_all_scanning(statement).await?;
    let next = if found.len() > top {
        found.truncate(top);
        let last = found
            .last()
            .ok_or_else(|| Error::Internal("a full page without a last row".to_string()))?;
        let key = match sort_of(listing, order)?.0 {
            SortKey::Instant(_) => None,
            SortKey::Text(_) => Some(rows::text(last, "sort_key")?),
        };
        Some(Cursor {
            created: rows::instant(last, listing.sort)?,
            id: rows::text(last, "id")?,
            key,
        })
    } else {
        None
    };
    Ok((found, next))
}

/// The listable table named `table`, for [`crate::testing::list_plan`].
pub(crate) fn listing(table: &str) -> Option<&'static Listing> {
    [&SIGN_INS, &USERS, &GROUPS, &APPLICATIONS, &AUDITS]
        .into_iter()
        .find(|listing| listing.table == table)
}

/// The statement that reads one page (one row more than the page holds), and the page size.
pub(crate) fn statement(
    dialect: Dialect,
    listing: &Listing,
    query: &ListQuery,
) -> Result<(db::Query, usize), Error> {
    built(dialect, listing, query, None, Purpose::Page)
}

/// The statement that counts every row `query`'s filter matches (`$count`): the page's
/// condition without the cursor, so it runs on the same indexes as the page.
pub(crate) fn count_statement(
    dialect: Dialect,
    listing: &Listing,
    query: &ListQuery,
) -> Result<db::Query, Error> {
    built(dialect, listing, query, None, Purpose::Count).map(|(statement, _)| statement)
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Purpose {
    Page,
    Count,
}

fn built(
    dialect: Dialect,
    listing: &Listing,
    query: &ListQuery,
    order: Option<Order>,
    purpose: Purpose,
) -> Result<(db::Query, usize), Error> {
    let (sort, descending) = sort_of(listing, order)?;
    let mut sql = Sql {
        text: match (purpose, sort) {
            (Purpose::Page, SortKey::Instant(_)) => {
                format!("SELECT {} FROM {}", listing.columns, listing.table)
            }
            (Purpose::Page, SortKey::Text(column)) => format!(
                "SELECT {}, {} AS sort_key FROM {}",
                listing.columns,
                text_key(dialect, column),
                listing.table
            ),
            (Purpose::Count, _) => format!("SELECT COUNT(*) AS n FROM {}", listing.table),
        },
        args: Vec::new(),
    };
    let mut conditions: Vec<String> = listing.scope.map(str::to_string).into_iter().collect();
    for predicate in &query.filter {
        if predicate.field == USER_ANY_NAME && !listing.any_name.is_empty() {
            match (&predicate.value, predicate.op) {
                (Value::Text(part), Op::Contains) => {
                    conditions.push(contains(&mut sql, listing.any_name, part));
                    continue;
                }
                _ => {
                    return Err(Error::bad_query(
                        "$search",
                        "the names are searched for any part of them, with text",
                    ));
                }
            }
        }
        let Some(&(column, kind)) = listing
            .filterable
            .iter()
            .find(|(name, _)| *name == predicate.field)
        else {
            return Err(Error::bad_query(
                "$filter",
                format!("filtering on '{}' is not supported", predicate.field),
            ));
        };
        let condition = match (&predicate.value, predicate.op, kind) {
            (Value::Text(value), Op::Eq, Kind::Via(select)) => {
                let n = sql.bind(Arg::Text(value.trim().to_lowercase()));
                format!("id IN ({})", select.replace("$v", &n))
            }
            (_, _, Kind::Via(_)) => {
                return Err(Error::bad_query(
                    "$filter",
                    format!("'{column}' can only be compared with eq and a text value"),
                ));
            }
            (Value::Text(value), Op::StartsWith, Kind::Text) => {
                starts_with(&mut sql, dialect, column, value)
            }
            (Value::Text(value), Op::Contains, Kind::Text) => contains(&mut sql, &[column], value),
            (Value::Text(value), Op::Eq, Kind::Text) => {
                let n = sql.bind(Arg::Text(value.clone()));
                // Equality is the same in every deterministic collation; the one said here is
                // the one the column's index was built in.
                if dialect == Dialect::Postgres && listing.prefix_indexed.contains(&column) {
                    format!("lower({column}) COLLATE \"C\" = lower({n})")
                } else {
                    format!("lower({column}) = lower({n})")
                }
            }
            // A row with no value is not equal to any value.
            (Value::Text(value), Op::Ne, Kind::Text) => {
                let n = sql.bind(Arg::Text(value.clone()));
                format!("({column} IS NULL OR lower({column}) <> lower({n}))")
            }
            (Value::Text(value), op, Kind::Text) => {
                let n = sql.bind(Arg::Text(value.clone()));
                format!("{column} {} {n}", comparison(op))
            }
            (_, Op::StartsWith | Op::Contains, _) => {
                return Err(Error::bad_query(
                    "$filter",
                    format!("startswith and contains apply to text, and '{column}' is not text"),
                ));
            }
            (Value::Bool(value), op @ (Op::Eq | Op::Ne), Kind::Number) => {
                let n = sql.bind(Arg::Number(i64::from(*value)));
                format!("{column} {} {n}", comparison(op))
            }
            (Value::Int(value), op, Kind::Number) => {
                let n = sql.bind(Arg::Number(*value));
                format!("{column} {} {n}", comparison(op))
            }
            (Value::Instant(value), op, Kind::Number) => {
                let n = sql.bind(Arg::Number(unix_millis(*value)));
                format!("{column} {} {n}", comparison(op))
            }
            _ => {
                return Err(Error::bad_query(
                    "$filter",
                    format!("'{column}' cannot be compared that way with that value"),
                ));
            }
        };
        conditions.push(condition);
    }
    let beyond = if descending { "<" } else { ">" };
    if let Some(after) = query.after.as_ref().filter(|_| purpose == Purpose::Page) {
        // The cursor must be one this order made: a time where time orders, a text key where
        // text does.
        let (key, at) = match (sort, &after.key) {
            (SortKey::Instant(column), None) => (
                column.to_string(),
                sql.bind(Arg::Number(unix_millis(after.created))),
            ),
            (SortKey::Text(column), Some(key)) => {
                (text_key(dialect, column), sql.bind(Arg::Text(key.clone())))
            }
            _ => {
                return Err(Error::bad_query(
                    "$skiptoken",
                    "The $skiptoken was made for another order of this list; follow @odata.nextLink as given.",
                ));
            }
        };
        let id = sql.bind(Arg::Text(after.id.clone()));
        conditions.push(format!(
            "({key} {beyond} {at} OR ({key} = {at} AND id {beyond} {id}))"
        ));
    }
    if !conditions.is_empty() {
        sql.text.push_str(" WHERE ");
        sql.text.push_str(&conditions.join(" AND "));
    }
    // A page of zero rows could never advance; core validates $top, this only keeps the
    // arithmetic sound.
    let top = query.top.max(1);
    if purpose == Purpose::Page {
        let direction = if descending { "DESC" } else { "ASC" };
        let key = match sort {
            SortKey::Instant(column) => column.to_string(),
            SortKey::Text(column) => text_key(dialect, column),
        };
        let limit = sql.bind(Arg::Number(i64::try_from(top).unwrap_or(i64::MAX - 1) + 1));
        sql.text.push_str(&format!(
            " ORDER BY {key} {direction}, id {direction} LIMIT {limit}"
        ));
    }

    let mut statement = db::assembled(sql.text);
    for arg in sql.args {
        statement = match arg {
            Arg::Text(value) => statement.bind(value),
            Arg::Number(value) => statement.bind(value),
        };
    }
    Ok((statement, top))
}

#[cfg(test)]
mod tests {
    use super::{like_literal, like_prefix};

    #[test]
    fn like_wildcards_in_the_value_are_escaped() {
        assert_eq!(like_prefix("50%_off\\"), "50\\%\\_off\\\\%");
        assert_eq!(like_prefix(""), "%");
        assert_eq!(like_literal("a_b%\\"), "a\\_b\\%\\\\");
    }
}
