//! A tiny relying party for the story: one callback on its own port that takes the
//! authorization code the browser brings, exchanges it at the token endpoint with its PKCE
//! verifier, and shows "Signed in as …" from the ID token, as an application would.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use sha2::{Digest, Sha256};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

pub struct RelyingParty {
    pub redirect_uri: String,
    listener: tokio::net::TcpListener,
}

impl RelyingParty {
    pub async fn bind() -> RelyingParty {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("a port");
        let port = listener.local_addr().expect("bound").port();
        RelyingParty {
            redirect_uri: format!("http://localhost:{port}/callback"),
            listener,
        }
    }

    /// The authorize URL for `client_id` with a fresh PKCE pair, and the verifier.
    pub fn authorize_url(&self, server: &str, client_id: &str) -> (String, String) {
        let verifier = format!("{}{}", uuid_text(), uuid_text());
        let challenge = URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()));
        let query = serde_urlencoded_pairs(&[
            ("client_id", client_id),
            ("response_type", "code"),
            ("redirect_uri", &self.redirect_uri),
            ("scope", "openid profile"),
            ("state", "story"),
            ("code_challenge", &challenge),
            ("code_challenge_method", "S256"),
        ]);
        (format!("{server}/oauth2/v2.0/authorize?{query}"), verifier)
    }

    /// Serves one callback: exchanges its code and answers with who signed in.
    pub async fn serve_callback(self, server: String, client_id: String, verifier: String) {
        let (mut socket, _) = self
            .listener
            .accept()
            .await
            .expect("the browser comes back");
        let mut buffer = vec![0u8; 8192];
        let n = socket.read(&mut buffer).await.expect("a request");
        let request = String::from_utf8_lossy(&buffer[..n]).to_string();
        let target = request.split_whitespace().nth(1).unwrap_or_default();
        let query = target.split_once('?').map(|(_, q)| q).unwrap_or_default();
        let pairs: Vec<(String, String)> = url::form_urlencoded::parse(query.as_bytes())
            .into_owned()
            .collect();
        let code = pairs
            .iter()
            .find(|(k, _)| k == "code")
            .map(|(_, v)| v.clone())
            .unwrap_or_default();
        let tokens: serde_json::Value = reqwest::Client::new()
            .post(format!("{server}/oauth2/v2.0/token"))
            .form(&[
                ("grant_type", "authorization_code"),
                ("client_id", client_id.as_str()),
                ("code", code.as_str()),
                ("redirect_uri", self.redirect_uri.as_str()),
                ("code_verifier", verifier.as_str()),
            ])
            .send()
            .await
            .expect("token request")
            .json()
            .await
            .expect("token response");
        let who = tokens["id_token"]
            .as_str()
            .and_then(|t| t.split('.').nth(1))
            .and_then(|p| URL_SAFE_NO_PAD.decode(p).ok())
            .and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok())
            .and_then(|c| c["preferred_username"].as_str().map(str::to_string))
            .unwrap_or_else(|| format!("nobody ({tokens})"));
        let body = format!(
            "<!doctype html><title>Contoso Portal</title><h1>Contoso Portal</h1><p>Signed in as {who}</p>"
        );
        let response = format!(
            "HTTP/1.1 200 OK\r\ncontent-type: text/html; charset=utf-8\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
            body.len()
        );
        let _ = socket.write_all(response.as_bytes()).await;
    }
}

fn uuid_text() -> String {
    uuid::Uuid::new_v4().simple().to_string()
}

fn serde_urlencoded_pairs(pairs: &[(&str, &str)]) -> String {
    url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(pairs)
        .finish()
}
