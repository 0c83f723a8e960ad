//! The Conditional Access policy form: a policy's Graph JSON as the fields a person edits, and
//! back. The form covers users and groups, target resources, platforms, locations, client apps,
//! grant and session controls and the state; it writes those members of the document and leaves
//! every other member as it was (device filters, risk levels, members this engine does not
//! implement), so editing a policy imported from Entra never drops what the form does not show.
//!
//! Field names are the Graph paths of what they edit (`conditions.users`, `grantControls`), so
//! an error core reports for a path lands beside the part of the form that sets it.

use std::collections::HashMap;

use serde::Serialize;
use serde_json::{Map, Value, json};

use super::{FieldErrors, FormData};

/// The sections of the form, by the Graph path each one writes. Core's errors name paths below
/// these; [`super::refusal`] puts each beside its section.
pub const SECTIONS: &[&str] = &[
    "displayName",
    "state",
    "conditions.users",
    "conditions.applications",
    "conditions.platforms",
    "conditions.locations",
    "conditions.clientAppTypes",
    "grantControls",
    "sessionControls",
];

pub const PLATFORMS: &[(&str, &str)] = &[
    ("android", "Android"),
    ("iOS", "iOS"),
    ("windows", "Windows"),
    ("macOS", "macOS"),
    ("linux", "Linux"),
];

pub const CLIENT_APPS: &[(&str, &str)] = &[
    ("browser", "Browser"),
    (
        "mobileAppsAndDesktopClients",
        "Mobile apps and desktop clients",
    ),
    ("exchangeActiveSync", "Exchange ActiveSync clients"),
    ("other", "Other clients"),
];

pub const USER_ACTIONS: &[(&str, &str)] = &[
    (
        "urn:user:registersecurityinfo",
        "Register security information",
    ),
    ("urn:user:registerdevice", "Register or join devices"),
];

/// The special member of `includeUsers`/`excludeUsers` the user box passes through as typed.
const GUESTS: &str = "GuestsOrExternalUsers";

/// What the form shows. Choices are kept as the words the form posts.
#[derive(Debug, Clone, Default, Serialize)]
pub struct PolicyForm {
    pub display_name: String,
    /// `enabled`, `disabled` or `enabledForReportingButNotEnforced`.
    pub state: String,
    /// `all`, `none` or `select`.
    pub users_include: String,
    /// One userPrincipalName (or object id) per line.
    pub include_users: String,
    pub include_groups: Vec<String>,
    pub include_roles: Vec<String>,
    pub exclude_users: String,
    pub exclude_groups: Vec<String>,
    pub exclude_roles: Vec<String>,
    /// `applications`, `userAction` or `authenticationContext`.
    pub target: String,
    /// `all`, `none` or `select`.
    pub apps_include: String,
    pub include_apps: Vec<String>,
    pub exclude_apps: Vec<String>,
    pub user_action: String,
    /// Authentication context ids, comma-separated (`c1, c2`).
    pub auth_contexts: String,
    pub platforms_configured: bool,
    /// `all` or `select`.
    pub platforms_include: String,
    pub include_platforms: Vec<String>,
    pub exclude_platforms: Vec<String>,
    pub locations_configured: bool,
    /// `All`, `AllTrusted` or `select`.
    pub locations_include: String,
    pub include_locations: Vec<String>,
    /// Named location ids, and `AllTrusted`.
    pub exclude_locations: Vec<String>,
    pub client_apps_configured: bool,
    pub client_app_types: Vec<String>,
    /// `block`, `grant` or `none` (session controls only).
    pub grant: String,
    pub require_mfa: bool,
    /// An authentication strength id, or empty.
    pub strength: String,
    /// `AND` or `OR`.
    pub operator: String,
    pub sign_in_frequency: bool,
    /// `timeBased` or `everyTime`.
    pub sign_in_frequency_interval: String,
    pub sign_in_frequency_value: String,
    /// `hours` or `days`.
    pub sign_in_frequency_unit: String,
    pub persistent_browser: bool,
    /// `always` or `never`.
    pub persistent_browser_mode: String,
}

