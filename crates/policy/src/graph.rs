//! Graph JSON in and out, as Entra exports it.
//!
//! Input may be UTF-8 (with or without a byte-order mark) or UTF-16 LE/BE with a BOM, which is
//! what PowerShell's `Out-File` writes; UTF-16 without a BOM is recognised from its zero bytes.
//! A document is one object, a `{"value": [...]}` collection (with `@odata.context` and the
//! like), or a bare array. Errors name the item and the JSON path of the member at fault.
//! Export writes the same shapes back; import → export → import gives equal values.

use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::location::NamedLocation;
use crate::model::ConditionalAccessPolicy;
use crate::strength::AuthenticationStrength;

/// Why a document could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ImportError {
    #[error("not text: {0}")]
    Encoding(String),
    #[error("not JSON: {0}")]
    Syntax(String),
    #[error("{}: {message}", location(*.item, .field))]
    Field {
        /// Index in a `value` collection, if the document is one.
        item: Option<usize>,
        /// JSON path of the member, e.g. `conditions.users.includeUsers[2]`.
        field: String,
        message: String,
    },
}

fn location(item: Option<usize>, field: &str) -> String {
    match (item, field.is_empty() || field == ".") {
        (Some(i), true) => format!("value[{i}]"),
        (Some(i), false) => format!("value[{i}].{field}"),
        (None, true) => "document".to_owned(),
        (None, false) => field.to_owned(),
    }
}

impl ImportError {
    /// The JSON path of the member at fault, if the error concerns one.
    pub fn field(&self) -> Option<String> {
        match self {
            ImportError::Field { item, field, .. } => Some(location(*item, field)),
            _ => None,
        }
    }
}

/// Decodes the bytes of an exported file to text.
pub fn decode_text(bytes: &[u8]) -> Result<String, ImportError> {
    fn utf16(bytes: &[u8], little_endian: bool) -> Result<String, ImportError> {
        if !bytes.len().is_multiple_of(2) {
            return Err(ImportError::Encoding(
                "UTF-16 text with an odd number of bytes".to_owned(),
            ));
        }
        let units = bytes.chunks_exact(2).map(|pair| {
            if little_endian {
                u16::from_le_bytes([pair[0], pair[1]])
            } else {
                u16::from_be_bytes([pair[0], pair[1]])
            }
        });
        char::decode_utf16(units)
            .collect::<Result<String, _>>()
            .map_err(|e| ImportError::Encoding(format!("invalid UTF-16: {e}")))
    }
    match bytes {
        [0xEF, 0xBB, 0xBF, rest @ ..] => String::from_utf8(rest.to_vec())
            .map_err(|e| ImportError::Encoding(format!("invalid UTF-8: {e}"))),
        [0xFF, 0xFE, rest @ ..] => utf16(rest, true),
        [0xFE, 0xFF, rest @ ..] => utf16(rest, false),
        // JSON starts with an ASCII character, so UTF-16 without a BOM has a zero byte in the
        // first pair: on the right for little-endian, on the left for big-endian.
        [first, 0, ..] if *first != 0 => utf16(bytes, true),
        [0, second, ..] if *second != 0 => utf16(bytes, false),
        _ => String::from_utf8(bytes.to_vec())
            .map_err(|e| ImportError::Encoding(format!("invalid UTF-8: {e}"))),
    }
}

/// The objects of a document: the members of `value`, the elements of an array, or the one
/// object itself.
pub fn document_items(bytes: &[u8]) -> Result<Vec<Value>, ImportError> {
    let text = decode_text(bytes)?;
    let value: Value =
        serde_json::from_str(&text).map_err(|e| ImportError::Syntax(e.to_string()))?;
    Ok(items_of(value))
}

fn items_of(value: Value) -> Vec<Value> {
    match value {
        Value::Array(items) => items,
        Value::Object(mut map) if map.get("value").is_some_and(Value::is_array) => {
            match map.remove("value") {
                Some(Value::Array(items)) => items,
                _ => Vec::new(),
            }
        }
        other => vec![other],
    }
}

fn parse_items<T: DeserializeOwned>(
    items: Vec<Value>,
    collection: bool,
) -> Result<Vec<T>, ImportError> {
    items
        .into_iter()
        .enumerate()
        .map(|(index, item)| {
            serde_path_to_error::deserialize(item).map_err(|error| ImportError::Field {
                item: collection.then_some(index),
                field: error.path().to_string(),
                message: error.into_inner().to_string(),
            })
        })
        .collect()
}

fn import<T: DeserializeOwned>(bytes: &[u8]) -> Result<Vec<T>, ImportError> {
    let text = decode_text(bytes)?;
    let value: Value =
        serde_json::from_str(&text).map_err(|e| ImportError::Syntax(e.to_string()))?;
    let collection = !value.is_object() || value.get("value").is_some_and(Value::is_array);
    parse_items(items_of(value), collection)
}

/// Reads Conditional Access policies.
pub fn import_policies(bytes: &[u8]) -> Result<Vec<ConditionalAccessPolicy>, ImportError> {
    import(bytes)
}

