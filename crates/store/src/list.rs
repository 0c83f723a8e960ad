//! `$filter` predicates and keyset paging for the list reads.
//!
//! Core chooses the column names (from its per-resource whitelist); this module checks them
//! again against the columns each table really has, so a mismatch between the two is a clear
//! 400 instead of an SQL error, and only ever interpolates those names. Values are always bound.
//!
//! Paging is by keyset, never by offset: the cursor is the sort key of the last row returned,
//! and the next page starts strictly after it, so rows inserted or deleted between pages neither
//! repeat nor vanish. One row more than asked is fetched to know whether a next page exists.

use crate::SqlStore;
use crate::db::{self, Row};
use crate::rows;
use portcullis_core::Error;
use portcullis_core::kernel::clock::unix_millis;
use portcullis_core::kernel::query::{Cursor, ListQuery, Op, Value};

/// A listable table: its name, the columns a filter may name (and which of them hold text),
/// and how it is ordered.
pub(crate) struct Listing {
    pub table: &'static str,
    pub columns: &'static str,
    /// Columns a predicate may compare, with whether they hold text.
    pub filterable: &'static [(&'static str, Kind)],
    /// The instant column of the sort key; the id column is always `id`.
    pub sort: &'static str,
    pub descending: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    Text,
    /// BIGINT: numbers, 0/1 flags and unix-millisecond instants.
    Number,
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
    sort: "created",
    descending: true,
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
    sort: "created",
    descending: false,
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
    sort: "created",
    descending: false,
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
    sort: "created",
    descending: false,
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
    ],
    sort: "activity_date_time",
    descending: true,
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

/// Escapes LIKE's wildcards so that a value matches only itself as a prefix.
fn like_prefix(value: &str) -> String {
    let mut out = String::with_capacity(value.len() + 1);
    for c in value.chars() {
        if matches!(c, '\\' | '%' | '_') {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('%');
    out
}

fn comparison(op: Op) -> &'static str {
    match op {
        Op::Eq | Op::StartsWith => "=",
        Op::Ne => "<>",
        Op::Ge => ">=",
        Op::Gt => ">",
        Op::Le => "<=",
        Op::Lt => "<",
    }
}

/// One page of rows of `listing` that satisfy `query`, and whether more rows follow.
pub(crate) async fn page(
    store: &SqlStore,
    listing: &Listing,
    query: &ListQuery,
) -> Result<(Vec<Row>, Option<Cursor>), Error> {
    let mut sql = Sql {
        text: format!("SELECT {} FROM {}", listing.columns, listing.table),
        args: Vec::new(),
    };
    let mut conditions = Vec::new();
    for predicate in &query.filter {
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
            (Value::Text(value), Op::StartsWith, Kind::Text) => {
                let n = sql.bind(Arg::Text(like_prefix(value)));
                format!("lower({column}) LIKE lower({n}) ESCAPE '\\'")
            }
            (Value::Text(value), Op::Eq, Kind::Text) => {
                let n = sql.bind(Arg::Text(value.clone()));
                format!("lower({column}) = lower({n})")
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
            (_, Op::StartsWith, _) => {
                return Err(Error::bad_query(
                    "$filter",
                    format!("startswith applies to text, and '{column}' is not text"),
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
    if let Some(after) = &query.after {
        let sort = listing.sort;
        let beyond = if listing.descending { "<" } else { ">" };
        let at = sql.bind(Arg::Number(unix_millis(after.created)));
        let id = sql.bind(Arg::Text(after.id.clone()));
        conditions.push(format!(
            "({sort} {beyond} {at} OR ({sort} = {at} AND id {beyond} {id}))"
        ));
    }
    if !conditions.is_empty() {
        sql.text.push_str(" WHERE ");
        sql.text.push_str(&conditions.join(" AND "));
    }
    let direction = if listing.descending { "DESC" } else { "ASC" };
    // A page of zero rows could never advance; core validates $top, this only keeps the
    // arithmetic sound.
    let top = query.top.max(1);
    let limit = sql.bind(Arg::Number(i64::try_from(top).unwrap_or(i64::MAX - 1) + 1));
    sql.text.push_str(&format!(
        " ORDER BY {sort} {direction}, id {direction} LIMIT {limit}",
        sort = listing.sort
    ));

    let mut statement = db::assembled(sql.text);
    for arg in sql.args {
        statement = match arg {
            Arg::Text(value) => statement.bind(value),
            Arg::Number(value) => statement.bind(value),
        };
    }
    let mut found = store.fetch_all_scanning(statement).await?;
    let next = if found.len() > top {
        found.truncate(top);
        let last = found
            .last()
            .ok_or_else(|| Error::Internal("a full page without a last row".to_string()))?;
        Some(Cursor {
            created: rows::instant(last, listing.sort)?,
            id: rows::text(last, "id")?,
        })
    } else {
        None
    };
    Ok((found, next))
}

#[cfg(test)]
mod tests {
    use super::like_prefix;

    #[test]
    fn like_wildcards_in_the_value_are_escaped() {
        assert_eq!(like_prefix("50%_off\\"), "50\\%\\_off\\\\%");
        assert_eq!(like_prefix(""), "%");
    }
}
