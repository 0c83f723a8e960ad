//! The OData query options the admin API accepts, turned into a [`ListQuery`].
//!
//! Supported: `$filter` with `eq`, `ne`, `ge`, `gt`, `le`, `lt` and `startswith(…)`, joined by
//! `and` and optionally parenthesised; `$top` (1–999); `$select`; `$skiptoken` (opaque, from
//! `@odata.nextLink`). Anything else is refused with `Request_UnsupportedQuery` naming the
//! option, rather than ignored: a filter that is silently dropped returns the wrong objects.
//!
//! Each resource lists the properties it can filter on ([`FilterField`]); the column names in
//! that list are the only ones that ever reach SQL.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use time::OffsetDateTime;

use crate::kernel::clock::{from_unix_millis, graph_datetime, unix_millis};
use crate::kernel::query::{Cursor, ListQuery, Op, Predicate, Value};
use crate::{Error, Result};

pub const DEFAULT_TOP: usize = 100;
pub const MAX_TOP: usize = 999;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FieldKind {
    Text,
    Bool,
    Instant,
    /// A GUID; compared as text, validated on parse.
    Guid,
    /// A whole number (error codes).
    Integer,
}

/// A property a resource can be filtered on, and the column that holds it.
#[derive(Debug, Clone, Copy)]
pub struct FilterField {
    pub property: &'static str,
    pub column: &'static str,
    pub kind: FieldKind,
}

const fn field(property: &'static str, column: &'static str, kind: FieldKind) -> FilterField {
    FilterField {
        property,
        column,
        kind,
    }
}

pub const USER_FIELDS: &[FilterField] = &[
    field("id", "id", FieldKind::Guid),
    field("userPrincipalName", "user_principal_name", FieldKind::Text),
    field("displayName", "display_name", FieldKind::Text),
    field("mail", "mail", FieldKind::Text),
    field("accountEnabled", "account_enabled", FieldKind::Bool),
    field("userType", "user_type", FieldKind::Text),
    field("createdDateTime", "created", FieldKind::Instant),
];

/// Users in deleted items: a user's text fields and when it was deleted.
pub const DELETED_USER_FIELDS: &[FilterField] = &[
    field("id", "id", FieldKind::Guid),
    field("userPrincipalName", "user_principal_name", FieldKind::Text),
    field("displayName", "display_name", FieldKind::Text),
    field("mail", "mail", FieldKind::Text),
    field("deletedDateTime", "deleted", FieldKind::Instant),
];

pub const GROUP_FIELDS: &[FilterField] = &[
    field("id", "id", FieldKind::Guid),
    field("displayName", "display_name", FieldKind::Text),
    field("mailNickname", "mail_nickname", FieldKind::Text),
    field("securityEnabled", "security_enabled", FieldKind::Bool),
    field(
        "isAssignableToRole",
        "is_assignable_to_role",
        FieldKind::Bool,
    ),
    field("createdDateTime", "created", FieldKind::Instant),
];

pub const APPLICATION_FIELDS: &[FilterField] = &[
    field("id", "id", FieldKind::Guid),
    field("appId", "app_id", FieldKind::Guid),
    field("displayName", "display_name", FieldKind::Text),
    field("createdDateTime", "created", FieldKind::Instant),
];

pub const AUDIT_FIELDS: &[FilterField] = &[
    field("id", "id", FieldKind::Guid),
    field("activityDateTime", "activity_date_time", FieldKind::Instant),
    field("category", "category", FieldKind::Text),
    field(
        "activityDisplayName",
        "activity_display_name",
        FieldKind::Text,
    ),
    field("result", "result", FieldKind::Text),
    field("correlationId", "correlation_id", FieldKind::Guid),
    field("operationType", "operation_type", FieldKind::Text),
    field("initiatedBy/user/id", "initiated_by_id", FieldKind::Guid),
    field("initiatedBy/app/appId", "initiated_by_id", FieldKind::Guid),
];

