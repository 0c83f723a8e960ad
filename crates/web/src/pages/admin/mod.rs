//! The admin portal under `/admin`: the pages an administrator uses to run the tenant.
//!
//! Every page is for a signed-in person ([`Portal`]); without a session the browser is sent to
//! the sign-in page and back. What the person may do is what their directory roles carry
//! ([`Principal::for_user`]), checked through the same [`Granted`] capabilities the admin API
//! uses, so a page cannot reach a core operation its reader may not perform. Refusals are a
//! page that names the role to ask for.
//!
//! Forms post `application/x-www-form-urlencoded` (the import, `multipart/form-data`) to portal
//! handlers that call core and answer with a 303 back to the page and a notice. Bad input is
//! answered with the form again, a 4xx status and the error beside the field; core validated
//! and refused it, so nothing changed. A secret (a Temporary Access Pass, a client secret) is
//! shown once, in the answer to the POST that made it: never in a URL, never redirected to.

mod analysis;
mod applications;
mod conditional_access;
mod deleted_users;
mod groups;
mod line_diff;
mod logs;
mod methods;
mod multipart;
mod policy_form;
mod roles;
mod users;
mod what_if;

use std::sync::Arc;

use std::collections::BTreeMap;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Request, State};
use axum::http::request::Parts;
use axum::http::{Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{any, get};
use portcullis_core::Error;
use portcullis_core::directory::audit::RequestContext;
use portcullis_core::directory::authz::{
    Granted, Permission, Principal, ReadApplications, ReadAuditLogs, ReadGroups, ReadPolicies,
    ReadRoles, ReadUsers, roles_granting,
};
use portcullis_core::directory::model::User;
use portcullis_core::kernel::odata;
use portcullis_core::store::{Cursor, ListQuery, Op, Predicate, Value as QueryValue};
use serde::Serialize;
use time::OffsetDateTime;

use super::{failure_page_as, render_with_status};
use crate::extract::cookie;
use crate::middleware::RequestMeta;
use crate::{AppState, PortalState};

macro_rules! admin_templates {
    ($($name:literal),* $(,)?) => {
        &[$((concat!("admin/", $name), include_str!(concat!("../../../templates/admin/", $name)))),*]
    };
}

pub(crate) const TEMPLATES: &[(&str, &str)] = admin_templates![
    "base.html",
    "macros.html",
    "error.html",
    "home.html",
    "forbidden.html",
    "confirm.html",
    "users.html",
    "deleted_users.html",
    "user_new.html",
    "user_edit.html",
    "user.html",
    "tap_issued.html",
    "groups.html",
    "group.html",
    "applications.html",
    "application.html",
    "secret_issued.html",
    "policies.html",
    "policy_form.html",
    "policy_json.html",
    "policy_import.html",
    "policy_import_review.html",
    "locations.html",
    "strengths.html",
    "ca_edit.html",
    "what_if.html",
    "ca_analysis.html",
    "sign_ins.html",
    "sign_in.html",
    "audits.html",
    "methods.html",
    "roles.html",
    "role.html",
    "audit.html",
];

const STYLESHEET: &str = include_str!("../../../assets/admin.css");
const SCRIPT: &str = include_str!("../../../assets/admin.js");

/// Rows per page in the portal's long lists.
const PAGE_SIZE: usize = 25;

pub fn router(state: &AppState) -> Router<AppState> {
    let portal = Router::new()
        .route("/admin", get(home))
        .route("/admin/", get(|| async { Redirect::permanent("/admin") }))
        .route("/admin/{*rest}", any(no_such_page))
        .merge(users::router())
        .merge(deleted_users::router())
        .merge(groups::router())
        .merge(applications::router())
        .merge(conditional_access::router())
        .merge(what_if::router())
        .merge(analysis::router())
        .merge(logs::router())
        .merge(methods::router())
        .merge(roles::router())
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            keep_the_frame,
        ));
    Router::new()
        .route("/assets/admin.css", get(stylesheet))
        .route("/assets/admin.js", get(script))
        .merge(portal)
}

