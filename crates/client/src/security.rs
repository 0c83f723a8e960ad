//! `portcullis strengths|methods|passkeys|sessions`: the authentication strengths, the method
//! policies (Temporary Access Pass, passkeys with their AAGUID list, passwords), a person's
//! passkeys and their sign-in sessions, each a thin layer over the admin API.
//!
//! Must never: send a method setting the command line did not give (a `set` changes only what
//! it names), or accept a switch for a method it does not belong to.

use std::io::Write;

use clap::{Args, Subcommand};
use serde_json::{Map, Value, json};

use crate::AdminClient;
use crate::ClientError;
use crate::cli::ConnectionArgs;
use crate::client::segment;
use crate::table::{Table, write_record};

type Out<'a> = &'a mut (dyn Write + Send);

const STRENGTHS: &str = "policies/authenticationStrengthPolicies";
const METHODS: &str = "policies/authenticationMethodsPolicy";

#[derive(Debug, Args)]
pub struct StrengthsArgs {
    #[command(subcommand)]
    pub command: StrengthsCommand,
    #[command(flatten)]
    pub connection: ConnectionArgs,
}

#[derive(Debug, Subcommand)]
pub enum StrengthsCommand {
    /// List the authentication strengths (the built-in ones and custom ones)
    List,
    /// Show one strength, by id or display name
    Show { strength: String },
}

#[derive(Debug, Args)]
pub struct MethodsArgs {
    #[command(subcommand)]
    pub command: MethodsCommand,
    #[command(flatten)]
    pub connection: ConnectionArgs,
}

/// A method policy: `TemporaryAccessPass` (or `tap`), `fido2` (or `passkey`), `Password`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    TemporaryAccessPass,
    Fido2,
    Password,
}

impl Method {
    /// The configuration's name in the API path.
    pub fn path_name(self) -> &'static str {
        match self {
            Method::TemporaryAccessPass => "TemporaryAccessPass",
            Method::Fido2 => "fido2",
            Method::Password => "Password",
        }
    }
}

impl std::str::FromStr for Method {
    type Err = String;

    fn from_str(text: &str) -> Result<Method, String> {
        match text.trim().to_ascii_lowercase().as_str() {
            "temporaryaccesspass" | "tap" => Ok(Method::TemporaryAccessPass),
            "fido2" | "passkey" | "passkeys" => Ok(Method::Fido2),
            "password" => Ok(Method::Password),
            _ => Err(format!(
                "'{text}' is not a method policy: TemporaryAccessPass (tap), fido2 (passkey) or Password"
            )),
        }
    }
}

#[derive(Debug, Subcommand)]
pub enum MethodsCommand {
    /// List the method policies and whether each is on
    List,
    /// Show one method policy: TemporaryAccessPass (tap), fido2 (passkey) or Password
    Show {
        #[arg(value_name = "NAME")]
        method: Method,
    },
    /// Change a method policy; only the settings given change
    Set(MethodSettings),
}

