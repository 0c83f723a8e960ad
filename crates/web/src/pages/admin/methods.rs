//! Authentication method policies: passkeys (FIDO2) with the AAGUID list and the attestation
//! switch, and the Temporary Access Pass lifetimes. Who the methods are for (include and
//! exclude groups) is kept as it is; the form changes the settings it shows.

use std::sync::Arc;

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::{get, post};
use portcullis_core::directory::authz::{
    ReadPolicies, ReadUserMethods, WriteAuthenticationMethodPolicy,
};
use serde_json::{Value, json};

use super::{Audit, FieldErrors, FormData, PageResult, Portal, done, one_error, refusal};
use crate::{AppState, PortalState};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/admin/authentication-methods", get(show))
        .route("/admin/authentication-methods/fido2", post(save_fido2))
        .route(
            "/admin/authentication-methods/temporary-access-pass",
            post(save_pass),
        )
}

const FIDO2_FIELDS: &[&str] = &[
    "state",
    "isSelfServiceRegistrationAllowed",
    "isAttestationEnforced",
    "keyRestrictions",
];
const PASS_FIELDS: &[&str] = &[
    "state",
    "defaultLifetimeInMinutes",
    "minimumLifetimeInMinutes",
    "maximumLifetimeInMinutes",
    "defaultLength",
    "isUsableOnce",
];

async fn show(State(state): State<Arc<PortalState>>, portal: Portal) -> PageResult {
    page(&state, &portal, StatusCode::OK, None, None).await
}

/// The page; a refused form comes back with what was typed and its errors (`fido2` or `pass`).
async fn page(
    state: &PortalState,
    portal: &Portal,
    status: StatusCode,
    fido2: Option<(Value, FieldErrors)>,
    pass: Option<(Value, FieldErrors)>,
) -> PageResult {
    let grant = portal.grant::<ReadPolicies>("authentication method policies")?;
    let stored_fido2 = state.passkeys.configuration(&grant).await?;
    let fido2_view = json!({
        "state": stored_fido2["state"],
        "isSelfServiceRegistrationAllowed": stored_fido2["isSelfServiceRegistrationAllowed"],
        "isAttestationEnforced": stored_fido2["isAttestationEnforced"],
        "keyRestrictionsEnforced": stored_fido2["keyRestrictions"]["isEnforced"],
        "enforcementType": stored_fido2["keyRestrictions"]["enforcementType"],
        "aaGuids": stored_fido2["keyRestrictions"]["aaGuids"]
            .as_array()
            .map(|a| a.iter().filter_map(Value::as_str).collect::<Vec<_>>().join("\n"))
            .unwrap_or_default(),
        "targets": stored_fido2["includeTargets"],
    });
    let stored_pass =
        serde_json::to_value(state.passes.read_configuration(&grant).await?).unwrap_or_default();
    let (fido2_values, fido2_errors) = fido2.unwrap_or((fido2_view, FieldErrors::new()));
    let (pass_values, pass_errors) = pass.unwrap_or((stored_pass, FieldErrors::new()));
    Ok(portal.render(
        status,
        "admin/methods.html",
        "methods",
        json!({
            "fido2": fido2_values,
            "fido2_errors": fido2_errors,
            "pass": pass_values,
            "pass_errors": pass_errors,
            "can_write": portal.may::<WriteAuthenticationMethodPolicy>(),
        }),
    ))
}