pub const SIGN_IN_FIELDS: &[FilterField] = &[
    field("id", "id", FieldKind::Guid),
    field("createdDateTime", "created", FieldKind::Instant),
    field("userPrincipalName", "user_principal_name", FieldKind::Text),
    field("userId", "user_id", FieldKind::Guid),
    field("appId", "app_id", FieldKind::Text),
    field("appDisplayName", "app_display_name", FieldKind::Text),
    field("ipAddress", "ip_address", FieldKind::Text),
    field("status/errorCode", "error_code", FieldKind::Integer),
    field(
        "conditionalAccessStatus",
        "conditional_access_status",
        FieldKind::Text,
    ),
    field("correlationId", "correlation_id", FieldKind::Guid),
    field("clientAppUsed", "client_app_used", FieldKind::Text),
];

/// The raw query options of a list request.
#[derive(Debug, Clone, Default)]
pub struct QueryOptions {
    pub filter: Option<String>,
    pub top: Option<String>,
    pub select: Option<String>,
    pub skiptoken: Option<String>,
    /// `$count`: `true` or `false`.
    pub count: Option<String>,
    /// Options present in the request that are not supported (`$orderby`, `$expand`…).
    pub unsupported: Vec<String>,
}

/// A list request ready for the store, plus the properties to keep in each object.
#[derive(Debug, Clone)]
pub struct ListRequest {
    pub query: ListQuery,
    pub select: Option<Vec<String>>,
}

/// Parses the query options of a list request against a resource's filterable fields and its
/// selectable properties.
pub fn parse_list(
    options: &QueryOptions,
    fields: &[FilterField],
    selectable: &[&str],
) -> Result<ListRequest> {
    if let Some(option) = options.unsupported.first() {
        return Err(Error::bad_query(
            option.clone(),
            format!("The query option '{option}' is not supported on this resource."),
        ));
    }
    let top = match &options.top {
        None => DEFAULT_TOP,
        Some(text) => match text.trim().parse::<usize>() {
            Ok(n) if (1..=MAX_TOP).contains(&n) => n,
            _ => {
                return Err(Error::bad_query(
                    "$top",
                    format!(
                        "Invalid value '{text}' for $top: expected a whole number from 1 to {MAX_TOP}."
                    ),
                ));
            }
        },
    };
    let filter = match &options.filter {
        None => Vec::new(),
        Some(text) => parse_filter(text, fields)?,
    };
    let after = options
        .skiptoken
        .as_deref()
        .map(decode_skiptoken)
        .transpose()?;
    let select = options
        .select
        .as_deref()
        .map(|s| parse_select(s, selectable))
        .transpose()?;
    let count = parse_count(options.count.as_deref())?;
    Ok(ListRequest {
        query: ListQuery {
            filter,
            top,
            after,
            count,
        },
        select,
    })
}

/// `$count=true|false` (absent: false). Graph asks for `ConsistencyLevel: eventual` beside it
/// on directory objects; Portcullis counts exactly with or without the header.
pub fn parse_count(text: Option<&str>) -> Result<bool> {
    match text.map(str::trim) {
        None => Ok(false),
        Some(t) if t.eq_ignore_ascii_case("true") => Ok(true),
        Some(t) if t.eq_ignore_ascii_case("false") => Ok(false),
        Some(t) => Err(Error::bad_query(
            "$count",
            format!("Invalid value '{t}' for $count: expected true or false."),
        )),
    }
}

fn parse_select(text: &str, selectable: &[&str]) -> Result<Vec<String>> {
    let mut out = Vec::new();
    for name in text.split(',').map(str::trim) {
        if name.is_empty() {
            return Err(Error::bad_query(
                "$select",
                "$select has an empty property name.",
            ));
        }
        if !selectable.contains(&name) {
            return Err(Error::bad_query(
                "$select",
                format!("Could not find a property named '{name}' to select."),
            ));
        }
        out.push(name.to_string());
    }
    Ok(out)
}

/// Keeps only the selected properties of a JSON object (and its `@odata.*` annotations).
pub fn apply_select(value: serde_json::Value, select: Option<&[String]>) -> serde_json::Value {
    match (value, select) {
        (serde_json::Value::Object(map), Some(names)) => serde_json::Value::Object(
            map.into_iter()
                .filter(|(k, _)| k.starts_with("@odata.") || names.iter().any(|n| n == k))
                .collect(),
        ),
        (value, _) => value,
    }
}

