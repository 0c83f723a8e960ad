//! [`AdminClient`]: client credentials, bearer tokens, the generic Graph calls and the
//! convenience methods built on them.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use reqwest::header::{ACCEPT, AUTHORIZATION, LOCATION};
use reqwest::{Method, StatusCode, Url};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use tokio::sync::Mutex;

use crate::ClientError;
use crate::credentials::Credentials;
use crate::error::parse_error;

/// Where the admin API lives under the server's address.
pub const GRAPH_PREFIX: &str = "/graph/v1.0";

/// The server refuses `$top` above this; larger `--top` values are reached by paging.
const MAX_PAGE: usize = 999;

/// A token is replaced this long before it expires, so a request never leaves with a token
/// that dies in flight. Capped at half the lifetime for servers configured with short tokens.
const REFRESH_MARGIN: Duration = Duration::from_secs(60);

/// A typed async client of Portcullis' Graph-compatible admin API.
///
/// Cloning is cheap and clones share the connection pool and the access token.
#[derive(Clone)]
pub struct AdminClient {
    inner: Arc<Inner>,
}

// Hand-written: the credentials' own Debug already redacts the secret, and the token must not
// appear either.
impl std::fmt::Debug for AdminClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AdminClient")
            .field("url", &self.inner.credentials.url)
            .field("client_id", &self.inner.credentials.client_id)
            .finish_non_exhaustive()
    }
}

struct Inner {
    http: reqwest::Client,
    credentials: Credentials,
    // A tokio mutex, held while a token is fetched, so that concurrent requests that find the
    // token stale wait for one refresh instead of each asking the token endpoint.
    token: Mutex<Option<Token>>,
}

struct Token {
    value: String,
    refresh_at: Instant,
}

#[derive(Deserialize)]
struct TokenResponse {
    access_token: String,
    expires_in: u64,
    #[serde(default)]
    token_type: Option<String>,
}

/// `$filter` and `$top` for a list call. `top` is the most items returned in all, not the page
/// size: the client pages until it has that many.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ListOptions {
    pub filter: Option<String>,
    pub top: Option<usize>,
}

impl ListOptions {
    pub fn filter(filter: impl Into<String>) -> Self {
        ListOptions {
            filter: Some(filter.into()),
            top: None,
        }
    }
}

/// The body of `POST /users`.
#[derive(Debug, Clone, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct NewUser {
    pub user_principal_name: String,
    pub display_name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mail: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub account_enabled: Option<bool>,
    /// `Member` or `Guest`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user_type: Option<String>,
}

/// The body of `PATCH /users/{id}`: only the fields that are `Some` are sent.
#[derive(Debug, Clone, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct UserUpdate {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user_principal_name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub display_name: Option<String>,
    /// `Some(None)` clears the mail address.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mail: Option<Option<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub account_enabled: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user_type: Option<String>,
}

impl UserUpdate {
    pub fn is_empty(&self) -> bool {
        self.user_principal_name.is_none()
            && self.display_name.is_none()
            && self.mail.is_none()
            && self.account_enabled.is_none()
            && self.user_type.is_none()
    }
}

/// The body of `POST /applications`.
#[derive(Debug, Clone, Default)]
pub struct NewApplication {
    pub display_name: String,
    /// A public client (no secrets, PKCE required) rather than a confidential one.
    pub public: bool,
    /// Sent as `publicClient.redirectUris` for a public client, else `web.redirectUris`.
    pub redirect_uris: Vec<String>,
    /// Admin API permissions such as `User.Read.All`.
    pub api_permissions: Vec<String>,
    /// `ES256` or `RS256`; the server's default (ES256) when not given.
    pub id_token_signed_response_alg: Option<String>,
}

impl NewApplication {
    fn to_json(&self) -> Value {
        let mut body = json!({ "displayName": self.display_name });
        if self.public {
            body["isFallbackPublicClient"] = json!(true);
            body["publicClient"] = json!({ "redirectUris": self.redirect_uris });
        } else if !self.redirect_uris.is_empty() {
            body["web"] = json!({ "redirectUris": self.redirect_uris });
        }
        if !self.api_permissions.is_empty() {
            body["apiPermissions"] = json!(self.api_permissions);
        }
        if let Some(alg) = &self.id_token_signed_response_alg {
            body["idTokenSignedResponseAlg"] = json!(alg);
        }
        body
    }
}