fn strings(value: &Value) -> Vec<String> {
    value
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(Value::as_str)
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default()
}

fn has(list: &[String], word: &str) -> bool {
    list.iter().any(|x| x.eq_ignore_ascii_case(word))
}

impl PolicyForm {
    /// A new policy's form: report-only, as Entra suggests for a policy not yet tried.
    pub fn new_policy() -> Self {
        PolicyForm {
            state: "enabledForReportingButNotEnforced".into(),
            users_include: "select".into(),
            target: "applications".into(),
            apps_include: "all".into(),
            platforms_include: "all".into(),
            locations_include: "All".into(),
            grant: "grant".into(),
            operator: "OR".into(),
            sign_in_frequency_interval: "timeBased".into(),
            sign_in_frequency_unit: "hours".into(),
            persistent_browser_mode: "never".into(),
            ..PolicyForm::default()
        }
    }

    /// The form for a stored policy. `user_names` turns user ids into the sign-in names the
    /// form shows (ids it does not know stay as they are).
    pub fn from_policy(policy: &Value, user_names: &HashMap<String, String>) -> Self {
        let mut form = PolicyForm::new_policy();
        form.display_name = policy["displayName"].as_str().unwrap_or_default().into();
        form.state = policy["state"].as_str().unwrap_or("disabled").into();
        let conditions = &policy["conditions"];

        let users = &conditions["users"];
        let include_users = strings(&users["includeUsers"]);
        let named = |ids: Vec<String>| -> String {
            ids.iter()
                .filter(|id| !id.eq_ignore_ascii_case("All") && !id.eq_ignore_ascii_case("None"))
                .map(|id| user_names.get(id).cloned().unwrap_or_else(|| id.clone()))
                .collect::<Vec<_>>()
                .join("\n")
        };
        form.users_include = if has(&include_users, "All") {
            "all".into()
        } else if has(&include_users, "None") {
            "none".into()
        } else {
            "select".into()
        };
        form.include_users = named(include_users);
        form.include_groups = strings(&users["includeGroups"]);
        form.include_roles = strings(&users["includeRoles"]);
        form.exclude_users = named(strings(&users["excludeUsers"]));
        form.exclude_groups = strings(&users["excludeGroups"]);
        form.exclude_roles = strings(&users["excludeRoles"]);

        let apps = &conditions["applications"];
        let include_apps = strings(&apps["includeApplications"]);
        let actions = strings(&apps["includeUserActions"]);
        let contexts = strings(&apps["includeAuthenticationContextClassReferences"]);
        form.target = if !actions.is_empty() {
            "userAction".into()
        } else if !contexts.is_empty() {
            "authenticationContext".into()
        } else {
            "applications".into()
        };
        form.apps_include = if has(&include_apps, "All") {
            "all".into()
        } else if has(&include_apps, "None") || include_apps.is_empty() {
            "none".into()
        } else {
            "select".into()
        };
        form.include_apps = include_apps
            .into_iter()
            .filter(|a| !a.eq_ignore_ascii_case("All") && !a.eq_ignore_ascii_case("None"))
            .collect();
        form.exclude_apps = strings(&apps["excludeApplications"]);
        form.user_action = actions.into_iter().next().unwrap_or_default();
        form.auth_contexts = contexts.join(", ");

        let platforms = &conditions["platforms"];
        if platforms.is_object() {
            let include = strings(&platforms["includePlatforms"]);
            form.platforms_configured = true;
            form.platforms_include = if has(&include, "all") {
                "all"
            } else {
                "select"
            }
            .into();
            form.include_platforms = include.into_iter().filter(|p| p != "all").collect();
            form.exclude_platforms = strings(&platforms["excludePlatforms"]);
        }
        let locations = &conditions["locations"];
        if locations.is_object() {
            let include = strings(&locations["includeLocations"]);
            form.locations_configured = true;
            form.locations_include = if has(&include, "All") {
                "All".into()
            } else if has(&include, "AllTrusted") {
                "AllTrusted".into()
            } else {
                "select".into()
            };
            form.include_locations = include
                .into_iter()
                .filter(|l| l != "All" && l != "AllTrusted")
                .collect();
            form.exclude_locations = strings(&locations["excludeLocations"]);
        }
        let client_apps = strings(&conditions["clientAppTypes"]);
        form.client_apps_configured = !client_apps.is_empty() && !has(&client_apps, "all");
        form.client_app_types = client_apps.into_iter().filter(|c| c != "all").collect();

        let grant = &policy["grantControls"];
        match grant.is_object() {
            false => form.grant = "none".into(),
            true => {
                let controls = strings(&grant["builtInControls"]);
                form.operator = grant["operator"].as_str().unwrap_or("OR").to_uppercase();
                form.strength = grant["authenticationStrength"]["id"]
                    .as_str()
                    .unwrap_or_default()
                    .into();
                if has(&controls, "block") {
                    form.grant = "block".into();
                } else {
                    form.grant = "grant".into();
                    form.require_mfa = has(&controls, "mfa");
                }
            }
        }
        let session = &policy["sessionControls"];
        if session["signInFrequency"]["isEnabled"].as_bool() == Some(true) {
            let frequency = &session["signInFrequency"];
            form.sign_in_frequency = true;
            form.sign_in_frequency_interval = frequency["frequencyInterval"]
                .as_str()
                .unwrap_or("timeBased")
                .into();
            form.sign_in_frequency_value = frequency["value"]
                .as_u64()
                .map(|v| v.to_string())
                .unwrap_or_default();
            form.sign_in_frequency_unit = frequency["type"].as_str().unwrap_or("hours").into();
        }
        if session["persistentBrowser"]["isEnabled"].as_bool() == Some(true) {
            form.persistent_browser = true;
            form.persistent_browser_mode = session["persistentBrowser"]["mode"]
                .as_str()
                .unwrap_or("never")
                .into();
        }
        form
    }