pub fn encode_skiptoken(cursor: &Cursor) -> String {
    URL_SAFE_NO_PAD.encode(format!("{}:{}", unix_millis(cursor.created), cursor.id))
}

pub fn decode_skiptoken(token: &str) -> Result<Cursor> {
    let invalid = || {
        Error::bad_query(
            "$skiptoken",
            "The $skiptoken is not one this server issued; follow @odata.nextLink as given.",
        )
    };
    let bytes = URL_SAFE_NO_PAD
        .decode(token.trim())
        .map_err(|_| invalid())?;
    let text = String::from_utf8(bytes).map_err(|_| invalid())?;
    let (ms, id) = text.split_once(':').ok_or_else(invalid)?;
    let ms: i64 = ms.parse().map_err(|_| invalid())?;
    if id.is_empty() || id.len() > 64 {
        return Err(invalid());
    }
    Ok(Cursor {
        created: from_unix_millis(ms),
        id: id.to_string(),
    })
}

// ---------------------------------------------------------------------------------------------
// $filter

#[derive(Debug, Clone, PartialEq)]
enum Token {
    Ident(String),
    Str(String),
    LParen,
    RParen,
    Comma,
}

fn filter_error(message: impl Into<String>) -> Error {
    Error::bad_query("$filter", message)
}

fn tokenize(text: &str) -> Result<Vec<Token>> {
    let mut tokens = Vec::new();
    let chars: Vec<char> = text.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        match c {
            ' ' | '\t' | '\n' | '\r' => i += 1,
            '(' => {
                tokens.push(Token::LParen);
                i += 1;
            }
            ')' => {
                tokens.push(Token::RParen);
                i += 1;
            }
            ',' => {
                tokens.push(Token::Comma);
                i += 1;
            }
            '\'' => {
                // OData strings double a quote to escape it.
                let mut s = String::new();
                i += 1;
                loop {
                    match chars.get(i) {
                        None => {
                            return Err(filter_error("Unterminated string literal in $filter."));
                        }
                        Some('\'') if chars.get(i + 1) == Some(&'\'') => {
                            s.push('\'');
                            i += 2;
                        }
                        Some('\'') => {
                            i += 1;
                            break;
                        }
                        Some(ch) => {
                            s.push(*ch);
                            i += 1;
                        }
                    }
                }
                tokens.push(Token::Str(s));
            }
            _ => {
                let start = i;
                while i < chars.len()
                    && !matches!(chars[i], ' ' | '\t' | '\n' | '\r' | '(' | ')' | ',' | '\'')
                {
                    i += 1;
                }
                tokens.push(Token::Ident(chars[start..i].iter().collect()));
            }
        }
        if tokens.len() > 200 {
            return Err(filter_error("$filter is too long."));
        }
    }
    Ok(tokens)
}

struct Parser<'a> {
    tokens: Vec<Token>,
    pos: usize,
    fields: &'a [FilterField],
    depth: usize,
}

/// Parses a `$filter` expression into predicates that must all hold.
pub fn parse_filter(text: &str, fields: &[FilterField]) -> Result<Vec<Predicate>> {
    let tokens = tokenize(text)?;
    if tokens.is_empty() {
        return Err(filter_error("$filter is empty."));
    }
    let mut parser = Parser {
        tokens,
        pos: 0,
        fields,
        depth: 0,
    };
    let mut out = Vec::new();
    parser.conjunction(&mut out)?;
    if parser.pos != parser.tokens.len() {
        return Err(filter_error(format!(
            "Unexpected '{}' in $filter.",
            parser.describe(parser.pos)
        )));
    }
    Ok(out)
}

