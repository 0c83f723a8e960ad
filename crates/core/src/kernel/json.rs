//! JSON helpers shared by the services that take Graph documents.

use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::{Error, Result};

/// Deserializes, naming the field at fault in the error (its JSON path).
pub fn from_value_naming_field<T: DeserializeOwned>(value: Value) -> Result<T> {
    serde_path_to_error::deserialize(value).map_err(|e| {
        let path = e.path().to_string();
        let message = e.into_inner().to_string();
        let named = message
            .split('`')
            .nth(1)
            .filter(|_| {
                message.starts_with("unknown field") || message.starts_with("missing field")
            })
            .map(str::to_string);
        let target = match (named, path.as_str()) {
            (Some(f), "." | "") => f,
            (Some(f), p) if p.ends_with(&f) => p.to_string(),
            (Some(f), p) => format!("{p}.{f}"),
            (None, p) => p.to_string(),
        };
        Error::invalid(target.clone(), format!("{target}: {message}"))
    })
}

/// Whether a request body holds no JSON value at all: nothing, or only the four characters
/// JSON counts as whitespace (RFC 8259 §2). A form feed or a vertical tab is not one of them,
/// though `str::trim` would drop both: such a body is malformed, not absent.
pub fn is_blank(text: &[u8]) -> bool {
    text.iter()
        .all(|b| matches!(b, b' ' | b'\t' | b'\n' | b'\r'))
}

#[cfg(test)]
mod tests {
    #[test]
    fn only_json_whitespace_is_blank() {
        assert!(super::is_blank(b""));
        assert!(super::is_blank(b" \t\r\n"));
        for malformed in [&b"\x0c"[..], b"\x0b", b" \x0c ", "\u{a0}".as_bytes()] {
            assert!(!super::is_blank(malformed), "{malformed:?}");
        }
    }
}