    /// The form as posted.
    pub fn from_form(form: &FormData) -> Self {
        let text = |name: &str| form.text(name).to_string();
        PolicyForm {
            display_name: text("displayName"),
            state: text("state"),
            users_include: text("usersInclude"),
            include_users: text("includeUsers"),
            include_groups: form.all("includeGroups"),
            include_roles: form.all("includeRoles"),
            exclude_users: text("excludeUsers"),
            exclude_groups: form.all("excludeGroups"),
            exclude_roles: form.all("excludeRoles"),
            target: text("target"),
            apps_include: text("appsInclude"),
            include_apps: form.all("includeApplications"),
            exclude_apps: form.all("excludeApplications"),
            user_action: text("userAction"),
            auth_contexts: text("authenticationContexts"),
            platforms_configured: form.checked("platformsConfigured"),
            platforms_include: text("platformsInclude"),
            include_platforms: form.all("includePlatforms"),
            exclude_platforms: form.all("excludePlatforms"),
            locations_configured: form.checked("locationsConfigured"),
            locations_include: text("locationsInclude"),
            include_locations: form.all("includeLocations"),
            exclude_locations: form.all("excludeLocations"),
            client_apps_configured: form.checked("clientAppsConfigured"),
            client_app_types: form.all("clientAppTypes"),
            grant: text("grant"),
            require_mfa: form.checked("requireMfa"),
            strength: text("authenticationStrength"),
            operator: text("operator"),
            sign_in_frequency: form.checked("signInFrequency"),
            sign_in_frequency_interval: text("signInFrequencyInterval"),
            sign_in_frequency_value: text("signInFrequencyValue"),
            sign_in_frequency_unit: text("signInFrequencyUnit"),
            persistent_browser: form.checked("persistentBrowser"),
            persistent_browser_mode: text("persistentBrowserMode"),
        }
    }

