//! Reading the one file a `multipart/form-data` upload carries (the policy import). Only what
//! the import form sends is understood: parts with a `Content-Disposition: form-data; name=…`
//! header. The file's bytes are handed on untouched — a Graph export may be UTF-16.

/// One part of a multipart body.
#[derive(Debug, PartialEq, Eq)]
pub struct Part<'a> {
    pub name: String,
    pub file_name: Option<String>,
    pub body: &'a [u8],
}

/// The boundary named in a `multipart/form-data` content type.
pub fn boundary(content_type: &str) -> Option<String> {
    let (media, params) = content_type.split_once(';')?;
    if !media.trim().eq_ignore_ascii_case("multipart/form-data") {
        return None;
    }
    params.split(';').find_map(|p| {
        let (key, value) = p.trim().split_once('=')?;
        key.trim()
            .eq_ignore_ascii_case("boundary")
            .then(|| value.trim().trim_matches('"').to_string())
            .filter(|b| !b.is_empty() && b.len() <= 70)
    })
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// The parts of a body, or `None` when it is not well formed.
pub fn parts<'a>(body: &'a [u8], boundary: &str) -> Option<Vec<Part<'a>>> {
    let delimiter = format!("--{boundary}");
    let mut rest = &body[find(body, delimiter.as_bytes())? + delimiter.len()..];
    let next_delimiter = format!("\r\n--{boundary}");
    let mut out = Vec::new();
    loop {
        if rest.starts_with(b"--") {
            return Some(out);
        }
        rest = rest.strip_prefix(b"\r\n")?;
        let header_end = find(rest, b"\r\n\r\n")?;
        let headers = std::str::from_utf8(&rest[..header_end]).ok()?;
        let content = &rest[header_end + 4..];
        let end = find(content, next_delimiter.as_bytes())?;
        let (name, file_name) = disposition(headers)?;
        out.push(Part {
            name,
            file_name,
            body: &content[..end],
        });
        rest = &content[end + next_delimiter.len()..];
    }
}

/// `name` and `filename` from a part's `Content-Disposition: form-data` header.
fn disposition(headers: &str) -> Option<(String, Option<String>)> {
    let line = headers.lines().find(|l| {
        l.split_once(':')
            .is_some_and(|(k, _)| k.trim().eq_ignore_ascii_case("content-disposition"))
    })?;
    let (_, value) = line.split_once(':')?;
    let mut name = None;
    let mut file_name = None;
    for param in value.split(';').skip(1) {
        if let Some((key, v)) = param.trim().split_once('=') {
            let v = v.trim().trim_matches('"').to_string();
            match key.trim() {
                "name" => name = Some(v),
                "filename" => file_name = Some(v),
                _ => {}
            }
        }
    }
    Some((name?, file_name))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_file_and_fields_of_an_upload() {
        let ct = "multipart/form-data; boundary=----b0undary";
        let b = boundary(ct).unwrap();
        let body = b"------b0undary\r\nContent-Disposition: form-data; name=\"file\"; filename=\"p.json\"\r\nContent-Type: application/json\r\n\r\n\xff\xfe{\0}\0\r\n------b0undary\r\nContent-Disposition: form-data; name=\"note\"\r\n\r\nhi\r\n------b0undary--\r\n";
        let parts = parts(body, &b).unwrap();
        assert_eq!(parts.len(), 2);
        assert_eq!(parts[0].name, "file");
        assert_eq!(parts[0].file_name.as_deref(), Some("p.json"));
        assert_eq!(parts[0].body, b"\xff\xfe{\0}\0");
        assert_eq!(parts[1].body, b"hi");
    }

    #[test]
    fn refuses_what_is_not_multipart() {
        assert_eq!(boundary("application/json"), None);
        assert_eq!(boundary("multipart/form-data"), None);
        assert!(parts(b"no boundary here", "x").is_none());
        assert!(
            parts(
                b"--x\r\nContent-Disposition: form-data; name=\"a\"\r\n\r\nunterminated",
                "x"
            )
            .is_none()
        );
    }
}
