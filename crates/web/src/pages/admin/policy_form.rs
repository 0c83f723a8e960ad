//! The Conditional Access policy form: a policy's Graph JSON as the fields a person edits, and
//! back. The form covers users and groups, target resources, platforms, locations, client apps,
//! grant and session controls and the state. It writes into the stored document only the parts
//! a person changed, and each of those parts replaces only the members it edits: everything
//! else (device filters, risk levels, `compliantDevice`, terms of use, members this engine does
//! not implement, ids that do not resolve) stays exactly as stored, so opening a policy and
//! saving it changes nothing. There are no "configure" switches that could discard a choice:
//! ticking a platform to include is choosing platforms.
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

/// The special member of `includeUsers`/`excludeUsers` the users picker passes through.
pub const GUESTS: &str = "GuestsOrExternalUsers";

/// The application groups Graph names by word in `includeApplications`.
pub const APPLICATION_GROUPS: &[(&str, &str)] = &[
    ("Office365", "Office 365"),
    ("MicrosoftAdminPortals", "Microsoft Admin Portals"),
];

/// The people, groups, roles and applications a picker holds: the values it posts (object ids,
/// role template ids, appIds; or, typed into a picker's box without script, a name to look up).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Picked {
    pub users: Vec<String>,
    pub groups: Vec<String>,
    pub roles: Vec<String>,
}

/// What the form shows. Choices are kept as the words the form posts.
#[derive(Debug, Clone, Default, Serialize)]
pub struct PolicyForm {
    pub display_name: String,
    /// `enabled`, `disabled` or `enabledForReportingButNotEnforced`.
    pub state: String,
    /// `all`, `none` or `select`.
    pub users_include: String,
    pub include: Picked,
    pub exclude: Picked,
    /// `applications`, `userAction` or `authenticationContext`.
    pub target: String,
    /// `all`, `none` or `select`.
    pub apps_include: String,
    pub include_apps: Vec<String>,
    pub exclude_apps: Vec<String>,
    pub user_action: String,
    /// Authentication context ids, comma-separated (`c1, c2`).
    pub auth_contexts: String,
    /// `all` or `select`; ticking a platform to include selects it.
    pub platforms_include: String,
    pub include_platforms: Vec<String>,
    pub exclude_platforms: Vec<String>,
    /// `All`, `AllTrusted` or `select`; ticking a location to include selects it.
    pub locations_include: String,
    pub include_locations: Vec<String>,
    /// Named location ids, and `AllTrusted`.
    pub exclude_locations: Vec<String>,
    /// None ticked: every client app.
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

/// The parts of the form that write one member of the document each. A part the person did not
/// change is left exactly as stored, so opening a policy and saving it changes nothing however
/// its document was written (an import, the API, an older version of this form).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Part {
    Users,
    Target,
    Platforms,
    Locations,
    ClientApps,
    Grant,
    Session,
}