async fn save_fido2(
    State(state): State<Arc<PortalState>>,
    portal: Portal,
    Audit(request): Audit,
    form: FormData,
) -> PageResult {
    let grant =
        portal.grant::<WriteAuthenticationMethodPolicy>("authentication method policies")?;
    let mut request = request;
    request.acknowledge_lockout = form.text("acknowledgeLockout") == "true";
    let aaguids: Vec<String> = form
        .lines("aaGuids")
        .iter()
        .map(|a| a.to_lowercase())
        .collect();
    let mut typed = json!({
        "state": form.text("state"),
        "isSelfServiceRegistrationAllowed": form.checked("isSelfServiceRegistrationAllowed"),
        "isAttestationEnforced": form.checked("isAttestationEnforced"),
        "keyRestrictionsEnforced": form.checked("keyRestrictionsEnforced"),
        "enforcementType": form.text("enforcementType"),
        "aaGuids": form.text("aaGuids"),
    });
    let patch = json!({
        "state": form.text("state"),
        "isSelfServiceRegistrationAllowed": form.checked("isSelfServiceRegistrationAllowed"),
        "isAttestationEnforced": form.checked("isAttestationEnforced"),
        "keyRestrictions": {
            "isEnforced": form.checked("keyRestrictionsEnforced"),
            "enforcementType": form.text("enforcementType"),
            "aaGuids": aaguids,
        },
    });
    if form.text("intent") == "preview" {
        // What the form's list would stop, before anything is saved.
        typed["impact"] = match portal.maybe::<ReadUserMethods>() {
            Some(read) => match state.passkeys.policy_change_impact(&read, &patch).await {
                Ok(impact) => json!(impact),
                Err(e) => {
                    let (status, errors) = refusal(e, FIDO2_FIELDS)?;
                    return page(&state, &portal, status, Some((typed, errors)), None).await;
                }
            },
            None => json!({"unavailable": true}),
        };
        return page(
            &state,
            &portal,
            StatusCode::OK,
            Some((typed, FieldErrors::new())),
            None,
        )
        .await;
    }
    match state
        .passkeys
        .update_configuration(&grant, &request, &patch)
        .await
    {
        Ok(_) => done("/admin/authentication-methods", "fido2-saved"),
        Err(e) => {
            // The lockout guard refused: the form offers the checkbox that acknowledges it.
            typed["lockout"] = json!(matches!(e, portcullis_core::Error::WouldLockOut { .. }));
            let (status, errors) = refusal(e, FIDO2_FIELDS)?;
            page(&state, &portal, status, Some((typed, errors)), None).await
        }
    }
}

async fn save_pass(
    State(state): State<Arc<PortalState>>,
    portal: Portal,
    Audit(request): Audit,
    form: FormData,
) -> PageResult {
    let grant =
        portal.grant::<WriteAuthenticationMethodPolicy>("authentication method policies")?;
    let mut request = request;
    request.acknowledge_lockout = form.text("acknowledgeLockout") == "true";
    let mut typed = json!({
        "state": form.text("state"),
        "defaultLifetimeInMinutes": form.text("defaultLifetimeInMinutes"),
        "minimumLifetimeInMinutes": form.text("minimumLifetimeInMinutes"),
        "maximumLifetimeInMinutes": form.text("maximumLifetimeInMinutes"),
        "defaultLength": form.text("defaultLength"),
        "isUsableOnce": form.checked("isUsableOnce"),
    });
    let mut patch = json!({
        "state": form.text("state"),
        "isUsableOnce": form.checked("isUsableOnce"),
    });
    for field in [
        "defaultLifetimeInMinutes",
        "minimumLifetimeInMinutes",
        "maximumLifetimeInMinutes",
        "defaultLength",
    ] {
        match form.text(field).parse::<u32>() {
            Ok(n) => patch[field] = json!(n),
            Err(_) => {
                let errors = one_error(field, "Give a whole number.");
                return page(
                    &state,
                    &portal,
                    StatusCode::BAD_REQUEST,
                    None,
                    Some((typed, errors)),
                )
                .await;
            }
        }
    }
    match state
        .passes
        .update_configuration(&grant, &request, patch)
        .await
    {
        Ok(_) => done("/admin/authentication-methods", "tap-saved"),
        Err(e) => {
            // The lockout guard refused: the form offers the checkbox that acknowledges it.
            typed["lockout"] = json!(matches!(e, portcullis_core::Error::WouldLockOut { .. }));
            let (status, errors) = refusal(e, PASS_FIELDS)?;
            page(&state, &portal, status, None, Some((typed, errors))).await
        }
    }
}