/// Reads authentication strength policies.
pub fn import_strengths(bytes: &[u8]) -> Result<Vec<AuthenticationStrength>, ImportError> {
    import(bytes)
}

/// Reads named locations and checks Entra's limits on them.
pub fn import_named_locations(bytes: &[u8]) -> Result<Vec<NamedLocation>, ImportError> {
    let locations: Vec<NamedLocation> = import(bytes)?;
    validate_locations(&locations)?;
    Ok(locations)
}

fn validate_locations(locations: &[NamedLocation]) -> Result<(), ImportError> {
    for (index, location) in locations.iter().enumerate() {
        location.validate().map_err(|e| ImportError::Field {
            item: (locations.len() > 1).then_some(index),
            field: match e {
                crate::location::LocationError::MissingDisplayName => "displayName".to_owned(),
                _ => "ipRanges".to_owned(),
            },
            message: e.to_string(),
        })?;
    }
    Ok(())
}

/// Everything read from one or more documents of mixed kinds.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Imported {
    pub policies: Vec<ConditionalAccessPolicy>,
    pub strengths: Vec<AuthenticationStrength>,
    pub named_locations: Vec<NamedLocation>,
}

/// What kind of Graph object a JSON object is, from its annotations and members.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ObjectKind {
    Policy,
    Strength,
    NamedLocation,
}

pub fn classify(item: &Value) -> Option<ObjectKind> {
    let map = item.as_object()?;
    let odata = map
        .get("@odata.type")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_ascii_lowercase();
    // A member counts only when it carries a value: `null` is how Graph writes "not set", and
    // export leaves it out, so classifying by a null member would classify the same object
    // differently after a round trip (found by fuzzing).
    let has = |key: &str| map.get(key).is_some_and(|v| !v.is_null());
    if odata.ends_with("namedlocation") || has("ipRanges") || has("countriesAndRegions") {
        Some(ObjectKind::NamedLocation)
    } else if odata.ends_with("authenticationstrengthpolicy")
        || has("allowedCombinations")
        || has("policyType")
    {
        Some(ObjectKind::Strength)
    } else if odata.ends_with("conditionalaccesspolicy") || has("conditions") {
        Some(ObjectKind::Policy)
    } else {
        None
    }
}

/// Reads a document whose objects may be policies, strengths or named locations (a folder of
/// exports often mixes them); each object is classified by shape.
pub fn import_any(bytes: &[u8]) -> Result<Imported, ImportError> {
    let text = decode_text(bytes)?;
    let value: Value =
        serde_json::from_str(&text).map_err(|e| ImportError::Syntax(e.to_string()))?;
    let collection = !value.is_object() || value.get("value").is_some_and(Value::is_array);
    let mut imported = Imported::default();
    for (index, item) in items_of(value).into_iter().enumerate() {
        let item_index = collection.then_some(index);
        let at = |e: ImportError| match e {
            ImportError::Field { field, message, .. } => ImportError::Field {
                item: item_index,
                field,
                message,
            },
            other => other,
        };
        match classify(&item) {
            Some(ObjectKind::Policy) => imported
                .policies
                .extend(parse_items(vec![item], false).map_err(at)?),
            Some(ObjectKind::Strength) => imported
                .strengths
                .extend(parse_items(vec![item], false).map_err(at)?),
            Some(ObjectKind::NamedLocation) => {
                let locations: Vec<NamedLocation> = parse_items(vec![item], false).map_err(at)?;
                validate_locations(&locations).map_err(at)?;
                imported.named_locations.extend(locations);
            }
            None => {
                return Err(ImportError::Field {
                    item: item_index,
                    field: String::new(),
                    message: "not a Conditional Access policy, authentication strength or named location \
                              (expected `conditions`, `allowedCombinations` or `@odata.type`)"
                        .to_owned(),
                });
            }
        }
    }
    Ok(imported)
}

fn to_value<T: Serialize>(item: &T) -> Value {
    // Serializing these types cannot fail: every map key is a string and no member is a
    // non-finite float, so the fallback is never taken.
    serde_json::to_value(item).unwrap_or(Value::Null)
}

/// One object, as Graph returns a single item.
pub fn export_one<T: Serialize>(item: &T) -> Value {
    to_value(item)
}

/// A `{"value": [...]}` collection, as Graph returns a list.
pub fn export_collection<T: Serialize>(items: &[T]) -> Value {
    let mut map = serde_json::Map::new();
    map.insert(
        "value".to_owned(),
        Value::Array(items.iter().map(to_value).collect()),
    );
    Value::Object(map)
}

/// Pretty UTF-8 JSON text of a collection of policies.
pub fn export_policies(policies: &[ConditionalAccessPolicy]) -> String {
    serde_json::to_string_pretty(&export_collection(policies)).unwrap_or_default()
}

pub fn export_strengths(strengths: &[AuthenticationStrength]) -> String {
    serde_json::to_string_pretty(&export_collection(strengths)).unwrap_or_default()
}

pub fn export_named_locations(locations: &[NamedLocation]) -> String {
    serde_json::to_string_pretty(&export_collection(locations)).unwrap_or_default()
}