#[derive(Debug, Args)]
pub struct MethodSettings {
    /// TemporaryAccessPass (tap), fido2 (passkey) or Password
    #[arg(value_name = "NAME")]
    pub method: Method,
    /// Turn the method on or off
    #[arg(long, value_parser = ["enabled", "disabled"])]
    pub state: Option<String>,
    /// TemporaryAccessPass: the lifetime of a pass issued without one (minutes)
    #[arg(long, value_name = "MINUTES")]
    pub default_lifetime: Option<u32>,
    /// TemporaryAccessPass: the shortest lifetime a pass may be given (minutes)
    #[arg(long, value_name = "MINUTES")]
    pub min_lifetime: Option<u32>,
    /// TemporaryAccessPass: the longest lifetime a pass may be given (minutes)
    #[arg(long, value_name = "MINUTES")]
    pub max_lifetime: Option<u32>,
    /// TemporaryAccessPass: characters in a pass
    #[arg(long, value_name = "N")]
    pub length: Option<u32>,
    /// TemporaryAccessPass: every pass works for one sign-in only
    #[arg(long, value_name = "BOOL")]
    pub usable_once: Option<bool>,
    /// fido2: an authenticator model's AAGUID for the key restriction list (repeat for
    /// several; replaces the list)
    #[arg(long = "aaguid", value_name = "AAGUID")]
    pub aaguids: Vec<String>,
    /// fido2: empty the key restriction list
    #[arg(long, conflicts_with = "aaguids")]
    pub clear_aaguids: bool,
    /// fido2: whether the AAGUID list applies (to registration and sign-in both)
    #[arg(long, value_name = "BOOL")]
    pub enforce_key_restrictions: Option<bool>,
    /// fido2: the list names the only models allowed (allow) or models refused (block)
    #[arg(long, value_parser = ["allow", "block"])]
    pub key_restriction: Option<String>,
    /// fido2: a passkey must carry an attestation a trusted root vouches for
    #[arg(long, value_name = "BOOL")]
    pub attestation: Option<bool>,
    /// fido2: people may register passkeys themselves in Security info
    #[arg(long, value_name = "BOOL")]
    pub self_service: Option<bool>,
}

impl MethodSettings {
    /// The PATCH body for these settings, or a usage error naming a switch that does not
    /// belong to the method, or that nothing was given.
    pub fn patch(&self) -> Result<Value, ClientError> {
        let mut body = Map::new();
        let mut misplaced: Vec<&str> = Vec::new();
        if let Some(state) = &self.state {
            body.insert("state".into(), json!(state));
        }
        let tap = [
            (
                "defaultLifetimeInMinutes",
                "--default-lifetime",
                self.default_lifetime,
            ),
            (
                "minimumLifetimeInMinutes",
                "--min-lifetime",
                self.min_lifetime,
            ),
            (
                "maximumLifetimeInMinutes",
                "--max-lifetime",
                self.max_lifetime,
            ),
            ("defaultLength", "--length", self.length),
        ];
        for (key, flag, value) in tap {
            if let Some(v) = value {
                if self.method == Method::TemporaryAccessPass {
                    body.insert(key.into(), json!(v));
                } else {
                    misplaced.push(flag);
                }
            }
        }
        if let Some(once) = self.usable_once {
            if self.method == Method::TemporaryAccessPass {
                body.insert("isUsableOnce".into(), json!(once));
            } else {
                misplaced.push("--usable-once");
            }
        }
        let mut restrictions = Map::new();
        if !self.aaguids.is_empty() || self.clear_aaguids {
            restrictions.insert("aaGuids".into(), json!(self.aaguids));
        }
        if let Some(enforce) = self.enforce_key_restrictions {
            restrictions.insert("isEnforced".into(), json!(enforce));
        }
        if let Some(kind) = &self.key_restriction {
            restrictions.insert("enforcementType".into(), json!(kind));
        }
        let fido2 = [
            ("isAttestationEnforced", "--attestation", self.attestation),
            (
                "isSelfServiceRegistrationAllowed",
                "--self-service",
                self.self_service,
            ),
        ];
        if self.method == Method::Fido2 {
            if !restrictions.is_empty() {
                body.insert("keyRestrictions".into(), Value::Object(restrictions));
            }
            for (key, _, value) in fido2 {
                if let Some(v) = value {
                    body.insert(key.into(), json!(v));
                }
            }
        } else {
            if !restrictions.is_empty() {
                misplaced
                    .push("--aaguid/--clear-aaguids/--enforce-key-restrictions/--key-restriction");
            }
            misplaced.extend(fido2.iter().filter(|f| f.2.is_some()).map(|f| f.1));
        }
        if !misplaced.is_empty() {
            return Err(ClientError::Usage(format!(
                "{} do not apply to the {} policy.",
                misplaced.join(", "),
                self.method.path_name()
            )));
        }
        if body.is_empty() {
            return Err(ClientError::Usage(
                "nothing to change: give at least one setting (see --help).".into(),
            ));
        }
        Ok(Value::Object(body))
    }
}