    /// The users typed into the include and exclude boxes, to be looked up.
    pub fn typed_users(&self) -> Vec<String> {
        lines(&self.include_users)
            .into_iter()
            .chain(lines(&self.exclude_users))
            .filter(|u| !u.eq_ignore_ascii_case(GUESTS))
            .collect()
    }

    /// The policy document: `base` (the stored policy, or `{}` for a new one) with every member
    /// the form covers replaced by what the form says. `user_ids` maps each typed user to its
    /// object id; a typed user missing from it is an error beside the users section.
    pub fn apply(
        &self,
        base: &Value,
        user_ids: &HashMap<String, String>,
    ) -> Result<Value, FieldErrors> {
        let mut errors = FieldErrors::new();
        let mut error = |field: &str, message: String| {
            errors.entry(field.to_string()).or_insert(message);
        };
        let mut policy = base.as_object().cloned().unwrap_or_default();
        policy.insert("displayName".into(), json!(self.display_name));
        if !matches!(
            self.state.as_str(),
            "enabled" | "disabled" | "enabledForReportingButNotEnforced"
        ) {
            error("state", "Choose On, Off or Report-only.".into());
        }
        policy.insert("state".into(), json!(self.state));

        let mut conditions = policy
            .get("conditions")
            .and_then(Value::as_object)
            .cloned()
            .unwrap_or_default();

        // Users.
        let mut resolve = |text: &str| -> Vec<String> {
            lines(text)
                .into_iter()
                .filter_map(|typed| {
                    if typed.eq_ignore_ascii_case(GUESTS) {
                        return Some(GUESTS.to_string());
                    }
                    match user_ids.get(&typed) {
                        Some(id) => Some(id.clone()),
                        None => {
                            error(
                                "conditions.users",
                                format!("No user signs in as '{typed}'."),
                            );
                            None
                        }
                    }
                })
                .collect()
        };
        let (include_users, include_groups, include_roles) = match self.users_include.as_str() {
            "all" => (vec!["All".to_string()], vec![], vec![]),
            "none" => (vec!["None".to_string()], vec![], vec![]),
            _ => (
                resolve(&self.include_users),
                self.include_groups.clone(),
                self.include_roles.clone(),
            ),
        };
        let exclude_users = resolve(&self.exclude_users);
        if self.users_include == "select"
            && include_users.is_empty()
            && include_groups.is_empty()
            && include_roles.is_empty()
        {
            error(
                "conditions.users",
                "Select at least one user, group or role to include, or choose All users.".into(),
            );
        }
        let mut users = conditions
            .get("users")
            .and_then(Value::as_object)
            .cloned()
            .unwrap_or_default();
        users.insert("includeUsers".into(), json!(include_users));
        users.insert("excludeUsers".into(), json!(exclude_users));
        users.insert("includeGroups".into(), json!(include_groups));
        users.insert("excludeGroups".into(), json!(self.exclude_groups));
        users.insert("includeRoles".into(), json!(include_roles));
        users.insert("excludeRoles".into(), json!(self.exclude_roles));
        conditions.insert("users".into(), Value::Object(users));

        // Target resources: applications, a user action, or authentication contexts.
        let mut apps = conditions
            .get("applications")
            .and_then(Value::as_object)
            .cloned()
            .unwrap_or_default();
        let (include_apps, exclude_apps, actions, contexts): (
            Vec<String>,
            Vec<String>,
            Vec<String>,
            Vec<String>,
        ) = match self.target.as_str() {
            "applications" => {
                let include = match self.apps_include.as_str() {
                    "all" => vec!["All".to_string()],
                    "none" => vec!["None".to_string()],
                    _ => {
                        if self.include_apps.is_empty() {
                            error(
                                "conditions.applications",
                                "Select at least one application, or choose All resources.".into(),
                            );
                        }
                        self.include_apps.clone()
                    }
                };
                (include, self.exclude_apps.clone(), vec![], vec![])
            }
            "userAction" => {
                if !USER_ACTIONS.iter().any(|(v, _)| *v == self.user_action) {
                    error("conditions.applications", "Choose a user action.".into());
                }
                (vec![], vec![], vec![self.user_action.clone()], vec![])
            }
            "authenticationContext" => {
                let contexts: Vec<String> = lines(&self.auth_contexts);
                if contexts.is_empty() {
                    error(
                        "conditions.applications",
                        "Give at least one authentication context, such as c1.".into(),
                    );
                }
                for c in &contexts {
                    let valid = c
                        .strip_prefix('c')
                        .and_then(|n| n.parse::<u8>().ok())
                        .is_some_and(|n| (1..=99).contains(&n));
                    if !valid {
                        error(
                            "conditions.applications",
                            format!("'{c}' is not an authentication context id: use c1 to c99."),
                        );
                    }
                }
                (vec![], vec![], vec![], contexts)
            }
            _ => {
                error(
                        "conditions.applications",
                        "Choose what the policy applies to: applications, a user action or an authentication context.".into(),
                    );
                (vec![], vec![], vec![], vec![])
            }
        };
        apps.insert("includeApplications".into(), json!(include_apps));
        apps.insert("excludeApplications".into(), json!(exclude_apps));
        apps.insert("includeUserActions".into(), json!(actions));
        apps.insert(
            "includeAuthenticationContextClassReferences".into(),
            json!(contexts),
        );
        conditions.insert("applications".into(), Value::Object(apps));

        // Device platforms.
        if self.platforms_configured {
            let include = if self.platforms_include == "all" {
                vec!["all".to_string()]
            } else {
                if self.include_platforms.is_empty() {
                    error(
                        "conditions.platforms",
                        "Select at least one platform to include, or choose Any device.".into(),
                    );
                }
                self.include_platforms.clone()
            };
            conditions.insert(
                "platforms".into(),
                json!({ "includePlatforms": include, "excludePlatforms": self.exclude_platforms }),
            );
        } else {
            conditions.remove("platforms");
        }

        // Network locations.
        if self.locations_configured {
            let include = match self.locations_include.as_str() {
                "All" | "AllTrusted" => vec![self.locations_include.clone()],
                _ => {
                    if self.include_locations.is_empty() {
                        error(
                            "conditions.locations",
                            "Select at least one named location, or choose Any network.".into(),
                        );
                    }
                    self.include_locations.clone()
                }
            };
            conditions.insert(
                "locations".into(),
                json!({ "includeLocations": include, "excludeLocations": self.exclude_locations }),
            );
        } else {
            conditions.remove("locations");
        }

        // Client apps: not configured means every client app.
        let client_apps = if self.client_apps_configured {
            if self.client_app_types.is_empty() {
                error(
                    "conditions.clientAppTypes",
                    "Select at least one client app, or leave the condition off.".into(),
                );
            }
            self.client_app_types.clone()
        } else {
            vec!["all".to_string()]
        };
        conditions.insert("clientAppTypes".into(), json!(client_apps));
        for risk in ["signInRiskLevels", "userRiskLevels"] {
            conditions.entry(risk).or_insert(json!([]));
        }
        policy.insert("conditions".into(), Value::Object(conditions));

        // Grant.
        let mut grant = policy
            .get("grantControls")
            .and_then(Value::as_object)
            .cloned()
            .unwrap_or_default();
        match self.grant.as_str() {
            "block" => {
                grant.insert("operator".into(), json!("OR"));
                grant.insert("builtInControls".into(), json!(["block"]));
                grant.remove("authenticationStrength");
                policy.insert("grantControls".into(), Value::Object(grant));
            }
            "grant" => {
                if !self.require_mfa && self.strength.is_empty() {
                    error(
                        "grantControls",
                        "Choose what to require: multifactor authentication or an authentication strength.".into(),
                    );
                }
                if !matches!(self.operator.as_str(), "AND" | "OR") {
                    error(
                        "grantControls",
                        "Choose whether all or one of the controls is required.".into(),
                    );
                }
                grant.insert("operator".into(), json!(self.operator));
                let controls: Vec<&str> = if self.require_mfa {
                    vec!["mfa"]
                } else {
                    vec![]
                };
                grant.insert("builtInControls".into(), json!(controls));
                if self.strength.is_empty() {
                    grant.remove("authenticationStrength");
                } else {
                    grant.insert(
                        "authenticationStrength".into(),
                        json!({ "id": self.strength }),
                    );
                }
                policy.insert("grantControls".into(), Value::Object(grant));
            }
            "none" => {
                policy.remove("grantControls");
            }
            _ => error(
                "grantControls",
                "Choose Block access or Grant access.".into(),
            ),
        }

        // Session controls: the two the form covers are replaced; others stay.
        let mut session = policy
            .get("sessionControls")
            .and_then(Value::as_object)
            .cloned()
            .unwrap_or_default();
        if self.sign_in_frequency {
            let frequency = if self.sign_in_frequency_interval == "everyTime" {
                json!({ "isEnabled": true, "frequencyInterval": "everyTime", "authenticationType": "primaryAndSecondaryAuthentication" })
            } else {
                let limit = if self.sign_in_frequency_unit == "days" {
                    365
                } else {
                    23
                };
                let unit_ok = matches!(self.sign_in_frequency_unit.as_str(), "hours" | "days");
                match self.sign_in_frequency_value.parse::<u32>() {
                    Ok(v) if unit_ok && (1..=limit).contains(&v) => json!({
                        "isEnabled": true,
                        "frequencyInterval": "timeBased",
                        "type": self.sign_in_frequency_unit,
                        "value": v,
                        "authenticationType": "primaryAndSecondaryAuthentication",
                    }),
                    _ => {
                        error(
                            "sessionControls",
                            "Sign-in frequency: give 1 to 23 hours or 1 to 365 days, or choose Every time.".into(),
                        );
                        Value::Null
                    }
                }
            };
            session.insert("signInFrequency".into(), frequency);
        } else {
            session.remove("signInFrequency");
        }
        if self.persistent_browser {
            if !matches!(self.persistent_browser_mode.as_str(), "always" | "never") {
                error(
                    "sessionControls",
                    "Persistent browser session: choose Always or Never.".into(),
                );
            }
            session.insert(
                "persistentBrowser".into(),
                json!({ "isEnabled": true, "mode": self.persistent_browser_mode }),
            );
        } else {
            session.remove("persistentBrowser");
        }
        if session.is_empty() {
            policy.remove("sessionControls");
        } else {
            policy.insert("sessionControls".into(), Value::Object(session));
        }

        if errors.is_empty() {
            Ok(Value::Object(policy))
        } else {
            Err(errors)
        }
    }
}

