//! The sign-in log's CSV export from the portal (`/admin/sign-ins?format=csv`): what a
//! spreadsheet opens is quoted as RFC 4180 has it, a value that would run as a formula stays
//! text, the filters of the page apply, and only a reader of the logs gets it.

use portcullis_testkit::fixtures::{admin_session, create_user, issue_pass, person_with_roles};
use portcullis_testkit::{StatusCode, TestServer};
use serde_json::json;

const GROUPS_ADMINISTRATOR: &str = "fdd7a751-b60b-444a-984c-02652fe8fa1c";

struct Download {
    status: StatusCode,
    content_type: String,
    disposition: String,
    body: String,
}

async fn download(t: &TestServer, token: &str, path: &str) -> Download {
    let response = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
        .get(format!("{}{path}", t.url))
        .header("cookie", format!("portcullis_session={token}"))
        .send()
        .await
        .unwrap();
    let header = |name: &str| {
        response
            .headers()
            .get(name)
            .map(|v| v.to_str().unwrap().to_string())
            .unwrap_or_default()
    };
    Download {
        status: response.status(),
        content_type: header("content-type"),
        disposition: header("content-disposition"),
        body: String::new(),
    }
    .with_body(response)
    .await
}

impl Download {
    async fn with_body(mut self, response: reqwest::Response) -> Self {
        self.body = response.text().await.unwrap();
        self
    }
}

/// One CSV line's fields as a spreadsheet reads them (RFC 4180: quoted fields, quotes doubled).
fn fields(line: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut current = String::new();
    let mut quoted = false;
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        match (c, quoted) {
            ('"', true) if chars.peek() == Some(&'"') => {
                current.push('"');
                chars.next();
            }
            ('"', _) => quoted = !quoted,
            (',', false) => out.push(std::mem::take(&mut current)),
            (c, _) => current.push(c),
        }
    }
    out.push(current);
    out
}

#[tokio::test]
async fn the_sign_in_log_downloads_as_csv_quoted_and_safe_to_open() {
    let t = TestServer::start().await;
    // Two people whose names a spreadsheet would misread: a formula, and commas and quotes.
    let formula = create_user(
        &t,
        "eve@contoso.com",
        "=HYPERLINK(\"http://evil.example\",\"x\")",
    )
    .await;
    let quoted = create_user(&t, "jo@contoso.com", "Doe, \"Jo\"").await;
    for (id, upn) in [(&formula, "eve@contoso.com"), (&quoted, "jo@contoso.com")] {
        let pass = issue_pass(&t, id, json!({})).await;
        let (reply, _) = t.sign_in_with_pass(&t.url, upn, &pass).await;
        assert_eq!(reply.status, StatusCode::OK, "{:?}", reply.body);
    }
    let admin = admin_session(&t).await;

    let csv = download(&t, &admin, "/admin/sign-ins?format=csv").await;
    assert_eq!(csv.status, StatusCode::OK, "{}", csv.body);
    assert_eq!(csv.content_type, "text/csv; charset=utf-8");
    assert_eq!(csv.disposition, "attachment; filename=\"sign-ins.csv\"");
    let lines: Vec<&str> = csv.body.split("\r\n").filter(|l| !l.is_empty()).collect();
    assert!(
        lines[0].starts_with("\"Date (UTC)\",\"Request ID\",\"Correlation ID\",\"User\""),
        "{}",
        lines[0]
    );
    let eve = lines
        .iter()
        .find(|l| l.contains("eve@contoso.com"))
        .expect("Eve's sign-in");
    assert!(
        eve.contains("\"'=HYPERLINK(\"\"http://evil.example\"\",\"\"x\"\")\""),
        "the formula is text: {eve}"
    );
    assert!(
        !eve.contains(",\"=HYPERLINK"),
        "never a bare formula: {eve}"
    );
    let jo = lines
        .iter()
        .find(|l| l.contains("jo@contoso.com"))
        .expect("Jo's sign-in");
    assert!(jo.contains("\"Doe, \"\"Jo\"\"\""), "quoted: {jo}");
    // Every line has the header's 16 fields, each quoted: commas and quotes inside values do
    // not shift columns, and a spreadsheet reads the values back as they were (the formula as
    // text).
    for line in &lines {
        assert!(line.starts_with('"') && line.ends_with('"'), "{line}");
        assert_eq!(fields(line).len(), 16, "{line}");
    }
    assert_eq!(fields(eve)[3], "'=HYPERLINK(\"http://evil.example\",\"x\")");
    assert_eq!(fields(jo)[3], "Doe, \"Jo\"");
    // Times to the second, without milliseconds.
    let date = fields(eve)[0].clone();
    assert_eq!(date.len(), "2026-03-01T09:30:12Z".len(), "{date}");

    // The page's filters apply to the download.
    let filtered = download(&t, &admin, "/admin/sign-ins?user=jo%40&format=csv").await;
    assert!(filtered.body.contains("jo@contoso.com"));
    assert!(
        !filtered.body.contains("eve@contoso.com"),
        "{}",
        filtered.body
    );
    // The page links to the download with its filters.
    let page = download(&t, &admin, "/admin/sign-ins?user=jo%40").await;
    assert!(
        page.body
            .contains("href=\"&#x2f;admin&#x2f;sign-ins?user=jo%40&amp;format=csv\""),
        "{}",
        page.body
    );

    // A Groups Administrator does not read the logs: refused, and no CSV.
    let (_, token) =
        person_with_roles(&t, "grady@contoso.com", "Grady", &[GROUPS_ADMINISTRATOR]).await;
    let refused = download(&t, &token, "/admin/sign-ins?format=csv").await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN);
    assert!(refused.content_type.starts_with("text/html"));
    assert!(!refused.body.contains("eve@contoso.com"));
    t.stop().await;
}