/// Percent-encodes one path segment (an id, a userPrincipalName) so that a `/`, `?` or `#` in
/// user input cannot change which resource a request addresses. `@` stays readable: it is
/// legal in a segment and every UPN has one.
pub fn segment(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~' | b'@') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Quotes a value for an OData `$filter` string literal (single quotes doubled).
pub fn odata_string(text: &str) -> String {
    format!("'{}'", text.replace('\'', "''"))
}

impl AdminClient {
    /// Connects with an application's client credentials and fetches a first token, so wrong
    /// credentials or an unreachable server fail here rather than on the first call.
    pub async fn connect(
        url: impl Into<String>,
        client_id: impl Into<String>,
        client_secret: impl Into<String>,
    ) -> Result<Self, ClientError> {
        Self::with_credentials(Credentials::new(url, client_id, client_secret)).await
    }

    /// As [`AdminClient::connect`], from [`Credentials`] (bootstrap.json or environment).
    pub async fn with_credentials(credentials: Credentials) -> Result<Self, ClientError> {
        let client = Self::new_lazy(credentials)?;
        client.access_token().await?;
        Ok(client)
    }

    /// A client that asks for its first token only when the first request is made.
    pub fn new_lazy(credentials: Credentials) -> Result<Self, ClientError> {
        Url::parse(&credentials.url).map_err(|e| {
            ClientError::Usage(format!(
                "'{}' is not a valid server address: {e}",
                credentials.url
            ))
        })?;
        let http = reqwest::Client::builder()
            .user_agent(concat!("portcullis-client/", env!("CARGO_PKG_VERSION")))
            .connect_timeout(Duration::from_secs(10))
            .timeout(Duration::from_secs(60))
            // The API never redirects. A redirect means the address is wrong (often http
            // where https is served); following it would resend the bearer token, and turn a
            // POST into a GET, so it is reported instead.
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| ClientError::Usage(format!("cannot set up the HTTP client: {e}")))?;
        Ok(AdminClient {
            inner: Arc::new(Inner {
                http,
                credentials,
                token: Mutex::new(None),
            }),
        })
    }

    /// The server's base address, as given (without a trailing slash).
    pub fn url(&self) -> &str {
        &self.inner.credentials.url
    }

    /// The client id this client authenticates as.
    pub fn client_id(&self) -> &str {
        &self.inner.credentials.client_id
    }

    /// A valid access token, fetched or refreshed when missing or near expiry.
    pub async fn access_token(&self) -> Result<String, ClientError> {
        let mut slot = self.inner.token.lock().await;
        if let Some(t) = slot.as_ref()
            && Instant::now() < t.refresh_at
        {
            return Ok(t.value.clone());
        }
        let fresh = self.fetch_token().await?;
        let value = fresh.value.clone();
        *slot = Some(fresh);
        Ok(value)
    }

    /// Forgets `stale` so the next request fetches a new token; a token another request has
    /// already replaced is left alone.
    async fn forget_token(&self, stale: &str) {
        let mut slot = self.inner.token.lock().await;
        if slot.as_ref().is_some_and(|t| t.value == stale) {
            *slot = None;
        }
    }

    async fn fetch_token(&self) -> Result<Token, ClientError> {
        let creds = &self.inner.credentials;
        let url = format!("{}/oauth2/v2.0/token", creds.url);
        let started = Instant::now();
        let response = self
            .inner
            .http
            .post(&url)
            .header(ACCEPT, "application/json")
            .form(&[
                ("grant_type", "client_credentials"),
                ("client_id", creds.client_id.as_str()),
                ("client_secret", creds.client_secret.as_str()),
            ])
            .send()
            .await
            .map_err(|e| ClientError::transport(&url, &e))?;
        let status = response.status();
        let request_id = header_text(&response, "request-id");
        let bytes = response
            .bytes()
            .await
            .map_err(|e| ClientError::transport(&url, &e))?;
        if !status.is_success() {
            return Err(parse_error(status.as_u16(), &bytes, request_id.as_deref()));
        }
        let token: TokenResponse =
            serde_json::from_slice(&bytes).map_err(|e| ClientError::Decode {
                url: url.clone(),
                message: format!("not a token response: {e}"),
            })?;
        if let Some(kind) = &token.token_type
            && !kind.eq_ignore_ascii_case("bearer")
        {
            return Err(ClientError::Decode {
                url,
                message: format!("token type '{kind}' is not Bearer"),
            });
        }
        let lifetime = Duration::from_secs(token.expires_in);
        let margin = REFRESH_MARGIN.min(lifetime / 2);
        // Counted from when the request left, not when the answer arrived: the server's clock
        // started before ours could see the response.
        Ok(Token {
            value: token.access_token,
            refresh_at: started + lifetime - margin,
        })
    }

    /// The absolute URL for `path`: a path under `/graph/v1.0` (`users`, `/users?$top=5`), or a
    /// full `@odata.nextLink`.
    ///
    /// A full URL is re-based onto this client's address: the server builds links from its
    /// public URL, which may not be the address this client reaches it by, and the bearer token
    /// must never be sent to whatever host a response names.
    fn graph_url(&self, path: &str) -> Result<Url, ClientError> {
        let base = format!("{}{GRAPH_PREFIX}", self.url());
        let text = if path.starts_with("http://") || path.starts_with("https://") {
            let rest = path
                .find(GRAPH_PREFIX)
                .map(|i| &path[i + GRAPH_PREFIX.len()..])
                .ok_or_else(|| ClientError::Decode {
                    url: path.to_string(),
                    message: format!("a link outside {GRAPH_PREFIX}"),
                })?;
            format!("{base}{rest}")
        } else {
            format!("{base}/{}", path.trim_start_matches('/'))
        };
        Url::parse(&text)
            .map_err(|e| ClientError::Usage(format!("'{text}' is not a valid address: {e}")))
    }

    /// One call to the admin API. `query` pairs are appended to any already in `path`. A
    /// successful response without a body (204) is `Value::Null`.
    pub async fn request(
        &self,
        method: Method,
        path: &str,
        query: &[(&str, String)],
        body: Option<&Value>,
    ) -> Result<Value, ClientError> {
        let mut url = self.graph_url(path)?;
        if !query.is_empty() {
            let mut pairs = url.query_pairs_mut();
            for (k, v) in query {
                pairs.append_pair(k, v);
            }
        }
        let mut retried = false;
        loop {
            let token = self.access_token().await?;
            let mut builder = self
                .inner
                .http
                .request(method.clone(), url.clone())
                .header(AUTHORIZATION, format!("Bearer {token}"))
                .header(ACCEPT, "application/json");
            if let Some(body) = body {
                builder = builder.json(body);
            }
            let response = builder
                .send()
                .await
                .map_err(|e| ClientError::transport(url.as_str(), &e))?;
            let status = response.status();
            // A token can die early (the server restarted with new keys, or its clock runs
            // ahead): one fresh token and one retry, then the refusal stands.
            if status == StatusCode::UNAUTHORIZED && !retried {
                retried = true;
                self.forget_token(&token).await;
                continue;
            }
            if status.is_redirection() {
                let to = header_text(&response, LOCATION.as_str()).unwrap_or_default();
                return Err(ClientError::Transport {
                    url: url.to_string(),
                    message: format!(
                        "{} redirected to '{to}' (HTTP {}): pass the server's own address with --url",
                        url,
                        status.as_u16()
                    ),
                });
            }
            let request_id = header_text(&response, "request-id");
            let bytes = response
                .bytes()
                .await
                .map_err(|e| ClientError::transport(url.as_str(), &e))?;
            if !status.is_success() {
                return Err(parse_error(status.as_u16(), &bytes, request_id.as_deref()));
            }
            if bytes.iter().all(u8::is_ascii_whitespace) {
                return Ok(Value::Null);
            }
            return serde_json::from_slice(&bytes).map_err(|e| ClientError::Decode {
                url: url.to_string(),
                message: format!("the body is not JSON: {e}"),
            });
        }
    }

    pub async fn get(&self, path: &str) -> Result<Value, ClientError> {
        self.request(Method::GET, path, &[], None).await
    }

    pub async fn post(&self, path: &str, body: &Value) -> Result<Value, ClientError> {
        self.request(Method::POST, path, &[], Some(body)).await
    }

    pub async fn patch(&self, path: &str, body: &Value) -> Result<Value, ClientError> {
        self.request(Method::PATCH, path, &[], Some(body)).await
    }

    pub async fn delete(&self, path: &str) -> Result<Value, ClientError> {
        self.request(Method::DELETE, path, &[], None).await
    }

    /// Every item of a collection, following `@odata.nextLink` to the end.
    pub async fn list_all(&self, path: &str) -> Result<Vec<Value>, ClientError> {
        self.list(path, &ListOptions::default()).await
    }

    /// Items of a collection with `$filter`, following `@odata.nextLink` until `top` items (or
    /// all of them) have been read.
    pub async fn list(&self, path: &str, options: &ListOptions) -> Result<Vec<Value>, ClientError> {
        if options.top == Some(0) {
            return Ok(Vec::new());
        }
        let mut query = Vec::new();
        if let Some(filter) = &options.filter {
            query.push(("$filter", filter.clone()));
        }
        if let Some(top) = options.top {
            query.push(("$top", top.min(MAX_PAGE).to_string()));
        }
        let mut page = self.request(Method::GET, path, &query, None).await?;
        let mut items = Vec::new();
        let mut seen = HashSet::new();
        loop {
            let Some(Value::Array(values)) = page.get_mut("value").map(Value::take) else {
                return Err(ClientError::Decode {
                    url: path.to_string(),
                    message: "a collection without a 'value' array".into(),
                });
            };
            items.extend(values);
            if let Some(top) = options.top
                && items.len() >= top
            {
                items.truncate(top);
                break;
            }
            let Some(next) = page
                .get("@odata.nextLink")
                .and_then(Value::as_str)
                .map(str::to_string)
            else {
                break;
            };
            // A server that hands back a link it already gave would page forever.
            if !seen.insert(next.clone()) {
                return Err(ClientError::Decode {
                    url: next,
                    message: "the same @odata.nextLink twice".into(),
                });
            }
            page = self.request(Method::GET, &next, &[], None).await?;
        }
        Ok(items)
    }

    // --- users -------------------------------------------------------------------------------

    pub async fn list_users(&self, options: &ListOptions) -> Result<Vec<Value>, ClientError> {
        self.list("users", options).await
    }

    /// A user by object id or userPrincipalName.
    pub async fn user(&self, id_or_upn: &str) -> Result<Value, ClientError> {
        self.get(&format!("users/{}", segment(id_or_upn))).await
    }

    pub async fn create_user(&self, user: &NewUser) -> Result<Value, ClientError> {
        self.post("users", &to_json(user)).await
    }

    pub async fn update_user(
        &self,
        id_or_upn: &str,
        update: &UserUpdate,
    ) -> Result<(), ClientError> {
        self.patch(&format!("users/{}", segment(id_or_upn)), &to_json(update))
            .await
            .map(drop)
    }

    pub async fn delete_user(&self, id_or_upn: &str) -> Result<(), ClientError> {
        self.delete(&format!("users/{}", segment(id_or_upn)))
            .await
            .map(drop)
    }

    /// Brings back a deleted user (by object id) and returns it.
    pub async fn restore_user(&self, id: &str) -> Result<Value, ClientError> {
        self.post(
            &format!("directory/deletedItems/{}/restore", segment(id)),
            &Value::Object(Default::default()),
        )
        .await
    }

    /// The groups a user is a member of: directly, or also through nested groups.
    pub async fn user_member_of(
        &self,
        id_or_upn: &str,
        transitive: bool,
    ) -> Result<Vec<Value>, ClientError> {
        let relation = if transitive {
            "transitiveMemberOf"
        } else {
            "memberOf"
        };
        self.list_all(&format!("users/{}/{relation}", segment(id_or_upn)))
            .await
    }

    // --- groups ------------------------------------------------------------------------------

    pub async fn list_groups(&self, options: &ListOptions) -> Result<Vec<Value>, ClientError> {
        self.list("groups", options).await
    }

    pub async fn group(&self, id: &str) -> Result<Value, ClientError> {
        self.get(&format!("groups/{}", segment(id))).await
    }

    /// Creates a security group; `role_assignable` makes it able to hold directory roles (fixed
    /// for the group's life, and needing RoleManagement.ReadWrite.Directory).
    pub async fn create_group(
        &self,
        display_name: &str,
        description: Option<&str>,
        role_assignable: bool,
    ) -> Result<Value, ClientError> {
        let mut body =
            json!({ "displayName": display_name, "securityEnabled": true, "mailEnabled": false });
        if let Some(d) = description {
            body["description"] = json!(d);
        }
        if role_assignable {
            body["isAssignableToRole"] = json!(true);
        }
        self.post("groups", &body).await
    }

    pub async fn update_group(&self, id: &str, patch: &Value) -> Result<(), ClientError> {
        self.patch(&format!("groups/{}", segment(id)), patch)
            .await
            .map(drop)
    }

    pub async fn delete_group(&self, id: &str) -> Result<(), ClientError> {
        self.delete(&format!("groups/{}", segment(id)))
            .await
            .map(drop)
    }

    /// A group's members: direct, or also those of every nested group.
    pub async fn group_members(
        &self,
        id: &str,
        transitive: bool,
    ) -> Result<Vec<Value>, ClientError> {
        let relation = if transitive {
            "transitiveMembers"
        } else {
            "members"
        };
        self.list_all(&format!("groups/{}/{relation}", segment(id)))
            .await
    }

    /// Adds a user or a group (by object id) to a group.
    pub async fn add_member(&self, group_id: &str, member_id: &str) -> Result<(), ClientError> {
        // Graph names the member by a directoryObjects URL; the host part is Graph's own,
        // whatever server this is, because that is what scripts written for Entra send.
        let body = json!({
            "@odata.id": format!("https://graph.microsoft.com/v1.0/directoryObjects/{member_id}")
        });
        self.post(&format!("groups/{}/members/$ref", segment(group_id)), &body)
            .await
            .map(drop)
    }

    pub async fn remove_member(&self, group_id: &str, member_id: &str) -> Result<(), ClientError> {
        self.delete(&format!(
            "groups/{}/members/{}/$ref",
            segment(group_id),
            segment(member_id)
        ))
        .await
        .map(drop)
    }

    // --- roles -------------------------------------------------------------------------------

    pub async fn role_definitions(&self) -> Result<Vec<Value>, ClientError> {
        self.list_all("roleManagement/directory/roleDefinitions")
            .await
    }

    /// A role definition by id, template id or display name (case-insensitive).
    pub async fn find_role_definition(&self, name_or_id: &str) -> Result<Value, ClientError> {
        let wanted = name_or_id.trim();
        let definitions = self.role_definitions().await?;
        let field_is = |d: &Value, k: &str, case_insensitive: bool| {
            d.get(k).and_then(Value::as_str).is_some_and(|v| {
                if case_insensitive {
                    v.eq_ignore_ascii_case(wanted)
                } else {
                    v == wanted
                }
            })
        };
        definitions
            .iter()
            .find(|d| field_is(d, "id", true) || field_is(d, "templateId", true))
            .or_else(|| {
                definitions
                    .iter()
                    .find(|d| field_is(d, "displayName", true))
            })
            .cloned()
            .ok_or_else(|| {
                let names: Vec<&str> = definitions
                    .iter()
                    .filter_map(|d| d.get("displayName").and_then(Value::as_str))
                    .collect();
                ClientError::Usage(format!(
                    "no role is named '{wanted}'. Roles: {}.",
                    names.join(", ")
                ))
            })
    }

    /// Role assignments, optionally only those of one principal.
    pub async fn role_assignments(
        &self,
        principal_id: Option<&str>,
    ) -> Result<Vec<Value>, ClientError> {
        let options = ListOptions {
            filter: principal_id.map(|p| format!("principalId eq {}", odata_string(p))),
            top: None,
        };
        self.list("roleManagement/directory/roleAssignments", &options)
            .await
    }

    /// Assigns a role (by definition or template id) to a principal, tenant-wide.
    pub async fn assign_role(
        &self,
        principal_id: &str,
        role_definition_id: &str,
    ) -> Result<Value, ClientError> {
        let body = json!({
            "principalId": principal_id,
            "roleDefinitionId": role_definition_id,
            "directoryScopeId": "/",
        });
        self.post("roleManagement/directory/roleAssignments", &body)
            .await
    }

    pub async fn remove_role_assignment(&self, assignment_id: &str) -> Result<(), ClientError> {
        self.delete(&format!(
            "roleManagement/directory/roleAssignments/{}",
            segment(assignment_id)
        ))
        .await
        .map(drop)
    }

    // --- applications ------------------------------------------------------------------------

    pub async fn list_applications(
        &self,
        options: &ListOptions,
    ) -> Result<Vec<Value>, ClientError> {
        self.list("applications", options).await
    }

    /// An application by object id or appId (client id).
    pub async fn application(&self, id: &str) -> Result<Value, ClientError> {
        self.get(&format!("applications/{}", segment(id))).await
    }

    pub async fn create_application(&self, app: &NewApplication) -> Result<Value, ClientError> {
        self.post("applications", &app.to_json()).await
    }

    pub async fn update_application(&self, id: &str, patch: &Value) -> Result<(), ClientError> {
        self.patch(&format!("applications/{}", segment(id)), patch)
            .await
            .map(drop)
    }

    pub async fn delete_application(&self, id: &str) -> Result<(), ClientError> {
        self.delete(&format!("applications/{}", segment(id)))
            .await
            .map(drop)
    }

    /// Adds a client secret. The result's `secretText` is the only time the secret is shown.
    pub async fn add_secret(
        &self,
        app_id: &str,
        display_name: Option<&str>,
    ) -> Result<Value, ClientError> {
        let mut credential = json!({});
        if let Some(name) = display_name {
            credential["displayName"] = json!(name);
        }
        self.post(
            &format!("applications/{}/addPassword", segment(app_id)),
            &json!({ "passwordCredential": credential }),
        )
        .await
    }

    pub async fn remove_secret(&self, app_id: &str, key_id: &str) -> Result<(), ClientError> {
        self.post(
            &format!("applications/{}/removePassword", segment(app_id)),
            &json!({ "keyId": key_id }),
        )
        .await
        .map(drop)
    }

    // --- named locations ---------------------------------------------------------------------

    pub async fn named_locations(&self) -> Result<Vec<Value>, ClientError> {
        self.list_all("identity/conditionalAccess/namedLocations")
            .await
    }

    pub async fn named_location(&self, id: &str) -> Result<Value, ClientError> {
        self.get(&format!(
            "identity/conditionalAccess/namedLocations/{}",
            segment(id)
        ))
        .await
    }

    /// Creates an `ipNamedLocation` from CIDR ranges (IPv4 or IPv6).
    pub async fn create_ip_location(
        &self,
        display_name: &str,
        cidrs: &[String],
        trusted: bool,
    ) -> Result<Value, ClientError> {
        let ranges: Vec<Value> = cidrs
            .iter()
            .map(|c| {
                // Graph types each range by family; a colon is what makes an address IPv6.
                let kind = if c.contains(':') {
                    "#microsoft.graph.iPv6CidrRange"
                } else {
                    "#microsoft.graph.iPv4CidrRange"
                };
                json!({ "@odata.type": kind, "cidrAddress": c.trim() })
            })
            .collect();
        let body = json!({
            "@odata.type": "#microsoft.graph.ipNamedLocation",
            "displayName": display_name,
            "isTrusted": trusted,
            "ipRanges": ranges,
        });
        self.post("identity/conditionalAccess/namedLocations", &body)
            .await
    }

    /// Creates a `countryNamedLocation` from ISO 3166-1 alpha-2 codes.
    pub async fn create_country_location(
        &self,
        display_name: &str,
        countries: &[String],
        include_unknown: bool,
    ) -> Result<Value, ClientError> {
        let codes: Vec<String> = countries
            .iter()
            .map(|c| c.trim().to_ascii_uppercase())
            .collect();
        let body = json!({
            "@odata.type": "#microsoft.graph.countryNamedLocation",
            "displayName": display_name,
            "countriesAndRegions": codes,
            "includeUnknownCountriesAndRegions": include_unknown,
        });
        self.post("identity/conditionalAccess/namedLocations", &body)
            .await
    }

    pub async fn delete_named_location(&self, id: &str) -> Result<(), ClientError> {
        self.delete(&format!(
            "identity/conditionalAccess/namedLocations/{}",
            segment(id)
        ))
        .await
        .map(drop)
    }

    // --- audit -------------------------------------------------------------------------------

    /// Directory audit entries, newest first.
    pub async fn directory_audits(&self, options: &ListOptions) -> Result<Vec<Value>, ClientError> {
        self.list("auditLogs/directoryAudits", options).await
    }

    /// Sign-in log entries, newest first.
    pub async fn sign_ins(&self, options: &ListOptions) -> Result<Vec<Value>, ClientError> {
        self.list("auditLogs/signIns", options).await
    }
}