#[derive(Debug, Args)]
pub struct PasskeysArgs {
    #[command(subcommand)]
    pub command: PasskeysCommand,
    #[command(flatten)]
    pub connection: ConnectionArgs,
}

#[derive(Debug, Subcommand)]
pub enum PasskeysCommand {
    /// List a person's passkeys
    List {
        /// Object id or userPrincipalName
        user: String,
    },
    /// Delete one of a person's passkeys: it no longer signs them in
    Delete {
        /// Object id or userPrincipalName
        user: String,
        /// The passkey's id (from `passkeys list`)
        id: String,
    },
}

#[derive(Debug, Args)]
pub struct SessionsArgs {
    #[command(subcommand)]
    pub command: SessionsCommand,
    #[command(flatten)]
    pub connection: ConnectionArgs,
}

#[derive(Debug, Subcommand)]
pub enum SessionsCommand {
    /// End every sign-in session of a person and revoke their refresh tokens, on every node
    Revoke {
        /// Object id or userPrincipalName
        user: String,
    },
}

fn s(v: &Value, key: &str) -> String {
    match v.get(key) {
        Some(Value::String(t)) => t.clone(),
        Some(Value::Null) | None => String::new(),
        Some(other) => other.to_string(),
    }
}

fn list_of(v: &Value, key: &str) -> String {
    v.get(key)
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .map(|x| match x {
                    Value::String(t) => t.clone(),
                    other => other.to_string(),
                })
                .collect::<Vec<_>>()
                .join(", ")
        })
        .unwrap_or_default()
}

fn write_json(out: Out<'_>, value: &Value) -> Result<(), ClientError> {
    serde_json::to_writer_pretty(&mut *out, value).map_err(std::io::Error::from)?;
    writeln!(out)?;
    Ok(())
}

pub(crate) async fn strengths(
    client: &AdminClient,
    cmd: StrengthsCommand,
    json: bool,
    out: Out<'_>,
) -> Result<(), ClientError> {
    let items = client.list_all(STRENGTHS).await?;
    match cmd {
        StrengthsCommand::List => {
            if json {
                return write_json(out, &json!({ "value": items }));
            }
            let mut t = Table::new(&["ID", "DISPLAY NAME", "TYPE", "ALLOWED COMBINATIONS"]);
            for item in &items {
                t.row([
                    s(item, "id"),
                    s(item, "displayName"),
                    s(item, "policyType"),
                    list_of(item, "allowedCombinations"),
                ]);
            }
            t.write(out)?;
            Ok(())
        }
        StrengthsCommand::Show { strength } => {
            let wanted = strength.trim();
            let found: Vec<&Value> = items
                .iter()
                .filter(|i| {
                    s(i, "id").eq_ignore_ascii_case(wanted)
                        || s(i, "displayName").eq_ignore_ascii_case(wanted)
                })
                .collect();
            let item = match found.as_slice() {
                [one] => *one,
                [] => {
                    return Err(ClientError::Usage(format!(
                        "no authentication strength has the id or name '{wanted}'."
                    )));
                }
                _ => {
                    return Err(ClientError::Usage(format!(
                        "several strengths are named '{wanted}': give the id instead."
                    )));
                }
            };
            if json {
                return write_json(out, item);
            }
            write_record(
                out,
                &[
                    ("ID", s(item, "id")),
                    ("Display name", s(item, "displayName")),
                    ("Description", s(item, "description")),
                    ("Type", s(item, "policyType")),
                    ("Requirements", s(item, "requirementsSatisfied")),
                    ("Allowed combinations", list_of(item, "allowedCombinations")),
                ],
            )?;
            Ok(())
        }
    }
}