/// An address under `/admin` that no page has: "not found", inside the portal's frame.
async fn no_such_page(portal: Portal) -> Response {
    let _ = portal;
    failure_page_as(
        &Error::not_found("page", "admin"),
        "This page doesn't exist",
        "There is no page at this address in the admin portal. Use the navigation above to find what you were looking for.",
    )
}

/// Every error page under `/admin` (a core refusal, a missing object, an address that takes
/// another method) is shown inside the portal's frame, with its navigation, "My security info"
/// and "Sign out", so a person is never left on a dead end. The words and status are the ones
/// [`failure_page`](super::failure_page) chose; only the frame is added. Someone who is not
/// signed in (or whose session the portal refuses) keeps the plain page.
async fn keep_the_frame(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let (parts, body) = request.into_parts();
    let mut asked = parts.clone();
    let response = next.run(Request::from_parts(parts, body)).await;
    let status = response.status();
    let failure = match response.extensions().get::<super::FailureShown>() {
        Some(failure) => failure.clone(),
        None if status == StatusCode::METHOD_NOT_ALLOWED => super::FailureShown {
            title: "This address doesn't take that request".into(),
            message: "The page at this address is opened with a link or sent from its own form. Go back and use the page's buttons.".into(),
            code: None,
        },
        None => return response,
    };
    let Ok(portal) = Portal::from_request_parts(&mut asked, &state).await else {
        return response;
    };
    let mut framed = portal.render(
        status,
        "admin/error.html",
        section_of(asked.uri.path()),
        minijinja::context! {
            title => failure.title,
            message => failure.message,
            status => status.as_u16(),
            code => failure.code,
            request_id => crate::middleware::current_request_id(),
        },
    );
    for name in [header::RETRY_AFTER, header::ALLOW] {
        if let Some(value) = response.headers().get(&name) {
            framed.headers_mut().insert(name, value.clone());
        }
    }
    framed
}

/// The navigation entry a portal address belongs to.
fn section_of(path: &str) -> &'static str {
    let rest = path.trim_start_matches("/admin").trim_start_matches('/');
    match rest.split('/').next().unwrap_or("") {
        "users" => "users",
        "groups" => "groups",
        "roles" => "roles",
        "applications" => "applications",
        "conditional-access" => "conditional-access",
        "authentication-methods" => "methods",
        "sign-ins" => "sign-ins",
        "audit-logs" => "audit",
        _ => "home",
    }
}

async fn stylesheet() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/css; charset=utf-8"),
            (header::CACHE_CONTROL, "public, max-age=3600"),
        ],
        STYLESHEET,
    )
        .into_response()
}

async fn script() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/javascript; charset=utf-8"),
            (header::CACHE_CONTROL, "public, max-age=3600"),
        ],
        SCRIPT,
    )
        .into_response()
}

// --- the signed-in person ----------------------------------------------------------------

/// The person using the portal: their account, the permissions their roles carry now, and the
/// notice the previous action left (`?done=…`).
pub struct Portal {
    pub user: User,
    pub principal: Principal,
    notice: Option<&'static str>,
    /// The path this request addressed (a confirmation's form posts back to it).
    path: String,
}