impl Parser<'_> {
    fn describe(&self, pos: usize) -> String {
        match self.tokens.get(pos) {
            Some(Token::Ident(s)) => s.clone(),
            Some(Token::Str(s)) => format!("'{s}'"),
            Some(Token::LParen) => "(".into(),
            Some(Token::RParen) => ")".into(),
            Some(Token::Comma) => ",".into(),
            None => "end of expression".into(),
        }
    }

    fn next(&mut self) -> Option<Token> {
        let t = self.tokens.get(self.pos).cloned();
        self.pos += 1;
        t
    }

    fn expect(&mut self, want: Token) -> Result<()> {
        let at = self.pos;
        match self.next() {
            Some(t) if t == want => Ok(()),
            _ => Err(filter_error(format!(
                "Expected '{}' but found '{}' in $filter.",
                match want {
                    Token::LParen => "(",
                    Token::RParen => ")",
                    Token::Comma => ",",
                    _ => "?",
                },
                self.describe(at)
            ))),
        }
    }

    fn conjunction(&mut self, out: &mut Vec<Predicate>) -> Result<()> {
        self.depth += 1;
        if self.depth > 16 {
            return Err(filter_error("$filter nests too deeply."));
        }
        self.term(out)?;
        while let Some(Token::Ident(word)) = self.tokens.get(self.pos) {
            match word.as_str() {
                "and" => {
                    self.pos += 1;
                    self.term(out)?;
                }
                "or" => {
                    return Err(filter_error(
                        "'or' is not supported in $filter here; make one request per alternative.",
                    ));
                }
                _ => break,
            }
        }
        self.depth -= 1;
        Ok(())
    }

    fn term(&mut self, out: &mut Vec<Predicate>) -> Result<()> {
        let at = self.pos;
        match self.next() {
            Some(Token::LParen) => {
                self.conjunction(out)?;
                self.expect(Token::RParen)
            }
            Some(Token::Ident(word)) if word == "startswith" => {
                self.expect(Token::LParen)?;
                let field = self.property()?;
                if field.kind != FieldKind::Text {
                    return Err(filter_error(format!(
                        "startswith applies to text properties; '{}' is not one.",
                        field.property
                    )));
                }
                self.expect(Token::Comma)?;
                let value = self.literal(field)?;
                self.expect(Token::RParen)?;
                out.push(Predicate {
                    field: field.column,
                    op: Op::StartsWith,
                    value,
                });
                Ok(())
            }
            Some(Token::Ident(word)) if word == "not" => {
                Err(filter_error("'not' is not supported in $filter here."))
            }
            Some(Token::Ident(_)) => {
                self.pos = at;
                let field = self.property()?;
                let op_at = self.pos;
                let op = match self.next() {
                    Some(Token::Ident(op)) => match op.as_str() {
                        "eq" => Op::Eq,
                        "ne" => Op::Ne,
                        "ge" => Op::Ge,
                        "gt" => Op::Gt,
                        "le" => Op::Le,
                        "lt" => Op::Lt,
                        other => {
                            return Err(filter_error(format!(
                                "The operator '{other}' is not supported in $filter; use eq, ne, ge, gt, le, lt or startswith."
                            )));
                        }
                    },
                    _ => {
                        return Err(filter_error(format!(
                            "Expected an operator after '{}' but found '{}'.",
                            field.property,
                            self.describe(op_at)
                        )));
                    }
                };
                if matches!(op, Op::Ge | Op::Gt | Op::Le | Op::Lt)
                    && field.kind != FieldKind::Instant
                {
                    return Err(filter_error(format!(
                        "Range comparisons apply to date-time properties; '{}' is not one.",
                        field.property
                    )));
                }
                let value = self.literal(field)?;
                out.push(Predicate {
                    field: field.column,
                    op,
                    value,
                });
                Ok(())
            }
            _ => Err(filter_error(format!(
                "Expected a comparison but found '{}' in $filter.",
                self.describe(at)
            ))),
        }
    }

    fn property(&mut self) -> Result<FilterField> {
        let at = self.pos;
        match self.next() {
            Some(Token::Ident(name)) => self
                .fields
                .iter()
                .find(|f| f.property == name)
                .copied()
                .ok_or_else(|| {
                    let known: Vec<&str> = self.fields.iter().map(|f| f.property).collect();
                    filter_error(format!(
                        "Filtering on '{name}' is not supported; supported properties: {}.",
                        known.join(", ")
                    ))
                }),
            _ => Err(filter_error(format!(
                "Expected a property name but found '{}' in $filter.",
                self.describe(at)
            ))),
        }
    }

    fn literal(&mut self, field: FilterField) -> Result<Value> {
        let at = self.pos;
        let token = self.next();
        let mismatch = |what: &str| {
            filter_error(format!(
                "'{}' takes {what}; found '{}'.",
                field.property,
                self.describe(at)
            ))
        };
        match (field.kind, token) {
            (FieldKind::Text, Some(Token::Str(s))) => Ok(Value::Text(s)),
            (FieldKind::Text, _) => Err(mismatch("a quoted string such as 'value'")),
            (FieldKind::Guid, Some(Token::Str(s) | Token::Ident(s))) => uuid::Uuid::parse_str(&s)
                .map(|u| Value::Text(u.to_string()))
                .map_err(|_| mismatch("a GUID")),
            (FieldKind::Guid, _) => Err(mismatch("a GUID")),
            (FieldKind::Bool, Some(Token::Ident(s))) if s == "true" => Ok(Value::Bool(true)),
            (FieldKind::Bool, Some(Token::Ident(s))) if s == "false" => Ok(Value::Bool(false)),
            (FieldKind::Bool, _) => Err(mismatch("true or false")),
            (FieldKind::Instant, Some(Token::Ident(s) | Token::Str(s))) => {
                graph_datetime::parse(&s)
                    .map(Value::Instant)
                    .map_err(|_| mismatch("a date-time such as 2026-01-31T00:00:00Z"))
            }
            (FieldKind::Instant, _) => Err(mismatch("a date-time such as 2026-01-31T00:00:00Z")),
            (FieldKind::Integer, Some(Token::Ident(s))) => s
                .parse::<i64>()
                .map(Value::Int)
                .map_err(|_| mismatch("a whole number")),
            (FieldKind::Integer, _) => Err(mismatch("a whole number")),
        }
    }
}