/// The settings of one method policy, as one line for the list.
fn method_summary(c: &Value) -> String {
    let id = s(c, "id");
    if id.eq_ignore_ascii_case("TemporaryAccessPass") {
        format!(
            "lifetime {} min (from {} to {}), length {}, one use only: {}",
            s(c, "defaultLifetimeInMinutes"),
            s(c, "minimumLifetimeInMinutes"),
            s(c, "maximumLifetimeInMinutes"),
            s(c, "defaultLength"),
            s(c, "isUsableOnce"),
        )
    } else if id.eq_ignore_ascii_case("Fido2") {
        let r = &c["keyRestrictions"];
        let list = list_of(r, "aaGuids");
        format!(
            "self-service: {}, attestation: {}, key restrictions: {}",
            s(c, "isSelfServiceRegistrationAllowed"),
            s(c, "isAttestationEnforced"),
            if r["isEnforced"].as_bool() == Some(true) {
                format!(
                    "{} [{}]",
                    s(r, "enforcementType"),
                    if list.is_empty() { "none" } else { &list }
                )
            } else {
                "off".to_string()
            }
        )
    } else {
        String::new()
    }
}

fn write_method(out: Out<'_>, c: &Value) -> std::io::Result<()> {
    let targets = |key: &str| {
        c.get(key)
            .and_then(Value::as_array)
            .map(|a| a.iter().map(|t| s(t, "id")).collect::<Vec<_>>().join(", "))
            .unwrap_or_default()
    };
    let mut rows = vec![
        ("Method", s(c, "id")),
        ("State", s(c, "state")),
        ("Applies to", targets("includeTargets")),
        ("Excluded", targets("excludeTargets")),
    ];
    let id = s(c, "id");
    if id.eq_ignore_ascii_case("TemporaryAccessPass") {
        rows.extend([
            (
                "Default lifetime (minutes)",
                s(c, "defaultLifetimeInMinutes"),
            ),
            (
                "Minimum lifetime (minutes)",
                s(c, "minimumLifetimeInMinutes"),
            ),
            (
                "Maximum lifetime (minutes)",
                s(c, "maximumLifetimeInMinutes"),
            ),
            ("Length", s(c, "defaultLength")),
            ("One use only", s(c, "isUsableOnce")),
        ]);
    } else if id.eq_ignore_ascii_case("Fido2") {
        let r = &c["keyRestrictions"];
        rows.extend([
            (
                "Self-service registration",
                s(c, "isSelfServiceRegistrationAllowed"),
            ),
            ("Attestation enforced", s(c, "isAttestationEnforced")),
            ("Key restrictions enforced", s(r, "isEnforced")),
            ("Key restriction", s(r, "enforcementType")),
            ("AAGUIDs", list_of(r, "aaGuids")),
        ]);
    }
    write_record(out, &rows)
}

fn method_path(method: Method) -> String {
    format!(
        "{METHODS}/authenticationMethodConfigurations/{}",
        method.path_name()
    )
}

pub(crate) async fn methods(
    client: &AdminClient,
    cmd: MethodsCommand,
    json: bool,
    out: Out<'_>,
) -> Result<(), ClientError> {
    match cmd {
        MethodsCommand::List => {
            let policy = client.get(METHODS).await?;
            if json {
                return write_json(out, &policy);
            }
            let mut t = Table::new(&["METHOD", "STATE", "SETTINGS"]);
            for c in policy["authenticationMethodConfigurations"]
                .as_array()
                .into_iter()
                .flatten()
            {
                t.row([s(c, "id"), s(c, "state"), method_summary(c)]);
            }
            t.write(out)?;
            Ok(())
        }
        MethodsCommand::Show { method } => {
            let c = client.get(&method_path(method)).await?;
            if json {
                return write_json(out, &c);
            }
            write_method(out, &c)?;
            Ok(())
        }
        MethodsCommand::Set(settings) => {
            let body = settings.patch()?;
            client.patch(&method_path(settings.method), &body).await?;
            let c = client.get(&method_path(settings.method)).await?;
            if json {
                return write_json(out, &c);
            }
            writeln!(out, "Changed the {} policy.", s(&c, "id"))?;
            write_method(out, &c)?;
            Ok(())
        }
    }
}

fn passkeys_path(user: &str) -> String {
    format!("users/{}/authentication/fido2Methods", segment(user))
}

