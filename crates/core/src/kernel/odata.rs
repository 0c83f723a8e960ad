//! The OData query options the admin API accepts, turned into a [`ListQuery`].
//!
//! Supported: `$filter` with `eq`, `ne`, `ge`, `gt`, `le`, `lt` and `startswith(…)`, joined by
//! `and` and optionally parenthesised; on a collection a resource lists ([`FieldKind::Element`]),
//! the lambda `collection/any(x: x/property eq 'value')` and no other lambda form; `$top`
//! (1–999); `$select`; `$skiptoken` (opaque, from `@odata.nextLink`); and, on the resources
//! that say so ([`parse_ordered_list`]), `$search` (`"property:text"` clauses joined by `AND`,
//! each matching any part of the property) and `$orderby` (one property, `asc` or `desc`).
//! Anything else is refused with `Request_UnsupportedQuery` naming the option, rather than
//! ignored: a filter that is silently dropped returns the wrong objects.
//!
//! Each resource lists the properties it can filter on ([`FilterField`]); the column names in
//! that list are the only ones that ever reach SQL.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use time::OffsetDateTime;

use crate::kernel::clock::{from_unix_millis, graph_datetime, unix_millis};
use crate::kernel::query::{Cursor, ListQuery, Op, Order, Predicate, Value};
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
    /// A text property of each element of a collection (`targetResources/id`), filtered only
    /// through Graph's lambda `targetResources/any(t: t/id eq 'value')`; the column holds one row
    /// per element. Compared exactly, ignoring case.
    Element,
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

/// The user properties `$search` looks into (any part of the text).
pub const USER_SEARCH_FIELDS: &[FilterField] = &[
    field("displayName", "display_name", FieldKind::Text),
    field("userPrincipalName", "user_principal_name", FieldKind::Text),
    field("mail", "mail", FieldKind::Text),
];

/// Not a property: "the display name, the user principal name or the mail contains…", the
/// portal's one search box. The store reads this name as those three columns, any of them.
pub const USER_ANY_NAME: &str = "any_name";

/// The user properties a list can be ordered by (`$orderby`), besides its own order.
pub const USER_ORDER_FIELDS: &[FilterField] = &[
    field("displayName", "display_name", FieldKind::Text),
    field("userPrincipalName", "user_principal_name", FieldKind::Text),
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
    field("targetResources/id", "target_id", FieldKind::Element),
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
    /// `$search`: taken only where [`parse_ordered_list`] is used.
    pub search: Option<String>,
    /// `$orderby`: taken only where [`parse_ordered_list`] is used.
    pub orderby: Option<String>,
    /// Options present in the request that are not supported (`$orderby`, `$expand`…).
    pub unsupported: Vec<String>,
}

/// A list request ready for the store, plus the properties to keep in each object.
#[derive(Debug, Clone)]
pub struct ListRequest {
    pub query: ListQuery,
    pub select: Option<Vec<String>>,
    /// `$orderby`, where the resource takes it; `None`: the list's own order.
    pub order: Option<Order>,
}

/// Parses the query options of a list request against a resource's filterable fields and its
/// selectable properties.
pub fn parse_list(
    options: &QueryOptions,
    fields: &[FilterField],
    selectable: &[&str],
) -> Result<ListRequest> {
    let refused = options.unsupported.first().cloned().or_else(|| {
        [
            ("$search", options.search.is_some()),
            ("$orderby", options.orderby.is_some()),
        ]
        .into_iter()
        .find(|(_, given)| *given)
        .map(|(name, _)| name.to_string())
    });
    if let Some(option) = refused {
        return Err(Error::bad_query(
            option.clone(),
            format!("The query option '{option}' is not supported on this resource."),
        ));
    }
    parse_list_options(options, fields, selectable)
}

/// Parses a list request like [`parse_list`], on a resource that can also be searched (in the
/// `searchable` properties) and ordered (by one of the `sortable` ones).
///
/// Graph asks for `ConsistencyLevel: eventual` beside `$search` and `$orderby` on directory
/// objects, as beside `$count`; Portcullis answers exactly with or without it.
pub fn parse_ordered_list(
    options: &QueryOptions,
    fields: &[FilterField],
    selectable: &[&str],
    searchable: &[FilterField],
    sortable: &[FilterField],
) -> Result<ListRequest> {
    if let Some(option) = options.unsupported.first() {
        return Err(Error::bad_query(
            option.clone(),
            format!("The query option '{option}' is not supported on this resource."),
        ));
    }
    let mut request = parse_list_options(options, fields, selectable)?;
    if let Some(text) = &options.search {
        request.query.filter.extend(parse_search(text, searchable)?);
    }
    request.order = options
        .orderby
        .as_deref()
        .map(|text| parse_orderby(text, sortable))
        .transpose()?;
    // A page link made under one order means nothing under another.
    if let Some(after) = &request.query.after {
        let keyed = request.order.is_some_and(|o| {
            sortable
                .iter()
                .any(|f| f.column == o.by && f.kind == FieldKind::Text)
        });
        if after.key.is_some() != keyed {
            return Err(skiptoken_error());
        }
    }
    Ok(request)
}