impl FromRequestParts<AppState> for Portal {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Response> {
        // After signing in the person comes back to the page they asked for; a form post cannot
        // be replayed by a redirect, so it comes back to the portal's home.
        let return_to = match parts.method {
            Method::GET | Method::HEAD => parts
                .uri
                .path_and_query()
                .map(|p| p.as_str().to_string())
                .unwrap_or_else(|| "/admin".into()),
            _ => "/admin".into(),
        };
        let to_sign_in = || {
            let query =
                serde_urlencoded::to_string([("returnTo", return_to.as_str())]).unwrap_or_default();
            Redirect::to(&format!("/signin?{query}")).into_response()
        };
        let Some(token) = cookie(parts, portcullis_core::session::SESSION_COOKIE) else {
            return Err(to_sign_in());
        };
        let session = state
            .sign_in()
            .sessions
            .for_token(token)
            .await
            .map_err(|e| *PageError::from(e).0)?;
        let Some(session) = session else {
            return Err(to_sign_in());
        };
        // Conditional Access for the Admin Portal, on this session and this request, on every
        // page: a policy asking administrators for phishing-resistant MFA (or blocking a
        // platform) holds here as it does at sign-in, and a change to it applies at once.
        let facts = match crate::extract::Facts::from_request_parts(parts, state).await {
            Ok(crate::extract::Facts(facts)) => facts,
            Err(e) => return Err(e.into_response()),
        };
        match state
            .sign_in()
            .sign_ins
            .session_may_use(
                &session,
                &facts,
                portcullis_core::directory::first_party::ADMIN_PORTAL_APP_ID,
            )
            .await
        {
            Ok(true) => {}
            Ok(false) => return Err(to_sign_in()),
            Err(e) => return Err(*PageError::from(e).0),
        }
        let (user, principal) = match state
            .portal()
            .directory
            .principal_for_user(session.user_id)
            .await
        {
            Ok(found) => found,
            Err(Error::Unauthenticated(_)) => return Err(to_sign_in()),
            Err(e) => return Err(*PageError::from(e).0),
        };
        let notice = query_pairs(parts)
            .into_iter()
            .find(|(k, _)| k == "done")
            .and_then(|(_, code)| notice_text(&code));
        Ok(Portal {
            user,
            principal,
            notice,
            path: parts.uri.path().to_string(),
        })
    }
}

impl Portal {
    /// The capability for `P`, or the page that says which role would grant it. `area` names
    /// what the person tried to open ("users", "Conditional Access policies").
    pub fn grant<P: Permission>(&self, area: &str) -> Result<Granted<P>, PageError> {
        Granted::<P>::check(&self.principal).map_err(|_| {
            let roles: Vec<&str> = roles_granting::<P>()
                .iter()
                .map(|r| r.display_name)
                .collect();
            self.refuse(area, Some(P::NAME), &roles)
        })
    }

    /// The page that says the person may not open `area`, and which roles would let them.
    fn refuse(&self, area: &str, permission: Option<&str>, roles: &[&str]) -> PageError {
        PageError::from(self.render(
            StatusCode::FORBIDDEN,
            "admin/forbidden.html",
            "",
            minijinja::context! {
                area => area,
                permission => permission,
                role => roles.first().copied().unwrap_or("Global Administrator"),
                other_roles => roles.iter().skip(1).copied().collect::<Vec<_>>(),
            },
        ))
    }

    /// The capability for `P` when the person holds it, for the parts of a page only some
    /// readers may use (the "Issue a pass" form on a user's page).
    pub fn maybe<P: Permission>(&self) -> Option<Granted<P>> {
        Granted::<P>::check(&self.principal).ok()
    }

    pub fn may<P: Permission>(&self) -> bool {
        self.principal.may::<P>()
    }

    /// Renders a portal page: `context` plus the frame every page shares (who is signed in,
    /// the navigation with `section` marked current, the notice).
    pub fn render<S: Serialize>(
        &self,
        status: StatusCode,
        template: &str,
        section: &str,
        context: S,
    ) -> Response {
        let nav: Vec<_> = [
            ("home", "Home", "/admin", true),
            ("users", "Users", "/admin/users", self.may::<ReadUsers>()),
            ("groups", "Groups", "/admin/groups", self.may::<ReadGroups>()),
            ("roles", "Roles", "/admin/roles", self.may::<ReadRoles>()),
            (
                "applications",
                "Applications",
                "/admin/applications",
                self.may::<ReadApplications>(),
            ),
            (
                "conditional-access",
                "Conditional Access",
                "/admin/conditional-access",
                self.may::<ReadPolicies>(),
            ),
            (
                "methods",
                "Authentication methods",
                "/admin/authentication-methods",
                self.may::<ReadPolicies>(),
            ),
            (
                "sign-ins",
                "Sign-in logs",
                "/admin/sign-ins",
                self.may::<ReadAuditLogs>(),
            ),
            (
                "audit",
                "Audit logs",
                "/admin/audit-logs",
                self.may::<ReadAuditLogs>(),
            ),
        ]
        .into_iter()
        .filter(|(_, _, _, visible)| *visible)
        .map(|(key, label, href, _)| {
            minijinja::context! { key => key, label => label, href => href, current => key == section }
        })
        .collect();
        let frame = minijinja::context! {
            me => minijinja::context! {
                name => self.user.display_name,
                upn => self.user.user_principal_name,
            },
            nav => nav,
            section => section,
            notice => self.notice,
        };
        render_with_status(
            status,
            template,
            minijinja::context! { frame => frame, ..minijinja::Value::from_serialize(&context) },
        )
    }