pub(crate) async fn passkeys(
    client: &AdminClient,
    cmd: PasskeysCommand,
    json: bool,
    out: Out<'_>,
) -> Result<(), ClientError> {
    match cmd {
        PasskeysCommand::List { user } => {
            let items = client.list_all(&passkeys_path(&user)).await?;
            if json {
                return write_json(out, &json!({ "value": items }));
            }
            if items.is_empty() {
                writeln!(out, "{user} has no passkeys.")?;
                return Ok(());
            }
            let mut t = Table::new(&[
                "ID",
                "DISPLAY NAME",
                "MODEL",
                "AAGUID",
                "ATTESTATION",
                "CREATED",
            ]);
            for p in &items {
                t.row([
                    s(p, "id"),
                    s(p, "displayName"),
                    s(p, "model"),
                    s(p, "aaGuid"),
                    s(p, "attestationLevel"),
                    s(p, "createdDateTime"),
                ]);
            }
            t.write(out)?;
            Ok(())
        }
        PasskeysCommand::Delete { user, id } => {
            client
                .delete(&format!("{}/{}", passkeys_path(&user), segment(&id)))
                .await?;
            if !json {
                writeln!(
                    out,
                    "Deleted passkey {id} of {user}: it no longer signs them in."
                )?;
            }
            Ok(())
        }
    }
}

pub(crate) async fn sessions(
    client: &AdminClient,
    cmd: SessionsCommand,
    json: bool,
    out: Out<'_>,
) -> Result<(), ClientError> {
    let SessionsCommand::Revoke { user } = cmd;
    let answer = client
        .post(
            &format!("users/{}/revokeSignInSessions", segment(&user)),
            &json!({}),
        )
        .await?;
    if json {
        return write_json(out, &answer);
    }
    writeln!(
        out,
        "Ended every sign-in session of {user} and revoked their refresh tokens: they sign in again."
    )?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(method: Method) -> MethodSettings {
        MethodSettings {
            method,
            state: None,
            default_lifetime: None,
            min_lifetime: None,
            max_lifetime: None,
            length: None,
            usable_once: None,
            aaguids: Vec::new(),
            clear_aaguids: false,
            enforce_key_restrictions: None,
            key_restriction: None,
            attestation: None,
            self_service: None,
        }
    }

    #[test]
    fn method_names_and_aliases() {
        assert_eq!("tap".parse(), Ok(Method::TemporaryAccessPass));
        assert_eq!("Passkey".parse(), Ok(Method::Fido2));
        assert_eq!("PASSWORD".parse(), Ok(Method::Password));
        assert!("sms".parse::<Method>().is_err());
    }

    #[test]
    fn a_set_sends_only_what_was_given() {
        let mut f = settings(Method::Fido2);
        f.aaguids = vec!["cb69481e-8ff7-4039-93ec-0a2729a154a8".into()];
        f.enforce_key_restrictions = Some(true);
        f.key_restriction = Some("allow".into());
        assert_eq!(
            f.patch().unwrap(),
            json!({"keyRestrictions": {"aaGuids": ["cb69481e-8ff7-4039-93ec-0a2729a154a8"], "isEnforced": true, "enforcementType": "allow"}})
        );
        let mut t = settings(Method::TemporaryAccessPass);
        t.default_lifetime = Some(120);
        t.usable_once = Some(true);
        assert_eq!(
            t.patch().unwrap(),
            json!({"defaultLifetimeInMinutes": 120, "isUsableOnce": true})
        );
    }

    #[test]
    fn a_switch_of_another_method_or_none_is_a_usage_error() {
        let mut p = settings(Method::Password);
        p.aaguids = vec!["x".into()];
        p.length = Some(9);
        let err = p.patch().unwrap_err();
        assert!(matches!(err, ClientError::Usage(_)));
        assert!(err.to_string().contains("--length"), "{err}");
        assert!(matches!(
            settings(Method::Fido2).patch(),
            Err(ClientError::Usage(_))
        ));
    }
}