fn parse_list_options(
    options: &QueryOptions,
    fields: &[FilterField],
    selectable: &[&str],
) -> Result<ListRequest> {
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
        order: None,
    })
}

fn search_error(message: impl Into<String>) -> Error {
    Error::bad_query("$search", message)
}

/// `$search`: one or more `"property:text"` clauses joined by `AND`, as Graph writes them for
/// directory objects. Each clause matches the objects whose property holds the text anywhere,
/// case-insensitively (Graph matches the start of each word; any part finds those and more).
/// `OR`, `NOT`, and clauses without quotes or a property are refused by name, never guessed at.
pub fn parse_search(text: &str, searchable: &[FilterField]) -> Result<Vec<Predicate>> {
    let known = || {
        searchable
            .iter()
            .map(|f| f.property)
            .collect::<Vec<_>>()
            .join(", ")
    };
    let mut rest = text.trim();
    if rest.is_empty() {
        return Err(search_error("$search is empty."));
    }
    let mut out = Vec::new();
    loop {
        let Some(quoted) = rest.strip_prefix('"') else {
            return Err(search_error(format!(
                "$search takes quoted clauses such as \"displayName:joni\"; found '{rest}'."
            )));
        };
        let Some((clause, after)) = quoted.split_once('"') else {
            return Err(search_error("Unterminated quote in $search."));
        };
        let Some((property, value)) = clause.split_once(':') else {
            return Err(search_error(format!(
                "Each $search clause names a property, as in \"displayName:{clause}\"."
            )));
        };
        let Some(field) = searchable.iter().find(|f| f.property == property.trim()) else {
            return Err(search_error(format!(
                "Searching '{}' is not supported; searchable properties: {}.",
                property.trim(),
                known()
            )));
        };
        if value.is_empty() {
            return Err(search_error(format!(
                "The $search clause for '{}' has no text to look for.",
                field.property
            )));
        }
        out.push(Predicate {
            field: field.column,
            op: Op::Contains,
            value: Value::Text(value.to_string()),
        });
        if out.len() > 8 {
            return Err(search_error("$search has too many clauses."));
        }
        rest = after.trim_start();
        if rest.is_empty() {
            return Ok(out);
        }
        match rest.split_once(char::is_whitespace) {
            Some(("AND", next)) => rest = next.trim_start(),
            Some(("OR", _)) => {
                return Err(search_error(
                    "'OR' is not supported in $search here; make one request per alternative.",
                ));
            }
            _ => {
                return Err(search_error(format!(
                    "Expected AND between $search clauses; found '{rest}'."
                )));
            }
        }
    }
}