    pub fn page<S: Serialize>(&self, template: &str, section: &str, context: S) -> PageResult {
        Ok(self.render(StatusCode::OK, template, section, context))
    }
}

/// The page that asks before something is removed for good. Every delete, revoke and remove
/// button in the portal is a link to its action's address (`GET`), which shows this page; only
/// the form on it posts (same-origin guarded, as every portal form is) to that same address.
pub struct Confirm {
    /// What the button does, as its words and the page's title: "Delete group".
    pub action: &'static str,
    /// The sentence before the object's name: "This deletes the group".
    pub lead: String,
    /// The object as a person knows it (its name, a sign-in name).
    pub name: String,
    /// The rest of the sentence after the name, if any: "from Admins".
    pub tail: String,
    /// What else changes with it, one sentence each.
    pub consequences: Vec<String>,
    /// Where Cancel goes: the page the person came from.
    pub back_to: String,
}

impl Portal {
    /// Shows the confirmation for `confirm`, whose form posts back to the address it was opened
    /// at; nothing has changed yet.
    pub fn confirm(&self, section: &str, confirm: Confirm) -> PageResult {
        self.page(
            "admin/confirm.html",
            section,
            minijinja::context! {
                action => confirm.action,
                lead => confirm.lead,
                name => confirm.name,
                tail => confirm.tail,
                consequences => confirm.consequences,
                post_to => self.path,
                back_to => confirm.back_to,
                undoable => false,
                danger => true,
            },
        )
    }

    /// [`Portal::confirm`] for a change that can be undone (a deletion kept restorable, a
    /// restore): the page does not say it can't be. `danger`: the button still warns (a
    /// deletion ends the person's access even though it can be undone).
    pub fn confirm_undoable(&self, section: &str, confirm: Confirm, danger: bool) -> PageResult {
        self.page(
            "admin/confirm.html",
            section,
            minijinja::context! {
                action => confirm.action,
                lead => confirm.lead,
                name => confirm.name,
                tail => confirm.tail,
                consequences => confirm.consequences,
                post_to => self.path,
                back_to => confirm.back_to,
                undoable => true,
                danger => danger,
            },
        )
    }
}

/// After a change: back to `path` with a notice. The notice travels as a code from a fixed
/// list, never as text, so a crafted link cannot make the portal say something it did not.
pub fn done(path: &str, code: &str) -> PageResult {
    let separator = if path.contains('?') { '&' } else { '?' };
    Ok(Redirect::to(&format!("{path}{separator}done={code}")).into_response())
}

fn notice_text(code: &str) -> Option<&'static str> {
    Some(match code {
        "user-created" => "The user was created.",
        "profile-saved" => "The profile was saved.",
        "user-deleted" => {
            "The user was deleted. It can be restored from Deleted users for 30 days."
        }
        "user-restored" => "The user was restored, with their groups, roles and sign-in methods.",
        "user-purged" => "The user was deleted permanently.",
        "user-enabled" => "The account was enabled: the person can sign in.",
        "user-disabled" => "The account was disabled: the person can no longer sign in.",
        "sessions-revoked" => {
            "Their sessions and refresh tokens were revoked: they must sign in again."
        }
        "group-added" => "Added to the group.",
        "group-removed" => "Removed from the group.",
        "role-assigned" => "The role was assigned.",
        "role-removed" => "The role assignment was removed.",
        "passkey-deleted" => "The passkey was deleted.",
        "pass-deleted" => "The Temporary Access Pass was deleted.",
        "group-created" => "The group was created.",
        "group-deleted" => "The group was deleted.",
        "member-added" => "The member was added.",
        "member-removed" => "The member was removed.",
        "application-created" => "The application was registered.",
        "application-updated" => "The application was saved.",
        "application-deleted" => "The application was deleted.",
        "secret-removed" => "The client secret was removed.",
        "assignment-added" => "The assignment was added.",
        "assignment-removed" => "The assignment was removed.",
        "policy-created" => "The policy was created.",
        "policy-saved" => "The policy was saved.",
        "policy-unchanged" => "Nothing was changed, so nothing was saved.",
        "policy-deleted" => "The policy was deleted.",
        "policies-imported" => "The policies were imported.",
        "location-created" => "The named location was created.",
        "location-saved" => "The named location was saved.",
        "location-deleted" => "The named location was deleted.",
        "strength-created" => "The authentication strength was created.",
        "strength-saved" => "The authentication strength was saved.",
        "strength-deleted" => "The authentication strength was deleted.",
        "fido2-saved" => "The passkey (FIDO2) policy was saved.",
        "tap-saved" => "The Temporary Access Pass policy was saved.",
        _ => return None,
    })
}