/// Who the pickers' typed names turn into: a typed sign-in name (or a group's, role's or
/// application's name) to its id. Built by the handler, which may look people up.
#[derive(Debug, Clone, Default)]
pub struct Lookups {
    pub users: HashMap<String, String>,
    /// `[id, name]` pairs, as the pickers offer them.
    pub groups: Vec<(String, String)>,
    pub roles: Vec<(String, String)>,
    pub applications: Vec<(String, String)>,
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

fn is_id(value: &str) -> bool {
    uuid::Uuid::parse_str(value).is_ok()
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

    /// The form for a stored policy.
    pub fn from_policy(policy: &Value) -> Self {
        let mut form = PolicyForm::new_policy();
        form.display_name = policy["displayName"].as_str().unwrap_or_default().into();
        form.state = policy["state"].as_str().unwrap_or("disabled").into();
        let conditions = &policy["conditions"];

        let users = &conditions["users"];
        let include_users = strings(&users["includeUsers"]);
        form.users_include = if has(&include_users, "All") {
            "all".into()
        } else if has(&include_users, "None") {
            "none".into()
        } else {
            "select".into()
        };
        let picked = |key: &str| -> Vec<String> {
            strings(&users[key])
                .into_iter()
                .filter(|id| !id.eq_ignore_ascii_case("All") && !id.eq_ignore_ascii_case("None"))
                .collect()
        };
        form.include = Picked {
            users: picked("includeUsers"),
            groups: picked("includeGroups"),
            roles: picked("includeRoles"),
        };
        form.exclude = Picked {
            users: picked("excludeUsers"),
            groups: picked("excludeGroups"),
            roles: picked("excludeRoles"),
        };

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
        let include = strings(&platforms["includePlatforms"]);
        form.platforms_include = if include.is_empty() || has(&include, "all") {
            "all"
        } else {
            "select"
        }
        .into();
        form.include_platforms = include.into_iter().filter(|p| p != "all").collect();
        form.exclude_platforms = strings(&platforms["excludePlatforms"]);

        let locations = &conditions["locations"];
        let include = strings(&locations["includeLocations"]);
        form.locations_include = if include.is_empty() || has(&include, "All") {
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
        form.client_app_types = strings(&conditions["clientAppTypes"])
            .into_iter()
            .filter(|c| c != "all")
            .collect();

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

    /// The form as posted. A picker posts its chosen values under its name, and what was typed
    /// into its box (one per line, without script) under the name with `Add`: both count.
    pub fn from_form(form: &FormData) -> Self {
        let text = |name: &str| form.text(name).to_string();
        let picker = |name: &str| -> Vec<String> {
            let mut values = form.all(name);
            for typed in form.lines(&format!("{name}Add")) {
                if !values.contains(&typed) {
                    values.push(typed);
                }
            }
            values
        };
        PolicyForm {
            display_name: text("displayName"),
            state: text("state"),
            users_include: text("usersInclude"),
            include: Picked {
                users: picker("includeUsers"),
                groups: picker("includeGroups"),
                roles: picker("includeRoles"),
            },
            exclude: Picked {
                users: picker("excludeUsers"),
                groups: picker("excludeGroups"),
                roles: picker("excludeRoles"),
            },
            target: text("target"),
            apps_include: text("appsInclude"),
            include_apps: picker("includeApplications"),
            exclude_apps: picker("excludeApplications"),
            user_action: text("userAction"),
            auth_contexts: text("authenticationContexts"),
            platforms_include: text("platformsInclude"),
            include_platforms: form.all("includePlatforms"),
            exclude_platforms: form.all("excludePlatforms"),
            locations_include: text("locationsInclude"),
            include_locations: form.all("includeLocations"),
            exclude_locations: form.all("excludeLocations"),
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

    /// The users named in the pickers that are not ids: sign-in names to look up.
    pub fn typed_users(&self) -> Vec<String> {
        self.include
            .users
            .iter()
            .chain(&self.exclude.users)
            .filter(|u| !is_id(u) && !u.eq_ignore_ascii_case(GUESTS))
            .cloned()
            .collect()
    }

    /// Whether a part of the form says the same as `other`'s.
    fn same(&self, other: &PolicyForm, part: Part) -> bool {
        let a = self;
        let b = other;
        match part {
            Part::Users => {
                a.users_include == b.users_include
                    && a.include == b.include
                    && a.exclude == b.exclude
            }
            Part::Target => {
                a.target == b.target
                    && a.apps_include == b.apps_include
                    && a.include_apps == b.include_apps
                    && a.exclude_apps == b.exclude_apps
                    && a.user_action == b.user_action
                    && lines(&a.auth_contexts) == lines(&b.auth_contexts)
            }
            Part::Platforms => {
                a.effective_platforms_include() == b.effective_platforms_include()
                    && a.include_platforms == b.include_platforms
                    && a.exclude_platforms == b.exclude_platforms
            }
            Part::Locations => {
                a.effective_locations_include() == b.effective_locations_include()
                    && a.include_locations == b.include_locations
                    && a.exclude_locations == b.exclude_locations
            }
            Part::ClientApps => a.client_app_types == b.client_app_types,
            Part::Grant => {
                a.grant == b.grant
                    && (a.grant == "block"
                        || a.grant == "none"
                        || (a.require_mfa == b.require_mfa
                            && a.strength == b.strength
                            && a.operator == b.operator))
            }
            Part::Session => {
                a.sign_in_frequency == b.sign_in_frequency
                    && (!a.sign_in_frequency
                        || (a.sign_in_frequency_interval == b.sign_in_frequency_interval
                            && (a.sign_in_frequency_interval == "everyTime"
                                || (a.sign_in_frequency_value == b.sign_in_frequency_value
                                    && a.sign_in_frequency_unit == b.sign_in_frequency_unit))))
                    && a.persistent_browser == b.persistent_browser
                    && (!a.persistent_browser
                        || a.persistent_browser_mode == b.persistent_browser_mode)
            }
        }
    }

    /// Ticking a platform to include is choosing platforms: there is no separate switch whose
    /// state could silently discard the tick.
    /// Nothing chosen (a form that does not send the choice) is any device.
    fn effective_platforms_include(&self) -> &str {
        match (
            self.include_platforms.is_empty(),
            self.platforms_include.as_str(),
        ) {
            (false, _) => "select",
            (true, "") => "all",
            (true, chosen) => chosen,
        }
    }

    /// Nothing chosen is any network or location.
    fn effective_locations_include(&self) -> &str {
        match (
            self.include_locations.is_empty(),
            self.locations_include.as_str(),
        ) {
            (false, _) => "select",
            (true, "") => "All",
            (true, chosen) => chosen,
        }
    }

    /// The policy document: `base` (the stored policy, or `{}` for a new one) with each part of
    /// the form the person changed written over it, and every other member left exactly as it
    /// is. A picker's value is kept as it is when it is an id, or one `base` already holds in
    /// the same place (an unresolved id kept from an import); a typed name is looked up in
    /// `lookups`, and one that names nothing is an error beside its section.
    pub fn apply(&self, base: &Value, lookups: &Lookups) -> Result<Value, FieldErrors> {
        let stored = PolicyForm::from_policy(base);
        let is_new = base.as_object().is_none_or(|m| m.is_empty());
        let changed = |part: Part| is_new || !self.same(&stored, part);
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

        if changed(Part::Users) {
            let was = &base["conditions"]["users"];
            let mut pick = |key: &str, values: &[String], kind: PickerKind| -> Vec<String> {
                let kept = strings(&was[key]);
                values
                    .iter()
                    .filter_map(|value| match resolve(value, &kept, kind, lookups) {
                        Ok(id) => Some(id),
                        Err(message) => {
                            error("conditions.users", message);
                            None
                        }
                    })
                    .collect()
            };
            let (include_users, include_groups, include_roles) = match self.users_include.as_str() {
                "all" => (vec!["All".to_string()], vec![], vec![]),
                "none" => (vec!["None".to_string()], vec![], vec![]),
                _ => (
                    pick("includeUsers", &self.include.users, PickerKind::User),
                    pick("includeGroups", &self.include.groups, PickerKind::Group),
                    pick("includeRoles", &self.include.roles, PickerKind::Role),
                ),
            };
            let exclude_users = pick("excludeUsers", &self.exclude.users, PickerKind::User);
            let exclude_groups = pick("excludeGroups", &self.exclude.groups, PickerKind::Group);
            let exclude_roles = pick("excludeRoles", &self.exclude.roles, PickerKind::Role);
            if !matches!(self.users_include.as_str(), "all" | "none" | "select") {
                error(
                    "conditions.users",
                    "Choose who the policy applies to: all users, none, or the people, groups and roles you select.".into(),
                );
            }
            if self.users_include == "select"
                && self.include.users.is_empty()
                && self.include.groups.is_empty()
                && self.include.roles.is_empty()
            {
                error(
                    "conditions.users",
                    "Select at least one user, group or role to include, or choose All users."
                        .into(),
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
            users.insert("excludeGroups".into(), json!(exclude_groups));
            users.insert("includeRoles".into(), json!(include_roles));
            users.insert("excludeRoles".into(), json!(exclude_roles));
            conditions.insert("users".into(), Value::Object(users));
        }

        if changed(Part::Target) {
            let was = &base["conditions"]["applications"];
            let mut problems = Vec::new();
            let mut pick = |key: &str, values: &[String]| -> Vec<String> {
                let kept = strings(&was[key]);
                values
                    .iter()
                    .filter_map(|value| {
                        match resolve(value, &kept, PickerKind::Application, lookups) {
                            Ok(id) => Some(id),
                            Err(message) => {
                                problems.push(message);
                                None
                            }
                        }
                    })
                    .collect()
            };
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
                                    "Select at least one application, or choose All resources."
                                        .into(),
                                );
                            }
                            pick("includeApplications", &self.include_apps)
                        }
                    };
                    let exclude = pick("excludeApplications", &self.exclude_apps);
                    (include, exclude, vec![], vec![])
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
                                format!(
                                    "'{c}' is not an authentication context id: use c1 to c99."
                                ),
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
            for message in problems {
                error("conditions.applications", message);
            }
            apps.insert("includeApplications".into(), json!(include_apps));
            apps.insert("excludeApplications".into(), json!(exclude_apps));
            apps.insert("includeUserActions".into(), json!(actions));
            apps.insert(
                "includeAuthenticationContextClassReferences".into(),
                json!(contexts),
            );
            conditions.insert("applications".into(), Value::Object(apps));
        }

        // Device platforms: any device and nothing excluded is the condition not configured.
        if changed(Part::Platforms) {
            let known =
                |list: &[String]| list.iter().all(|p| PLATFORMS.iter().any(|(v, _)| v == p));
            if !known(&self.include_platforms) || !known(&self.exclude_platforms) {
                error(
                    "conditions.platforms",
                    "Choose platforms from the list.".into(),
                );
            }
            let include = match self.effective_platforms_include() {
                "all" => vec!["all".to_string()],
                "select" => {
                    if self.include_platforms.is_empty() {
                        error(
                            "conditions.platforms",
                            "Tick at least one platform to include, or choose Any device.".into(),
                        );
                    }
                    self.include_platforms.clone()
                }
                _ => {
                    error(
                        "conditions.platforms",
                        "Choose Any device or the platforms to include.".into(),
                    );
                    vec![]
                }
            };
            if include == ["all"] && self.exclude_platforms.is_empty() {
                conditions.remove("platforms");
            } else {
                let mut platforms = conditions
                    .get("platforms")
                    .and_then(Value::as_object)
                    .cloned()
                    .unwrap_or_default();
                platforms.insert("includePlatforms".into(), json!(include));
                platforms.insert("excludePlatforms".into(), json!(self.exclude_platforms));
                conditions.insert("platforms".into(), Value::Object(platforms));
            }
        }

        // Network locations: any network and nothing excluded is the condition not configured.
        if changed(Part::Locations) {
            let include = match self.effective_locations_include() {
                chosen @ ("All" | "AllTrusted") => vec![chosen.to_string()],
                "select" => self.include_locations.clone(),
                _ => {
                    error(
                        "conditions.locations",
                        "Choose any network, all trusted locations, or the named locations to include.".into(),
                    );
                    vec![]
                }
            };
            if self.effective_locations_include() == "select" && self.include_locations.is_empty() {
                error(
                    "conditions.locations",
                    "Tick at least one named location to include, or choose Any network or location.".into(),
                );
            }
            if include == ["All"] && self.exclude_locations.is_empty() {
                conditions.remove("locations");
            } else {
                let mut locations = conditions
                    .get("locations")
                    .and_then(Value::as_object)
                    .cloned()
                    .unwrap_or_default();
                locations.insert("includeLocations".into(), json!(include));
                locations.insert("excludeLocations".into(), json!(self.exclude_locations));
                conditions.insert("locations".into(), Value::Object(locations));
            }
        }

        // Client apps: none ticked is every client app.
        if changed(Part::ClientApps) {
            if !self
                .client_app_types
                .iter()
                .all(|c| CLIENT_APPS.iter().any(|(v, _)| v == c))
            {
                error(
                    "conditions.clientAppTypes",
                    "Choose client apps from the list.".into(),
                );
            }
            let client_apps = if self.client_app_types.is_empty() {
                vec!["all".to_string()]
            } else {
                self.client_app_types.clone()
            };
            conditions.insert("clientAppTypes".into(), json!(client_apps));
        }
        if is_new {
            for risk in ["signInRiskLevels", "userRiskLevels"] {
                conditions.entry(risk).or_insert(json!([]));
            }
        }
        policy.insert("conditions".into(), Value::Object(conditions));

        if changed(Part::Grant) {
            self.apply_grant(&mut policy, &mut error);
        }
        if changed(Part::Session) {
            self.apply_session(&mut policy, &mut error);
        }

        if errors.is_empty() {
            Ok(Value::Object(policy))
        } else {
            Err(errors)
        }
    }

    /// Grant: block, or what to require. Controls the form does not offer (`compliantDevice`,
    /// terms of use, custom factors…) stay as they are beside what it sets, in their order.
    fn apply_grant(&self, policy: &mut Map<String, Value>, error: &mut impl FnMut(&str, String)) {
        let mut grant = policy
            .get("grantControls")
            .and_then(Value::as_object)
            .cloned()
            .unwrap_or_default();
        let stored_controls = strings(grant.get("builtInControls").unwrap_or(&Value::Null));
        let others: Vec<String> = stored_controls
            .iter()
            .filter(|c| !c.eq_ignore_ascii_case("mfa") && !c.eq_ignore_ascii_case("block"))
            .cloned()
            .collect();
        match self.grant.as_str() {
            "block" => {
                if !others.is_empty() {
                    error(
                        "grantControls",
                        format!(
                            "Block access cannot stand beside the controls this policy keeps ({}): Entra refuses the combination. Change them through the API, or keep Grant access.",
                            others.join(", ")
                        ),
                    );
                }
                grant.insert("operator".into(), json!("OR"));
                grant.insert("builtInControls".into(), json!(["block"]));
                grant.remove("authenticationStrength");
                policy.insert("grantControls".into(), Value::Object(grant));
            }
            "grant" => {
                let kept_others = !others.is_empty()
                    || grant
                        .get("termsOfUse")
                        .is_some_and(|t| t.as_array().is_some_and(|a| !a.is_empty()))
                    || grant
                        .get("customAuthenticationFactors")
                        .is_some_and(|t| t.as_array().is_some_and(|a| !a.is_empty()));
                if !self.require_mfa && self.strength.is_empty() && !kept_others {
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
                // Where `mfa` stood, it stays; newly required, it goes last.
                let mut controls: Vec<String> = stored_controls
                    .iter()
                    .filter(|c| {
                        !c.eq_ignore_ascii_case("block")
                            && (self.require_mfa || !c.eq_ignore_ascii_case("mfa"))
                    })
                    .cloned()
                    .collect();
                if self.require_mfa && !has(&controls, "mfa") {
                    controls.push("mfa".into());
                }
                grant.insert("builtInControls".into(), json!(controls));
                let same_strength = grant
                    .get("authenticationStrength")
                    .and_then(|s| s.get("id"))
                    .and_then(Value::as_str)
                    .is_some_and(|id| id.eq_ignore_ascii_case(&self.strength));
                if self.strength.is_empty() {
                    grant.remove("authenticationStrength");
                } else if !same_strength {
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
    }

    /// Session controls: the two the form covers are replaced; others stay.
    fn apply_session(&self, policy: &mut Map<String, Value>, error: &mut impl FnMut(&str, String)) {
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
    }
}

fn plural(n: usize, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

fn counted(picked: &Picked) -> Vec<String> {
    let mut parts = Vec::new();
    if !picked.users.is_empty() {
        parts.push(plural(picked.users.len(), "user", "users"));
    }
    if !picked.groups.is_empty() {
        parts.push(plural(picked.groups.len(), "group", "groups"));
    }
    if !picked.roles.is_empty() {
        parts.push(plural(picked.roles.len(), "role", "roles"));
    }
    parts
}

fn labels(values: &[String], options: &[(&str, &str)]) -> String {
    values
        .iter()
        .map(|v| {
            options
                .iter()
                .find(|(o, _)| o == v)
                .map_or(v.as_str(), |(_, l)| l)
        })
        .collect::<Vec<_>>()
        .join(", ")
}

impl PolicyForm {
    /// Each section's one-line summary, as Entra shows it on a closed section: what the form
    /// (and so the saved policy) says, in words. `strengths` names strength ids.
    ///
    /// The editor's script (`summaries` in assets/admin.js) says the same words as choices
    /// change, without a round trip: a change to the wording here is made there too, and the
    /// browser test `editor_live` compares the two.
    pub fn summaries(&self, strengths: &HashMap<String, String>) -> Value {
        let users = match self.users_include.as_str() {
            "all" => "All users".to_string(),
            "none" => "None".to_string(),
            _ => {
                let included = counted(&self.include);
                if included.is_empty() {
                    "Nothing selected yet".to_string()
                } else {
                    format!("{} included", included.join(", "))
                }
            }
        };
        let excluded = counted(&self.exclude);
        let users = if excluded.is_empty() {
            users
        } else {
            format!("{users}; {} excluded", excluded.join(", "))
        };
        let target = match self.target.as_str() {
            "userAction" => format!(
                "User action: {}",
                USER_ACTIONS
                    .iter()
                    .find(|(v, _)| *v == self.user_action)
                    .map_or("none chosen", |(_, l)| l)
            ),
            // As the box's entries, so typing "c1,c2" reads as the saved "c1, c2" will.
            "authenticationContext" => format!(
                "Authentication context: {}",
                lines(&self.auth_contexts).join(", ")
            ),
            _ => {
                let include = match self.apps_include.as_str() {
                    "all" => "All resources".to_string(),
                    "none" => "None".to_string(),
                    _ => format!(
                        "{} included",
                        plural(self.include_apps.len(), "application", "applications")
                    ),
                };
                if self.exclude_apps.is_empty() {
                    include
                } else {
                    format!(
                        "{include}; {} excluded",
                        plural(self.exclude_apps.len(), "application", "applications")
                    )
                }
            }
        };
        let platforms = {
            let include = if self.effective_platforms_include() == "select" {
                labels(&self.include_platforms, PLATFORMS)
            } else {
                "Any device".to_string()
            };
            if self.exclude_platforms.is_empty() {
                include
            } else {
                format!(
                    "{include} except {}",
                    labels(&self.exclude_platforms, PLATFORMS)
                )
            }
        };
        let locations = {
            let include = match self.effective_locations_include() {
                "AllTrusted" => "All trusted networks and locations".to_string(),
                "select" => plural(
                    self.include_locations.len(),
                    "named location",
                    "named locations",
                ),
                _ => "Any network or location".to_string(),
            };
            if self.exclude_locations.is_empty() {
                include
            } else {
                format!(
                    "{include}; {} excluded",
                    plural(self.exclude_locations.len(), "location", "locations")
                )
            }
        };
        let client_apps = if self.client_app_types.is_empty() {
            "Any client app".to_string()
        } else {
            labels(&self.client_app_types, CLIENT_APPS)
        };
        let grant = match self.grant.as_str() {
            "block" => "Block access".to_string(),
            "none" => "No grant controls".to_string(),
            _ => {
                let mut parts = Vec::new();
                if self.require_mfa {
                    parts.push("multifactor authentication".to_string());
                }
                if !self.strength.is_empty() {
                    parts.push(format!(
                        "authentication strength {}",
                        strengths
                            .get(&self.strength)
                            .map_or(self.strength.as_str(), String::as_str)
                    ));
                }
                if parts.is_empty() {
                    "Grant access".to_string()
                } else {
                    let joiner = if self.operator == "AND" {
                        " and "
                    } else {
                        " or "
                    };
                    format!("Require {}", parts.join(joiner))
                }
            }
        };
        let mut session = Vec::new();
        if self.sign_in_frequency {
            session.push(if self.sign_in_frequency_interval == "everyTime" {
                "Sign-in frequency: every time".to_string()
            } else {
                format!(
                    "Sign-in frequency: every {} {}",
                    self.sign_in_frequency_value, self.sign_in_frequency_unit
                )
            });
        }
        if self.persistent_browser {
            session.push(format!(
                "Persistent browser: {}",
                self.persistent_browser_mode
            ));
        }
        let session = if session.is_empty() {
            "None".to_string()
        } else {
            session.join("; ")
        };
        json!({
            "users": users,
            "target": target,
            "platforms": platforms,
            "locations": locations,
            "clientApps": client_apps,
            "grant": grant,
            "session": session,
        })
    }
}

/// What a picker holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PickerKind {
    User,
    Group,
    Role,
    Application,
}

/// A picker's value as the document stores it: kept when the document already holds it there,
/// when it is an id (core checks that it names something) or a special word; a typed name
/// becomes the id it names.
fn resolve(
    value: &str,
    kept: &[String],
    kind: PickerKind,
    lookups: &Lookups,
) -> Result<String, String> {
    if kept.iter().any(|k| k == value) || is_id(value) {
        return Ok(value.to_string());
    }
    let by_name = |options: &[(String, String)]| -> Option<String> {
        let mut found = options.iter().filter(|(id, name)| {
            id.eq_ignore_ascii_case(value) || name.eq_ignore_ascii_case(value)
        });
        match (found.next(), found.next()) {
            (Some((id, _)), None) => Some(id.clone()),
            _ => None,
        }
    };
    match kind {
        PickerKind::User if value.eq_ignore_ascii_case(GUESTS) => Ok(GUESTS.to_string()),
        PickerKind::User => lookups
            .users
            .get(value)
            .cloned()
            .ok_or_else(|| format!("No user signs in as '{value}'.")),
        PickerKind::Group => {
            by_name(&lookups.groups).ok_or_else(|| format!("No group is named '{value}'."))
        }
        PickerKind::Role => {
            by_name(&lookups.roles).ok_or_else(|| format!("No directory role is named '{value}'."))
        }
        PickerKind::Application => match APPLICATION_GROUPS.iter().find(|(word, name)| {
            word.eq_ignore_ascii_case(value) || name.eq_ignore_ascii_case(value)
        }) {
            Some((word, _)) => Ok(word.to_string()),
            None => by_name(&lookups.applications)
                .ok_or_else(|| format!("No application is named '{value}'.")),
        },
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

    /// A policy as Entra exports it, with what the form does not edit.
    fn entra_policy() -> Value {
        json!({
            "id": "11111111-1111-1111-1111-111111111111",
            "displayName": "Contoso: compliant or MFA",
            "state": "enabledForReportingButNotEnforced",
            "templateId": null,
            "conditions": {
                "users": { "includeGroups": ["g1"], "includeUsers": [], "excludeUsers": ["9b0c6c3e-0000-4000-8000-00000000beef"],
                           "excludeGroups": [], "includeRoles": [], "excludeRoles": [],
                           "includeGuestsOrExternalUsers": { "guestOrExternalUserTypes": "b2bCollaborationGuest" } },
                "applications": { "includeApplications": ["All"], "excludeApplications": [] },
                "platforms": { "includePlatforms": ["android", "iOS"], "excludePlatforms": ["windows"] },
                "clientAppTypes": ["browser", "mobileAppsAndDesktopClients"],
                "signInRiskLevels": ["high"],
                "userRiskLevels": [],
                "authenticationFlows": { "transferMethods": "deviceCodeFlow" },
                "devices": { "deviceFilter": { "mode": "exclude", "rule": "device.isCompliant -eq True" } }
            },
            "grantControls": { "operator": "OR", "builtInControls": ["compliantDevice", "mfa"],
                               "termsOfUse": ["5d1b4d3c-0000-4000-8000-000000000001"], "customAuthenticationFactors": [] },
            "sessionControls": { "signInFrequency": { "isEnabled": true, "value": 4, "type": "hours" },
                                 "cloudAppSecurity": { "isEnabled": true, "cloudAppSecurityType": "monitorOnly" } }
        })
    }

    #[test]
    fn an_unchanged_form_writes_back_the_very_same_document() {
        let policy = entra_policy();
        let form = PolicyForm::from_policy(&policy);
        assert_eq!(form.apply(&policy, &Lookups::default()).unwrap(), policy);
    }

    #[test]
    fn a_change_rewrites_its_part_and_keeps_what_the_form_does_not_edit() {
        let policy = entra_policy();
        let mut form = PolicyForm::from_policy(&policy);
        form.state = "disabled".into();
        form.require_mfa = false;
        form.exclude_platforms.clear();
        form.sign_in_frequency_value = "8".into();
        let back = form.apply(&policy, &Lookups::default()).unwrap();
        assert_eq!(back["state"], "disabled");
        assert_eq!(
            back["grantControls"]["builtInControls"],
            json!(["compliantDevice"]),
            "an unticked MFA goes; compliantDevice stays"
        );
        assert_eq!(
            back["grantControls"]["termsOfUse"],
            policy["grantControls"]["termsOfUse"]
        );
        assert_eq!(
            back["conditions"]["platforms"]["includePlatforms"],
            json!(["android", "iOS"])
        );
        assert_eq!(
            back["conditions"]["platforms"]["excludePlatforms"],
            json!([])
        );
        assert_eq!(back["sessionControls"]["signInFrequency"]["value"], 8);
        assert_eq!(
            back["sessionControls"]["cloudAppSecurity"],
            policy["sessionControls"]["cloudAppSecurity"]
        );
        for kept in [
            "authenticationFlows",
            "devices",
            "signInRiskLevels",
            "users",
        ] {
            assert_eq!(
                back["conditions"][kept], policy["conditions"][kept],
                "{kept}"
            );
        }
    }

    #[test]
    fn ticking_a_platform_is_choosing_platforms() {
        let mut form = PolicyForm::new_policy();
        form.display_name = "Android".into();
        form.users_include = "all".into();
        form.grant = "block".into();
        // "Any device" stays chosen; the tick alone says Android.
        form.include_platforms = vec!["android".into()];
        let policy = form.apply(&empty_policy(), &Lookups::default()).unwrap();
        assert_eq!(
            policy["conditions"]["platforms"]["includePlatforms"],
            json!(["android"])
        );
        // Nothing ticked under Selected platforms is an error, never "no condition".
        form.include_platforms.clear();
        form.platforms_include = "select".into();
        let errors = form
            .apply(&empty_policy(), &Lookups::default())
            .unwrap_err();
        assert!(errors["conditions.platforms"].contains("at least one platform"));
    }

    #[test]
    fn picked_values_are_ids_kept_or_names_looked_up() {
        let policy = entra_policy();
        let mut form = PolicyForm::from_policy(&policy);
        // The unresolved exclusion stays; a typed sign-in name and group name are looked up.
        form.exclude.users.push("joni@contoso.com".into());
        form.exclude.groups.push("Break glass".into());
        let lookups = Lookups {
            users: HashMap::from([("joni@contoso.com".into(), "u-joni".into())]),
            groups: vec![("g-bg".into(), "Break glass".into())],
            ..Lookups::default()
        };
        let back = form.apply(&policy, &lookups).unwrap();
        assert_eq!(
            back["conditions"]["users"]["excludeUsers"],
            json!(["9b0c6c3e-0000-4000-8000-00000000beef", "u-joni"])
        );
        assert_eq!(
            back["conditions"]["users"]["excludeGroups"],
            json!(["g-bg"])
        );
        form.exclude.users.push("nobody@contoso.com".into());
        let errors = form.apply(&policy, &lookups).unwrap_err();
        assert!(errors["conditions.users"].contains("nobody@contoso.com"));
    }

    #[test]
    fn block_beside_kept_controls_is_refused_not_dropped() {
        let policy = entra_policy();
        let mut form = PolicyForm::from_policy(&policy);
        form.grant = "block".into();
        let errors = form.apply(&policy, &Lookups::default()).unwrap_err();
        assert!(errors["grantControls"].contains("compliantDevice"));
    }

    #[test]
    fn incomplete_choices_are_errors_beside_their_section() {
        let mut form = PolicyForm::new_policy();
        form.display_name = "x".into();
        form.include.users = vec!["nobody@contoso.com".into()];
        form.grant = "grant".into();
        form.platforms_include = "select".into();
        form.sign_in_frequency = true;
        form.sign_in_frequency_value = "0".into();
        let errors = form
            .apply(&empty_policy(), &Lookups::default())
            .unwrap_err();
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
        let errors = form
            .apply(&empty_policy(), &Lookups::default())
            .unwrap_err();
        assert!(errors["conditions.applications"].contains("c100"));
        form.auth_contexts = "c1".into();
        form.require_mfa = true;
        let policy = form.apply(&empty_policy(), &Lookups::default()).unwrap();
        assert_eq!(
            policy["conditions"]["applications"]["includeAuthenticationContextClassReferences"],
            json!(["c1"])
        );
        assert_eq!(
            policy["conditions"]["applications"]["includeApplications"],
            json!([])
        );
    }

    #[test]
    fn summaries_say_what_each_section_holds() {
        let form = PolicyForm::from_policy(&entra_policy());
        let s = form.summaries(&HashMap::new());
        assert_eq!(s["users"], "1 group included; 1 user excluded");
        assert_eq!(s["platforms"], "Android, iOS except Windows");
        assert_eq!(s["grant"], "Require multifactor authentication");
        assert_eq!(s["session"], "Sign-in frequency: every 4 hours");
    }

    #[test]
    fn an_authentication_context_summary_reads_as_the_saved_one_will() {
        let mut form = PolicyForm::new_policy();
        form.target = "authenticationContext".into();
        form.auth_contexts = "c1,c2\nc3".into();
        assert_eq!(
            form.summaries(&HashMap::new())["target"],
            "Authentication context: c1, c2, c3"
        );
    }
}
