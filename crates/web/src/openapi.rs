//! The OpenAPI document, generated from the handlers' annotations and served at
//! `/graph/v1.0/openapi.json`.

use utoipa::openapi::OpenApi;
use utoipa::openapi::security::{ClientCredentials, Flow, OAuth2, Scopes, SecurityScheme};

pub fn finish(mut api: OpenApi) -> OpenApi {
    api.info.title = "Portcullis admin API (Microsoft Graph–compatible subset)".to_string();
    api.info.version = env!("CARGO_PKG_VERSION").to_string();
    api.info.description = Some(
        "Administer a Portcullis tenant: users, groups, roles, applications, policies and logs. \
         Authenticate with OAuth 2.0 client credentials at /oauth2/v2.0/token; each operation \
         lists the application permission it needs."
            .to_string(),
    );
    api.servers = Some(vec![utoipa::openapi::Server::new("/graph/v1.0")]);
    let components = api.components.get_or_insert_with(Default::default);
    components.add_security_scheme(
        "bearer",
        SecurityScheme::OAuth2(OAuth2::new([Flow::ClientCredentials(
            ClientCredentials::new("/oauth2/v2.0/token", Scopes::new()),
        )])),
    );
    api
}