/// The entries of a box that takes one per line (commas also separate).
fn lines(text: &str) -> Vec<String> {
    text.lines()
        .flat_map(|l| l.split(','))
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(str::to_string)
        .collect()
}

/// A new, empty object for [`PolicyForm::apply`] to fill.
pub fn empty_policy() -> Value {
    Value::Object(Map::new())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn story_policy() -> Value {
        json!({
            "id": "11111111-1111-1111-1111-111111111111",
            "displayName": "Passkey test: unsupported platforms",
            "state": "enabled",
            "conditions": {
                "users": { "includeGroups": ["g1"], "includeUsers": [], "excludeUsers": ["u1"],
                           "includeGuestsOrExternalUsers": { "guestOrExternalUserTypes": "b2bCollaborationGuest" } },
                "applications": { "includeApplications": ["All"] },
                "platforms": { "includePlatforms": ["all"], "excludePlatforms": ["windows"] },
                "clientAppTypes": ["all"],
                "signInRiskLevels": ["high"],
                "userRiskLevels": [],
                "devices": { "deviceFilter": { "mode": "exclude", "rule": "device.isCompliant -eq True" } }
            },
            "grantControls": { "operator": "OR", "builtInControls": ["block"] }
        })
    }

    #[test]
    fn a_policy_reads_into_the_form_and_back_unchanged() {
        let policy = story_policy();
        let names = HashMap::from([("u1".to_string(), "joni@contoso.com".to_string())]);
        let form = PolicyForm::from_policy(&policy, &names);
        assert_eq!(form.users_include, "select");
        assert_eq!(form.exclude_users, "joni@contoso.com");
        assert!(form.platforms_configured);
        assert_eq!(form.platforms_include, "all");
        assert_eq!(form.exclude_platforms, ["windows"]);
        assert_eq!(form.grant, "block");
        let ids = HashMap::from([("joni@contoso.com".to_string(), "u1".to_string())]);
        let back = form.apply(&policy, &ids).unwrap();
        let conditions = &back["conditions"];
        assert_eq!(conditions["users"]["excludeUsers"], json!(["u1"]));
        assert_eq!(conditions["users"]["includeGroups"], json!(["g1"]));
        assert_eq!(
            conditions["platforms"]["excludePlatforms"],
            json!(["windows"])
        );
        // What the form does not show is kept as it was.
        assert_eq!(conditions["signInRiskLevels"], json!(["high"]));
        assert_eq!(conditions["devices"], policy["conditions"]["devices"]);
        assert_eq!(
            conditions["users"]["includeGuestsOrExternalUsers"],
            policy["conditions"]["users"]["includeGuestsOrExternalUsers"]
        );
        assert_eq!(back["grantControls"]["builtInControls"], json!(["block"]));
    }

    #[test]
    fn switching_block_to_a_strength_replaces_the_grant() {
        let mut form = PolicyForm::from_policy(&story_policy(), &HashMap::new());
        form.exclude_users.clear();
        form.grant = "grant".into();
        form.strength = "00000000-0000-0000-0000-000000000004".into();
        form.state = "enabledForReportingButNotEnforced".into();
        let back = form.apply(&story_policy(), &HashMap::new()).unwrap();
        assert_eq!(back["grantControls"]["builtInControls"], json!([]));
        assert_eq!(
            back["grantControls"]["authenticationStrength"],
            json!({ "id": "00000000-0000-0000-0000-000000000004" })
        );
        assert_eq!(back["state"], "enabledForReportingButNotEnforced");
    }

    #[test]
    fn incomplete_choices_are_errors_beside_their_section() {
        let mut form = PolicyForm::new_policy();
        form.display_name = "x".into();
        form.include_users = "nobody@contoso.com".into();
        form.grant = "grant".into();
        form.platforms_configured = true;
        form.platforms_include = "select".into();
        form.sign_in_frequency = true;
        form.sign_in_frequency_value = "0".into();
        let errors = form.apply(&empty_policy(), &HashMap::new()).unwrap_err();
        assert!(errors["conditions.users"].contains("nobody@contoso.com"));
        assert!(errors.contains_key("grantControls"));
        assert!(errors.contains_key("conditions.platforms"));
        assert!(errors.contains_key("sessionControls"));
    }

    #[test]
    fn user_actions_and_contexts_are_targets_of_their_own() {
        let mut form = PolicyForm::new_policy();
        form.users_include = "all".into();
        form.target = "authenticationContext".into();
        form.auth_contexts = "c1, c100".into();
        let errors = form.apply(&empty_policy(), &HashMap::new()).unwrap_err();
        assert!(errors["conditions.applications"].contains("c100"));
        form.auth_contexts = "c1".into();
        form.require_mfa = true;
        let policy = form.apply(&empty_policy(), &HashMap::new()).unwrap();
        assert_eq!(
            policy["conditions"]["applications"]["includeAuthenticationContextClassReferences"],
            json!(["c1"])
        );
        assert_eq!(
            policy["conditions"]["applications"]["includeApplications"],
            json!([])
        );
    }
}