// --- failures ----------------------------------------------------------------------------

/// A page instead of what was asked for: the friendly error page, a refusal naming the role
/// needed, or the sign-in redirect. Boxed: it travels in every handler's `Result`.
pub struct PageError(pub Box<Response>);

impl From<Response> for PageError {
    fn from(response: Response) -> Self {
        PageError(Box::new(response))
    }
}

pub type PageResult = Result<Response, PageError>;

impl IntoResponse for PageError {
    fn into_response(self) -> Response {
        *self.0
    }
}

impl From<Error> for PageError {
    fn from(e: Error) -> Self {
        PageError::from(super::failure_page(&e))
    }
}

/// Errors to show beside the fields of a form, keyed by field name; `form` holds the ones that
/// belong to no single field.
pub type FieldErrors = BTreeMap<String, String>;

/// The field errors for a refusal from core: an invalid field lands beside the field it names
/// (when the form has it), anything else at the top of the form. Returns the status to answer
/// with, or hands back an error that is not about the input (a missing object, a fault).
pub fn refusal(e: Error, fields: &[&str]) -> Result<(StatusCode, FieldErrors), PageError> {
    // Which failures are about what was typed; their status is still core's.
    let about_the_input = matches!(
        e,
        Error::Invalid { .. }
            | Error::Conflict { .. }
            | Error::WouldLockOut { .. }
            | Error::Forbidden(_)
            | Error::Denied { .. }
            | Error::PayloadTooLarge { .. }
    );
    if !about_the_input {
        return Err(e.into());
    }
    let status = StatusCode::from_u16(e.http_status()).unwrap_or(StatusCode::BAD_REQUEST);
    let field = e
        .target()
        .and_then(|t| {
            fields.iter().find(|f| {
                t == **f || t.starts_with(&format!("{f}.")) || t.starts_with(&format!("{f}["))
            })
        })
        .map(|f| f.to_string())
        .unwrap_or_else(|| "form".to_string());
    // A rule's refusal carries its code, so a person can quote it as the API would.
    // In the form's words: the API's property names become the labels beside the fields.
    let message = super::labels::in_form_words(&match &e {
        Error::Denied { code, .. } => format!("{} (code: {code})", e.public_message()),
        _ => e.public_message(),
    });
    let mut errors = FieldErrors::new();
    errors.insert(field, message);
    Ok((status, errors))
}

pub fn one_error(field: &str, message: impl Into<String>) -> FieldErrors {
    let mut errors = FieldErrors::new();
    errors.insert(field.to_string(), message.into());
    errors
}

// --- request helpers ---------------------------------------------------------------------

/// The correlation id and source address of the request, for the audit entries of changes
/// made in the portal.
pub struct Audit(pub RequestContext);

impl<S: Send + Sync> FromRequestParts<S> for Audit {
    type Rejection = PageError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, PageError> {
        let meta = parts
            .extensions
            .get::<RequestMeta>()
            .cloned()
            .ok_or_else(|| Error::Internal("request metadata missing".into()))?;
        // The portal's forms acknowledge a lockout with a checkbox, read by the handler.
        Ok(Audit(RequestContext {
            correlation_id: meta.request_id,
            ip_address: meta.client_ip,
            acknowledge_lockout: false,
        }))
    }
}

/// The query string of a page as name/value pairs (filters, the page cursor).
pub struct Query(pub Vec<(String, String)>);