/// `$orderby`: one property and an optional `asc` or `desc`.
pub fn parse_orderby(text: &str, sortable: &[FilterField]) -> Result<Order> {
    let invalid = |message: String| Error::bad_query("$orderby", message);
    let words: Vec<&str> = text.split_whitespace().collect();
    let (property, descending) = match words.as_slice() {
        [property] => (*property, false),
        [property, direction] if direction.eq_ignore_ascii_case("asc") => (*property, false),
        [property, direction] if direction.eq_ignore_ascii_case("desc") => (*property, true),
        _ => {
            return Err(invalid(format!(
                "$orderby takes one property and asc or desc, such as 'displayName desc'; found '{}'.",
                text.trim()
            )));
        }
    };
    if property.contains(',') {
        return Err(invalid(
            "$orderby takes one property here; order by one at a time.".to_string(),
        ));
    }
    let field = sortable
        .iter()
        .find(|f| f.property == property)
        .ok_or_else(|| {
            let known: Vec<&str> = sortable.iter().map(|f| f.property).collect();
            invalid(format!(
                "Ordering by '{property}' is not supported; supported properties: {}.",
                known.join(", ")
            ))
        })?;
    Ok(Order {
        by: field.column,
        descending,
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

/// The longest text sort key a skiptoken carries (a display name is at most 256 characters;
/// lowercasing can lengthen one, never fourfold).
const MAX_KEY_BYTES: usize = 4096;

/// `ms:id` for a list in time order; `k:ms:id:key` for one ordered by text, where the key is
/// the rest of the token (ids of keyed lists are GUIDs, which hold no colon).
pub fn encode_skiptoken(cursor: &Cursor) -> String {
    let created = unix_millis(cursor.created);
    URL_SAFE_NO_PAD.encode(match &cursor.key {
        None => format!("{created}:{}", cursor.id),
        Some(key) => format!("k:{created}:{}:{key}", cursor.id),
    })
}

fn skiptoken_error() -> Error {
    Error::bad_query(
        "$skiptoken",
        "The $skiptoken is not one this server issued; follow @odata.nextLink as given.",
    )
}

pub fn decode_skiptoken(token: &str) -> Result<Cursor> {
    let invalid = skiptoken_error;
    let bytes = URL_SAFE_NO_PAD
        .decode(token.trim())
        .map_err(|_| invalid())?;
    let text = String::from_utf8(bytes).map_err(|_| invalid())?;
    let (text, keyed) = match text.strip_prefix("k:") {
        Some(rest) => (rest, true),
        None => (text.as_str(), false),
    };
    let (ms, rest) = text.split_once(':').ok_or_else(invalid)?;
    let (id, key) = if keyed {
        let (id, key) = rest.split_once(':').ok_or_else(invalid)?;
        if key.len() > MAX_KEY_BYTES {
            return Err(invalid());
        }
        (id, Some(key.to_string()))
    } else {
        (rest, None)
    };
    let ms: i64 = ms.parse().map_err(|_| invalid())?;
    if id.is_empty() || id.len() > 64 {
        return Err(invalid());
    }
    Ok(Cursor {
        created: from_unix_millis(ms),
        id: id.to_string(),
        key,
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
            Some(Token::Ident(word)) if word.ends_with("/any") || word.ends_with("/all") => {
                self.lambda(&word, out)
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

    /// `collection/any(x: x/property eq 'value')`, the one lambda form Portcullis answers: it
    /// says "some element has this value", which an index of the elements serves. `all`, other
    /// operators, `and`/`or` inside the lambda and other properties are refused by name.
    fn lambda(&mut self, word: &str, out: &mut Vec<Predicate>) -> Result<()> {
        let (collection, kind) = word.rsplit_once('/').unwrap_or((word, ""));
        let fields = self.fields;
        let elements: Vec<&FilterField> = fields
            .iter()
            .filter(|f| f.kind == FieldKind::Element)
            .filter(|f| f.property.rsplit_once('/').map(|(c, _)| c) == Some(collection))
            .collect();
        if elements.is_empty() {
            return Err(filter_error(format!(
                "Lambda filters on '{collection}' are not supported on this resource."
            )));
        }
        if kind != "any" {
            return Err(filter_error(format!(
                "Only '{collection}/any(…)' is supported in $filter, not '{word}'."
            )));
        }
        self.expect(Token::LParen)?;
        let form = || {
            filter_error(format!(
                "Expected {collection}/any(x: x/property eq 'value') in $filter."
            ))
        };
        // The range variable: `t:` then the property (`t: t/id`), or `t:t/id` in one word.
        let (variable, rest) = match self.next() {
            Some(Token::Ident(head)) => match head.split_once(':') {
                Some((variable, rest)) => (variable.to_string(), rest.to_string()),
                None => return Err(form()),
            },
            _ => return Err(form()),
        };
        if variable.is_empty() || !variable.chars().all(|c| c.is_ascii_alphanumeric()) {
            return Err(form());
        }
        let path = if rest.is_empty() {
            match self.next() {
                Some(Token::Ident(path)) => path,
                _ => return Err(form()),
            }
        } else {
            rest
        };
        let Some(inner) = path.strip_prefix(&format!("{variable}/")) else {
            return Err(form());
        };
        let Some(field) = elements
            .iter()
            .find(|f| f.property == format!("{collection}/{inner}"))
            .copied()
            .copied()
        else {
            let known: Vec<&str> = elements
                .iter()
                .filter_map(|f| f.property.rsplit_once('/').map(|(_, p)| p))
                .collect();
            return Err(filter_error(format!(
                "Filtering on '{collection}/{inner}' is not supported; inside any(…): {}.",
                known.join(", ")
            )));
        };
        match self.next() {
            Some(Token::Ident(op)) if op == "eq" => {}
            _ => {
                return Err(filter_error(format!(
                    "Only eq is supported inside {collection}/any(…)."
                )));
            }
        }
        let value = self.literal(field)?;
        if self.tokens.get(self.pos) != Some(&Token::RParen) {
            return Err(filter_error(format!(
                "Only one comparison is supported inside {collection}/any(…)."
            )));
        }
        self.expect(Token::RParen)?;
        out.push(Predicate {
            field: field.column,
            op: Op::Eq,
            value,
        });
        Ok(())
    }

    fn property(&mut self) -> Result<FilterField> {
        let at = self.pos;
        match self.next() {
            Some(Token::Ident(name)) => self
                .fields
                .iter()
                .filter(|f| f.kind != FieldKind::Element)
                .find(|f| f.property == name)
                .copied()
                .ok_or_else(|| {
                    let known: Vec<&str> = self
                        .fields
                        .iter()
                        .filter(|f| f.kind != FieldKind::Element)
                        .map(|f| f.property)
                        .collect();
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
            (FieldKind::Element, Some(Token::Str(s))) if !s.trim().is_empty() => {
                Ok(Value::Text(s.trim().to_lowercase()))
            }
            (FieldKind::Element, _) => Err(mismatch("a quoted, non-empty string such as 'value'")),
        }
    }
}

/// A cursor for the row a page ended on.
pub fn cursor(created: OffsetDateTime, id: impl ToString) -> Cursor {
    Cursor {
        created,
        id: id.to_string(),
        key: None,
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
    fn target_lambda_is_the_one_lambda_accepted() {
        let id = "6F1C2B3A-0000-4000-8000-000000000001";
        for text in [
            format!("targetResources/any(t: t/id eq '{id}')"),
            format!("targetResources/any(x:x/id eq '{id}') and result eq 'failure'"),
        ] {
            let p = parse_filter(&text, AUDIT_FIELDS).unwrap();
            assert_eq!(p[0].field, "target_id", "{text}");
            assert_eq!(p[0].op, Op::Eq);
            assert_eq!(p[0].value, Value::Text(id.to_lowercase()));
        }
        for (text, needle) in [
            (
                "targetResources/all(t: t/id eq 'a')",
                "Only 'targetResources/any",
            ),
            ("targetResources/any(t: t/id ne 'a')", "Only eq"),
            (
                "targetResources/any(t: t/displayName eq 'a')",
                "not supported",
            ),
            (
                "targetResources/any(t: u/id eq 'a')",
                "Expected targetResources/any",
            ),
            ("targetResources/any()", "Expected targetResources/any"),
            (
                "targetResources/any(t: t/id eq 'a' and t/id eq 'b')",
                "Only one",
            ),
            ("targetResources/any(t: t/id eq '')", "non-empty"),
            ("targetResources/id eq 'a'", "not supported"),
            ("additionalDetails/any(d: d/key eq 'a')", "Lambda filters"),
        ] {
            let err = parse_filter(text, AUDIT_FIELDS).unwrap_err();
            assert_eq!(err.target(), Some("$filter"), "{text}");
            assert!(err.to_string().contains(needle), "{text}: {err}");
        }
        assert!(parse_filter("memberOf/any(g: g/id eq 'a')", USER_FIELDS).is_err());
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
        let keyed = Cursor {
            key: Some("joni: o'neil".into()),
            ..cursor(from_unix_millis(1), "0b0e4a8c-9f0e-4c51-a1a3-3b2f0b7f1d11")
        };
        assert_eq!(decode_skiptoken(&encode_skiptoken(&keyed)).unwrap(), keyed);
    }

    #[test]
    fn search_clauses_become_contains_predicates() {
        let p = parse_search(
            r#""displayName:van der" AND "mail:50%""#,
            USER_SEARCH_FIELDS,
        )
        .unwrap();
        assert_eq!(p.len(), 2);
        assert_eq!(p[0].field, "display_name");
        assert_eq!(p[0].op, Op::Contains);
        assert_eq!(p[0].value, Value::Text("van der".into()));
        assert_eq!(p[1].value, Value::Text("50%".into()));
        for (text, needle) in [
            ("", "empty"),
            ("joni", "quoted"),
            (r#""joni""#, "names a property"),
            (r#""password:x""#, "not supported"),
            (r#""displayName:""#, "no text"),
            (r#""displayName:a" OR "mail:b""#, "'OR'"),
            (r#""displayName:a" "mail:b""#, "Expected AND"),
            (r#""displayName:a"#, "Unterminated"),
        ] {
            let err = parse_search(text, USER_SEARCH_FIELDS).unwrap_err();
            assert_eq!(err.target(), Some("$search"), "{text}");
            assert!(err.to_string().contains(needle), "{text}: {err}");
        }
    }

    #[test]
    fn orderby_takes_one_known_property_and_a_direction() {
        let o = parse_orderby("displayName desc", USER_ORDER_FIELDS).unwrap();
        assert_eq!((o.by, o.descending), ("display_name", true));
        let o = parse_orderby("createdDateTime", USER_ORDER_FIELDS).unwrap();
        assert_eq!((o.by, o.descending), ("created", false));
        for text in ["mail", "displayName sideways", "displayName,mail", ""] {
            let err = parse_orderby(text, USER_ORDER_FIELDS).unwrap_err();
            assert_eq!(err.target(), Some("$orderby"), "{text}");
        }
        // Elsewhere both are refused by name.
        let opts = QueryOptions {
            orderby: Some("displayName".into()),
            ..Default::default()
        };
        assert_eq!(
            parse_list(&opts, GROUP_FIELDS, &["id"])
                .unwrap_err()
                .target(),
            Some("$orderby")
        );
    }
}