/// A cursor for the row a page ended on.
pub fn cursor(created: OffsetDateTime, id: impl ToString) -> Cursor {
    Cursor {
        created,
        id: id.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filter_with_eq_startswith_and_parentheses() {
        let p = parse_filter(
            "(startswith(displayName,'Jo''n') and accountEnabled eq true) and userType eq 'Member'",
            USER_FIELDS,
        )
        .unwrap();
        assert_eq!(p.len(), 3);
        assert_eq!(p[0].op, Op::StartsWith);
        assert_eq!(p[0].value, Value::Text("Jo'n".into()));
        assert_eq!(p[1].value, Value::Bool(true));
        assert_eq!(p[2].field, "user_type");
    }

    #[test]
    fn refused_filters_name_the_problem() {
        for (text, needle) in [
            ("password eq 'x'", "password"),
            ("displayName eq 'a' or displayName eq 'b'", "'or'"),
            ("displayName eq", "takes a quoted string"),
            ("accountEnabled eq 'yes'", "true or false"),
            ("displayName ge 'a'", "Range"),
            ("startswith(accountEnabled,'a')", "text properties"),
            ("displayName eq 'unterminated", "Unterminated"),
            ("displayName eq 'a')", "Unexpected"),
            ("", "empty"),
        ] {
            let err = parse_filter(text, USER_FIELDS).unwrap_err();
            assert_eq!(err.target(), Some("$filter"), "{text}");
            assert!(err.to_string().contains(needle), "{text}: {err}");
        }
    }

    #[test]
    fn deep_nesting_is_refused_not_overflowed() {
        let text = format!("{}displayName eq 'a'{}", "(".repeat(100), ")".repeat(100));
        assert!(parse_filter(&text, USER_FIELDS).is_err());
    }

    #[test]
    fn top_select_and_skiptoken() {
        let opts = QueryOptions {
            top: Some("0".into()),
            ..Default::default()
        };
        assert_eq!(
            parse_list(&opts, USER_FIELDS, &["id"])
                .unwrap_err()
                .target(),
            Some("$top")
        );
        let opts = QueryOptions {
            select: Some("id,secret".into()),
            ..Default::default()
        };
        assert_eq!(
            parse_list(&opts, USER_FIELDS, &["id"])
                .unwrap_err()
                .target(),
            Some("$select")
        );
        let c = cursor(from_unix_millis(1_700_000_000_123), "abc");
        assert_eq!(decode_skiptoken(&encode_skiptoken(&c)).unwrap(), c);
        assert!(decode_skiptoken("!!").is_err());
    }
}