impl<S: Send + Sync> FromRequestParts<S> for Query {
    type Rejection = PageError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, PageError> {
        Ok(Query(query_pairs(parts)))
    }
}

fn query_pairs(parts: &Parts) -> Vec<(String, String)> {
    serde_urlencoded::from_str(parts.uri.query().unwrap_or("")).unwrap_or_default()
}

impl Query {
    /// The trimmed value of a parameter, `""` when absent.
    pub fn get(&self, name: &str) -> &str {
        self.0
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.trim())
            .unwrap_or("")
    }

    /// One page of a list with these filters, starting where this page's link says.
    pub fn list(&self, filter: Vec<Predicate>) -> Result<ListQuery, PageError> {
        Ok(ListQuery {
            filter,
            top: PAGE_SIZE,
            after: self.cursor()?,
            count: false,
        })
    }

    /// The `name` filter of a list of named objects: display names starting with it.
    pub fn name_filter(&self) -> Vec<Predicate> {
        let name = self.get("name");
        if name.is_empty() {
            return Vec::new();
        }
        vec![Predicate {
            field: "display_name",
            op: Op::StartsWith,
            value: QueryValue::Text(name.to_string()),
        }]
    }

    /// Where this page of a list starts: the last cursor of the trail in `after`.
    pub fn cursor(&self) -> Result<Option<Cursor>, PageError> {
        let mut cursors = Vec::new();
        for token in self.trail() {
            cursors.push(odata::decode_skiptoken(token).map_err(|_| {
                let message = "The link to this page of the list is not one this server made. Go back to the first page.";
                PageError::from(failure_page_as(
                    &Error::invalid("after", message),
                    "That page does not exist",
                    message,
                ))
            })?);
        }
        Ok(cursors.pop())
    }

    /// `after=…` holds the cursors this server issued for the pages before this one and for
    /// this one, oldest first, joined with `.` (which base64url never uses): the store pages
    /// only forwards, so the way back travels in the link. The newest [`MAX_TRAIL`] are kept;
    /// past that many pages "Previous" from the oldest one kept leads to the first page.
    fn trail(&self) -> Vec<&str> {
        self.get("after")
            .split('.')
            .filter(|t| !t.is_empty())
            .collect()
    }

    /// This list at `path` with the same filters, starting after the cursors `trail`.
    fn link(&self, path: &str, trail: &[&str]) -> String {
        let mut pairs: Vec<(&str, String)> = self
            .0
            .iter()
            .filter(|(k, v)| k != "after" && k != "done" && !v.trim().is_empty())
            .map(|(k, v)| (k.as_str(), v.trim().to_string()))
            .collect();
        if !trail.is_empty() {
            pairs.push(("after", trail.join(".")));
        }
        if pairs.is_empty() {
            return path.to_string();
        }
        format!(
            "{path}?{}",
            serde_urlencoded::to_string(pairs).unwrap_or_default()
        )
    }

    /// This list at `path` with the same filters (and no page), plus `extra` parameters: the
    /// CSV export of what the page shows.
    pub fn link_with(&self, path: &str, extra: &[(&str, &str)]) -> String {
        let mut pairs: Vec<(&str, String)> = self
            .0
            .iter()
            .filter(|(k, v)| {
                k != "after"
                    && k != "done"
                    && !v.trim().is_empty()
                    && !extra.iter().any(|(e, _)| e == k)
            })
            .map(|(k, v)| (k.as_str(), v.trim().to_string()))
            .collect();
        pairs.extend(extra.iter().map(|(k, v)| (*k, v.to_string())));
        format!(
            "{path}?{}",
            serde_urlencoded::to_string(pairs).unwrap_or_default()
        )
    }

    /// The links of a list's pager, filters kept: the first page and the previous one (on a
    /// later page), and the next (when `next` says there is more).
    pub fn pager(&self, path: &str, next: Option<&Cursor>) -> serde_json::Value {
        let trail = self.trail();
        let previous = trail
            .split_last()
            .map(|(_, before)| self.link(path, before));
        let next = next.map(|cursor| {
            let token = odata::encode_skiptoken(cursor);
            let mut longer = trail.clone();
            longer.push(&token);
            let start = longer.len().saturating_sub(MAX_TRAIL);
            self.link(path, &longer[start..])
        });
        serde_json::json!({
            "first": self.link(path, &[]),
            "previous": previous,
            "next": next,
        })
    }
}