fn to_json<T: Serialize>(value: &T) -> Value {
    // The request types here are plain structs of strings and booleans: serializing cannot fail.
    serde_json::to_value(value).unwrap_or(Value::Null)
}

fn header_text(response: &reqwest::Response, name: &str) -> Option<String> {
    response
        .headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn client(url: &str) -> AdminClient {
        AdminClient::new_lazy(Credentials::new(url, "id", "secret")).unwrap()
    }

    #[test]
    fn segments_are_escaped_but_upns_stay_readable() {
        assert_eq!(segment("joni@contoso.com"), "joni@contoso.com");
        assert_eq!(segment("a/b?c#d e"), "a%2Fb%3Fc%23d%20e");
        assert_eq!(segment("é"), "%C3%A9");
    }

    #[test]
    fn odata_strings_double_quotes() {
        assert_eq!(odata_string("O'Brien"), "'O''Brien'");
    }

    #[test]
    fn paths_and_next_links_resolve_under_this_clients_address() {
        let c = client("http://127.0.0.1:4000/");
        assert_eq!(
            c.graph_url("users").unwrap().as_str(),
            "http://127.0.0.1:4000/graph/v1.0/users"
        );
        assert_eq!(
            c.graph_url("/users?$top=5").unwrap().as_str(),
            "http://127.0.0.1:4000/graph/v1.0/users?$top=5"
        );
        // A link naming another host is re-based: the token goes only where the user pointed.
        assert_eq!(
            c.graph_url("https://evil.example/graph/v1.0/users?$skiptoken=abc")
                .unwrap()
                .as_str(),
            "http://127.0.0.1:4000/graph/v1.0/users?$skiptoken=abc"
        );
        assert!(c.graph_url("https://elsewhere.example/other").is_err());
    }

    #[test]
    fn application_bodies_follow_graph() {
        let confidential = NewApplication {
            display_name: "Web".into(),
            redirect_uris: vec!["https://app/cb".into()],
            api_permissions: vec!["User.Read.All".into()],
            ..Default::default()
        };
        assert_eq!(
            confidential.to_json(),
            json!({"displayName":"Web","web":{"redirectUris":["https://app/cb"]},"apiPermissions":["User.Read.All"]})
        );
        let public = NewApplication {
            display_name: "Cli".into(),
            public: true,
            ..Default::default()
        };
        assert_eq!(
            public.to_json(),
            json!({"displayName":"Cli","isFallbackPublicClient":true,"publicClient":{"redirectUris":[]}})
        );
    }

    #[test]
    fn user_update_sends_only_what_changes() {
        let update = UserUpdate {
            account_enabled: Some(false),
            mail: Some(None),
            ..Default::default()
        };
        assert_eq!(
            to_json(&update),
            json!({"mail": null, "accountEnabled": false})
        );
        assert!(UserUpdate::default().is_empty());
    }

    /// A minimal HTTP/1.1 server for what the real one cannot be made to do on demand: hand out
    /// one-second tokens, refuse a token it issued, or name another host in a next link.
    mod mock {
        use std::sync::{Arc, Mutex};

        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        use tokio::net::TcpListener;

        /// What the handler sees: the request line and the Authorization header.
        pub struct Seen {
            pub line: String,
            pub authorization: Option<String>,
        }

        pub type Handler = dyn Fn(&Seen) -> (u16, String) + Send + Sync;

        /// Serves `handler` on a loopback port; returns the base URL and the log of requests.
        pub async fn serve(handler: Arc<Handler>) -> (String, Arc<Mutex<Vec<String>>>) {
            let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
            let url = format!("http://{}", listener.local_addr().unwrap());
            let log = Arc::new(Mutex::new(Vec::new()));
            let seen_log = log.clone();
            tokio::spawn(async move {
                loop {
                    let Ok((mut socket, _)) = listener.accept().await else {
                        return;
                    };
                    let handler = handler.clone();
                    let log = seen_log.clone();
                    tokio::spawn(async move {
                        let mut buf = Vec::new();
                        let mut chunk = [0u8; 4096];
                        // Read the head, then as much body as Content-Length says.
                        let head_end = loop {
                            let n = socket.read(&mut chunk).await.unwrap_or(0);
                            if n == 0 {
                                return;
                            }
                            buf.extend_from_slice(&chunk[..n]);
                            if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                                break i + 4;
                            }
                        };
                        let head = String::from_utf8_lossy(&buf[..head_end]).to_string();
                        let header = |name: &str| {
                            head.lines()
                                .find_map(|l| {
                                    l.split_once(':')
                                        .filter(|(k, _)| k.eq_ignore_ascii_case(name))
                                })
                                .map(|(_, v)| v.trim().to_string())
                        };
                        let length: usize = header("content-length")
                            .and_then(|v| v.parse().ok())
                            .unwrap_or(0);
                        while buf.len() < head_end + length {
                            let n = socket.read(&mut chunk).await.unwrap_or(0);
                            if n == 0 {
                                break;
                            }
                            buf.extend_from_slice(&chunk[..n]);
                        }
                        let seen = Seen {
                            line: head.lines().next().unwrap_or_default().to_string(),
                            authorization: header("authorization"),
                        };
                        log.lock().unwrap().push(format!(
                            "{} {}",
                            seen.line,
                            seen.authorization.clone().unwrap_or_default()
                        ));
                        let (status, body) = handler(&seen);
                        let response = format!(
                            "HTTP/1.1 {status} X\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                            body.len()
                        );
                        let _ = socket.write_all(response.as_bytes()).await;
                    });
                }
            });
            (url, log)
        }
    }

    /// A token endpoint that numbers its tokens t0, t1… and gives each `lifetime` seconds.
    fn token_response(
        seen: &mock::Seen,
        counter: &std::sync::atomic::AtomicUsize,
        lifetime: u64,
    ) -> Option<(u16, String)> {
        if !seen.line.starts_with("POST /oauth2/v2.0/token") {
            return None;
        }
        let n = counter.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        Some((
            200,
            format!(r#"{{"access_token":"t{n}","expires_in":{lifetime},"token_type":"Bearer"}}"#),
        ))
    }

    #[tokio::test]
    async fn a_token_near_expiry_is_replaced_before_use() {
        use std::sync::atomic::{AtomicUsize, Ordering};
        let tokens = Arc::new(AtomicUsize::new(0));
        let t = tokens.clone();
        let (url, log) = mock::serve(Arc::new(move |seen: &mock::Seen| {
            token_response(seen, &t, 1).unwrap_or((200, r#"{"value":[]}"#.into()))
        }))
        .await;
        let client = AdminClient::connect(&url, "id", "secret").await.unwrap();
        client.get("users").await.unwrap();
        // A one-second token is refreshed after half its life.
        tokio::time::sleep(Duration::from_millis(600)).await;
        client.get("users").await.unwrap();
        assert_eq!(tokens.load(Ordering::SeqCst), 2);
        let calls: Vec<String> = log
            .lock()
            .unwrap()
            .iter()
            .filter(|l| l.starts_with("GET"))
            .cloned()
            .collect();
        assert_eq!(calls.len(), 2);
        assert!(calls[0].ends_with("Bearer t0"), "{calls:?}");
        assert!(calls[1].ends_with("Bearer t1"), "{calls:?}");
    }

    #[tokio::test]
    async fn a_refused_token_is_replaced_once_then_the_refusal_stands() {
        use std::sync::atomic::{AtomicUsize, Ordering};
        let tokens = Arc::new(AtomicUsize::new(0));
        let t = tokens.clone();
        let (url, _) = mock::serve(Arc::new(move |seen: &mock::Seen| {
            if let Some(r) = token_response(seen, &t, 3600) {
                return r;
            }
            // t0 is refused as if the server had restarted with new keys; later tokens work
            // for /users but never for /groups.
            if seen.authorization.as_deref() == Some("Bearer t0") || seen.line.contains("/groups") {
                return (401, r#"{"error":{"code":"InvalidAuthenticationToken","message":"The token is not valid."}}"#.into());
            }
            (200, r#"{"value":[]}"#.into())
        }))
        .await;
        let client = AdminClient::connect(&url, "id", "secret").await.unwrap();
        client.get("users").await.unwrap();
        assert_eq!(tokens.load(Ordering::SeqCst), 2);
        let err = client.get("groups").await.unwrap_err();
        assert_eq!(err.status(), Some(401));
        assert_eq!(err.code(), Some("InvalidAuthenticationToken"));
        assert_eq!(tokens.load(Ordering::SeqCst), 3, "one retry, not a loop");
    }

    #[tokio::test]
    async fn lists_follow_next_links_on_this_host_and_stop_at_top() {
        use std::sync::atomic::AtomicUsize;
        let tokens = Arc::new(AtomicUsize::new(0));
        let t = tokens.clone();
        let (url, log) = mock::serve(Arc::new(move |seen: &mock::Seen| {
            if let Some(r) = token_response(seen, &t, 3600) {
                return r;
            }
            if seen.line.contains("skiptoken=p2") {
                (200, r#"{"value":[{"id":"3"}]}"#.into())
            } else {
                // The link names the server's public address, which this client does not use.
                (200, r#"{"value":[{"id":"1"},{"id":"2"}],"@odata.nextLink":"https://public.example/graph/v1.0/users?$skiptoken=p2"}"#.into())
            }
        }))
        .await;
        let client = AdminClient::connect(&url, "id", "secret").await.unwrap();
        let all = client.list_all("users").await.unwrap();
        assert_eq!(
            all.iter()
                .map(|v| v["id"].as_str().unwrap())
                .collect::<Vec<_>>(),
            ["1", "2", "3"]
        );
        let two = client
            .list(
                "users",
                &ListOptions {
                    filter: Some("displayName eq 'a b'".into()),
                    top: Some(2),
                },
            )
            .await
            .unwrap();
        assert_eq!(two.len(), 2);
        let gets: Vec<String> = log
            .lock()
            .unwrap()
            .iter()
            .filter(|l| l.starts_with("GET"))
            .cloned()
            .collect();
        assert_eq!(
            gets.len(),
            3,
            "top reached on the first page: no second request; {gets:?}"
        );
        assert!(
            gets[1].starts_with("GET /graph/v1.0/users?$skiptoken=p2 "),
            "{gets:?}"
        );
        assert!(
            gets[2].contains("%24filter=displayName+eq+%27a+b%27&%24top=2"),
            "{gets:?}"
        );
    }

    #[tokio::test]
    async fn token_endpoint_refusal_is_an_oauth_error() {
        let (url, _) = mock::serve(Arc::new(|_: &mock::Seen| {
            (
                401,
                r#"{"error":"invalid_client","error_description":"The client secret is wrong."}"#
                    .into(),
            )
        }))
        .await;
        let err = AdminClient::connect(&url, "id", "wrong").await.unwrap_err();
        assert!(
            matches!(err, ClientError::OAuth { status: 401, .. }),
            "{err:?}"
        );
        assert!(err.to_string().contains("The client secret is wrong."));
    }

    #[tokio::test]
    async fn unreachable_server_says_so() {
        // Port 9 (discard) on loopback is closed on any machine running these tests.
        let err = AdminClient::connect("http://127.0.0.1:9", "id", "secret")
            .await
            .unwrap_err();
        let text = err.to_string();
        assert!(
            text.starts_with("could not reach http://127.0.0.1:9: is the server running?"),
            "{text}"
        );
    }
}