/// How many pages back a list's links remember (see [`Query::trail`]).
const MAX_TRAIL: usize = 40;

/// A submitted HTML form, as name/value pairs in the order sent (checkbox groups and multiple
/// selects repeat a name).
pub struct FormData(pub Vec<(String, String)>);

impl<S: Send + Sync> FromRequest<S> for FormData {
    type Rejection = PageError;

    async fn from_request(req: Request, state: &S) -> Result<Self, PageError> {
        let content_type = req
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_ascii_lowercase();
        if !content_type.starts_with("application/x-www-form-urlencoded") {
            return Err(Error::UnsupportedContentType {
                message: "This page takes the form it shows; send it from there.".into(),
            }
            .into());
        }
        let bytes = read_body(req, state).await?;
        serde_urlencoded::from_bytes(&bytes)
            .map(FormData)
            .map_err(|_| unreadable_form().into())
    }
}

async fn read_body<S: Send + Sync>(req: Request, state: &S) -> Result<Bytes, PageError> {
    Bytes::from_request(req, state).await.map_err(|rejection| {
        if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
            Error::PayloadTooLarge {
                limit: crate::MAX_BODY_BYTES,
            }
            .into()
        } else {
            unreadable_form().into()
        }
    })
}

fn unreadable_form() -> Error {
    Error::invalid(
        "form",
        "The form could not be read. Go back and send it again.",
    )
}

impl FormData {
    /// The trimmed value of a field, `""` when absent.
    pub fn text(&self, name: &str) -> &str {
        self.0
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.trim())
            .unwrap_or("")
    }

    /// Every non-empty value sent under a name (checkboxes, multiple selects).
    pub fn all(&self, name: &str) -> Vec<String> {
        self.0
            .iter()
            .filter(|(k, v)| k == name && !v.trim().is_empty())
            .map(|(_, v)| v.trim().to_string())
            .collect()
    }

    /// A checkbox: sent (with any value but "false") means ticked.
    pub fn checked(&self, name: &str) -> bool {
        self.0.iter().any(|(k, v)| k == name && v != "false")
    }

    /// A text area's lines, trimmed, without blank ones.
    pub fn lines(&self, name: &str) -> Vec<String> {
        self.text(name)
            .lines()
            .flat_map(|l| l.split(','))
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .map(str::to_string)
            .collect()
    }
}

/// A moment as the portal shows it: UTC, to the minute.
pub fn when(t: OffsetDateTime) -> String {
    let t = t.to_offset(time::UtcOffset::UTC);
    format!(
        "{:04}-{:02}-{:02} {:02}:{:02} UTC",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute()
    )
}

// --- home --------------------------------------------------------------------------------

/// The portal's home: what this person may look after, with a way into each. Someone with no
/// administrator role is told which roles open the portal rather than shown an empty page.
async fn home(State(state): State<Arc<PortalState>>, portal: Portal) -> PageResult {
    if portal.principal.permissions.is_empty() {
        return Err(portal.refuse(
            "the admin portal",
            None,
            &[
                "User Administrator",
                "Conditional Access Administrator",
                "Authentication Administrator",
                "Reports Reader",
                "Global Administrator",
            ],
        ));
    }
    let roles = state.directory.active_roles_of_user(portal.user.id).await?;
    let role_names: Vec<&str> = roles
        .iter()
        .filter_map(|r| portcullis_core::directory::roles::built_in_role(*r))
        .map(|r| r.display_name)
        .collect();
    portal.page(
        "admin/home.html",
        "home",
        minijinja::context! {
            roles => role_names,
            can => minijinja::context! {
                users => portal.may::<ReadUsers>(),
                groups => portal.may::<ReadGroups>(),
                applications => portal.may::<ReadApplications>(),
                policies => portal.may::<ReadPolicies>(),
                logs => portal.may::<ReadAuditLogs>(),
            },
        },
    )
}
