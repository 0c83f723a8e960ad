//! A tenant's policies, strengths and named locations, compiled once for fast evaluation.
//!
//! Compilation resolves strength references, parses device-filter rules, turns platform and
//! client-app lists into bit masks and indexes every user, group and role id that any policy
//! names, so that evaluating a user in hundreds of groups costs one hash lookup per group rather
//! than a scan of every policy. A policy that cannot be compiled completely (bad rule, unknown
//! location type, unmodelled condition) is marked unevaluable: it fails closed when it would
//! otherwise apply.

use std::borrow::Cow;
use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};
use std::net::IpAddr;
use std::sync::Arc;

use crate::device_filter::{Rule, RuleError};
use crate::enums::{
    AnalysisReason, BuiltInControl, ClientAppType, DevicePlatform, FilterMode, GrantOperator,
    PolicyState, RiskLevel, USER_ACTION_REGISTER_SECURITY_INFO, UserAction,
};
use crate::location::NamedLocation;
use crate::model::{
    ALL, ALL_TRUSTED, CLIENT_APPLICATIONS, ConditionalAccessPolicy, GUESTS_OR_EXTERNAL_USERS,
    GuestsOrExternalUsers, NONE, UnsupportedEffect, is_meaningful,
};
use crate::strength::{
    AuthenticationStrength, built_in_strength, built_in_strengths, multifactor_strength,
};

/// Passes a precomputed 64-bit digest through as the hash.
#[derive(Default, Clone, Copy)]
pub(crate) struct Digested(u64);

impl Hasher for Digested {
    fn write(&mut self, bytes: &[u8]) {
        // Only `u64` keys are hashed with this hasher; fold anything else in for completeness.
        for byte in bytes {
            self.0 = (self.0 ^ u64::from(*byte)).wrapping_mul(0x100_0000_01b3);
        }
    }

    fn write_u64(&mut self, value: u64) {
        self.0 = value;
    }

    fn finish(&self) -> u64 {
        self.0
    }
}

pub(crate) type IdMap<V> = HashMap<Box<str>, V>;

/// A case-insensitive digest of an id: every byte is ORed with 0x20, which lowercases ASCII
/// letters and leaves hex digits and dashes alone, so `ABC` and `abc` digest alike without
/// allocating a lowercase copy. Ids are chosen by the directory, not by whoever signs in, so a
/// fast non-cryptographic mix is enough.
fn digest(id: &str) -> u64 {
    const K: u64 = 0x9e37_79b9_7f4a_7c15;
    const LOWER: u64 = 0x2020_2020_2020_2020;
    let bytes = id.as_bytes();
    let mut hash = (bytes.len() as u64).wrapping_mul(K);
    let mut words = bytes.chunks_exact(8);
    for word in &mut words {
        let mut array = [0u8; 8];
        array.copy_from_slice(word);
        hash = (hash ^ (u64::from_le_bytes(array) | LOWER))
            .wrapping_mul(K)
            .rotate_left(27);
    }
    let rest = words.remainder();
    if !rest.is_empty() {
        let mut array = [0x20u8; 8];
        array[..rest.len()].copy_from_slice(rest);
        hash = (hash ^ (u64::from_le_bytes(array) | LOWER))
            .wrapping_mul(K)
            .rotate_left(27);
    }
    hash ^= hash >> 31;
    hash = hash.wrapping_mul(0xbf58_476d_1ce4_e5b9);
    hash ^ (hash >> 29)
}

/// Longest id kept inline in the index (GUIDs are 36 characters); longer ids are rare and go
/// to a scanned list.
const INLINE_ID: usize = 40;

/// One indexed id, kept inline so that confirming a match reads no other memory, with the range
/// of its references in the index's shared list.
#[derive(Debug, Clone)]
struct Slot {
    id: [u8; INLINE_ID],
    len: u8,
    start: u32,
    count: u32,
}

impl Slot {
    fn is(&self, id: &[u8]) -> bool {
        usize::from(self.len) == id.len() && self.id[..id.len()].eq_ignore_ascii_case(id)
    }
}

/// Id → the policies that name it, on which side. Looked up once per group of the user: a
/// digest, one probe that usually misses, and on a hit an inline compare. Ids whose digests
/// collide with another's, or that are too long to inline, go to a short scanned list.
#[derive(Debug, Clone, Default)]
pub(crate) struct IdIndex {
    by_digest: HashMap<u64, Slot, BuildHasherDefault<Digested>>,
    others: Vec<(Box<str>, u32, u32)>,
    refs: Vec<IdRef>,
}

/// Collects references before they are laid out in an [`IdIndex`].
#[derive(Debug, Default)]
pub(crate) struct IdIndexBuilder {
    ids: Vec<(Box<str>, Vec<IdRef>)>,
    positions: HashMap<Box<str>, usize>,
}

impl IdIndexBuilder {
    fn add(&mut self, id: &str, reference: IdRef) {
        let key: Box<str> = id.trim_ascii().to_ascii_lowercase().into();
        match self.positions.get(&key) {
            Some(&position) => self.ids[position].1.push(reference),
            None => {
                self.positions.insert(key.clone(), self.ids.len());
                self.ids.push((key, vec![reference]));
            }
        }
    }

    fn build(self) -> IdIndex {
        let mut index = IdIndex::default();
        for (id, refs) in self.ids {
            let start = u32::try_from(index.refs.len()).unwrap_or(u32::MAX);
            let count = u32::try_from(refs.len()).unwrap_or(u32::MAX);
            index.refs.extend(refs);
            let bytes = id.as_bytes();
            let digest = digest(&id);
            if bytes.len() <= INLINE_ID && !index.by_digest.contains_key(&digest) {
                let mut inline = [0u8; INLINE_ID];
                inline[..bytes.len()].copy_from_slice(bytes);
                let len = u8::try_from(bytes.len()).unwrap_or(u8::MAX);
                index.by_digest.insert(
                    digest,
                    Slot {
                        id: inline,
                        len,
                        start,
                        count,
                    },
                );
            } else {
                index.others.push((id, start, count));
            }
        }
        index
    }
}

impl IdIndex {
    fn range(&self, start: u32, count: u32) -> &[IdRef] {
        let start = start as usize;
        self.refs.get(start..start + count as usize).unwrap_or(&[])
    }

    pub(crate) fn get(&self, id: &str) -> &[IdRef] {
        if self.refs.is_empty() {
            return &[];
        }
        let id = id.trim_ascii();
        if let Some(slot) = self.by_digest.get(&digest(id))
            && slot.is(id.as_bytes())
        {
            return self.range(slot.start, slot.count);
        }
        match self
            .others
            .iter()
            .find(|(known, _, _)| known.eq_ignore_ascii_case(id))
        {
            Some(&(_, start, count)) => self.range(start, count),
            None => &[],
        }
    }
}

/// Ids compare without regard to ASCII case (Graph GUIDs come in either case). Lowercase only
/// when needed so the common, already-lowercase id costs no allocation.
pub(crate) fn normalize(id: &str) -> Cow<'_, str> {
    let id = id.trim();
    if id.bytes().any(|b| b.is_ascii_uppercase()) {
        Cow::Owned(id.to_ascii_lowercase())
    } else {
        Cow::Borrowed(id)
    }
}

/// Which side of a condition an id appears on, for one policy.
#[derive(Debug, Clone, Copy)]
pub(crate) struct IdRef {
    pub(crate) policy: u32,
    pub(crate) include: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Enforcement {
    Enforced,
    ReportOnly,
    Disabled,
}

#[derive(Debug, Clone, Default)]
pub(crate) struct UsersRule {
    /// No user is targeted (users missing, `None`, or nothing listed).
    pub(crate) targets_nobody: bool,
    /// The policy is for workload identities (`clientApplications`) only.
    pub(crate) workload_only: bool,
    pub(crate) include_all: bool,
    pub(crate) include_guests: bool,
    pub(crate) exclude_guests: bool,
}

#[derive(Debug, Clone, Default)]
pub(crate) struct TargetRule {
    pub(crate) include_all_apps: bool,
    pub(crate) include_apps: Vec<Box<str>>,
    pub(crate) exclude_apps: Vec<Box<str>>,
    pub(crate) user_actions: Vec<UserAction>,
    pub(crate) auth_contexts: Vec<Box<str>>,
}

#[derive(Debug, Clone, Default)]
pub(crate) struct PlatformRule {
    pub(crate) include_all: bool,
    pub(crate) include: u8,
    pub(crate) exclude_all: bool,
    pub(crate) exclude: u8,
}

pub(crate) fn platform_bit(platform: &DevicePlatform) -> Option<u8> {
    Some(match platform {
        DevicePlatform::Android => 1,
        DevicePlatform::IOS => 2,
        DevicePlatform::Windows => 4,
        DevicePlatform::WindowsPhone => 8,
        DevicePlatform::MacOS => 16,
        DevicePlatform::Linux => 32,
        _ => return None,
    })
}

#[derive(Debug, Clone, Default)]
pub(crate) struct LocationRule {
    pub(crate) include_all: bool,
    pub(crate) include_trusted: bool,
    pub(crate) include: Vec<Box<str>>,
    pub(crate) exclude_all: bool,
    pub(crate) exclude_trusted: bool,
    pub(crate) exclude: Vec<Box<str>>,
}

pub(crate) fn client_app_bit(app: &ClientAppType) -> Option<u8> {
    Some(match app {
        ClientAppType::Browser => 1,
        ClientAppType::MobileAppsAndDesktopClients => 2,
        ClientAppType::ExchangeActiveSync
        | ClientAppType::EasSupported
        | ClientAppType::EasUnsupported => 4,
        ClientAppType::OtherClients => 8,
        _ => return None,
    })
}

pub(crate) fn risk_bit(level: &RiskLevel) -> Option<u8> {
    Some(match level {
        RiskLevel::Low => 1,
        RiskLevel::Medium => 2,
        RiskLevel::High => 4,
        RiskLevel::Hidden => 8,
        RiskLevel::None => 16,
        _ => return None,
    })
}

/// A grant control after strength references are resolved.
#[derive(Debug, Clone, PartialEq)]
pub enum Control {
    Block,
    /// The built-in `mfa` control: the same as the built-in Multifactor authentication strength.
    Mfa,
    AuthenticationStrength(Arc<AuthenticationStrength>),
    /// A strength id that neither the tenant nor the built-ins define: cannot be satisfied.
    UnknownAuthenticationStrength(String),
    CompliantDevice,
    DomainJoinedDevice,
    ApprovedApplication,
    CompliantApplication,
    PasswordChange,
    RiskRemediation,
    TermsOfUse(String),
    CustomControl(String),
    /// A built-in control or grant member this engine does not know: cannot be satisfied.
    Unsupported(String),
}

impl Control {
    /// Entra's prompt order: MFA and strengths, compliant device, hybrid joined device,
    /// approved client app, app protection, password change, terms of use, custom controls.
    pub fn prompt_rank(&self) -> u8 {
        match self {
            Control::Block => 0,
            Control::Mfa
            | Control::AuthenticationStrength(_)
            | Control::UnknownAuthenticationStrength(_) => 1,
            Control::CompliantDevice => 2,
            Control::DomainJoinedDevice => 3,
            Control::ApprovedApplication => 4,
            Control::CompliantApplication => 5,
            Control::PasswordChange | Control::RiskRemediation => 6,
            Control::TermsOfUse(_) => 7,
            Control::CustomControl(_) => 8,
            Control::Unsupported(_) => 9,
        }
    }

    /// The label Entra's sign-in log uses in `enforcedGrantControls`.
    pub fn label(&self) -> String {
        match self {
            Control::Block => "Block".to_owned(),
            Control::Mfa => "Require multifactor authentication".to_owned(),
            Control::AuthenticationStrength(s) => {
                format!("Require authentication strength: {}", s.name())
            }
            Control::UnknownAuthenticationStrength(id) => {
                format!("Require authentication strength: {id} (unknown)")
            }
            Control::CompliantDevice => "Require device to be marked as compliant".to_owned(),
            Control::DomainJoinedDevice => {
                "Require Microsoft Entra hybrid joined device".to_owned()
            }
            Control::ApprovedApplication => "Require approved client app".to_owned(),
            Control::CompliantApplication => "Require app protection policy".to_owned(),
            Control::PasswordChange => "Require password change".to_owned(),
            Control::RiskRemediation => "Require risk remediation".to_owned(),
            Control::TermsOfUse(id) => format!("Terms of use: {id}"),
            Control::CustomControl(id) => format!("Custom control: {id}"),
            Control::Unsupported(name) => format!("Unsupported control: {name}"),
        }
    }

    /// The strength this control asks for, if it is an authentication requirement.
    pub fn strength(&self) -> Option<&AuthenticationStrength> {
        match self {
            Control::Mfa => Some(multifactor_strength()),
            Control::AuthenticationStrength(s) => Some(s),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, Default)]
pub(crate) struct GrantRule {
    pub(crate) block: bool,
    pub(crate) any_of: bool,
    /// In the order the policy defines them: built-in controls, strength, terms, custom.
    pub(crate) controls: Vec<Control>,
}

/// Why a policy cannot be evaluated: the condition family and the member at fault.
#[derive(Debug, Clone)]
pub(crate) struct Unevaluable {
    pub(crate) condition: AnalysisReason,
    pub(crate) field: String,
}

#[derive(Debug, Clone)]
pub(crate) struct CompiledPolicy {
    pub(crate) enforcement: Enforcement,
    pub(crate) users: UsersRule,
    pub(crate) target: TargetRule,
    pub(crate) targets_register_security_info: bool,
    pub(crate) platforms: Option<PlatformRule>,
    pub(crate) locations: Option<LocationRule>,
    pub(crate) client_apps: Option<u8>,
    pub(crate) sign_in_risk: Option<u8>,
    pub(crate) user_risk: Option<u8>,
    pub(crate) device_filter: Option<(bool, Rule)>,
    pub(crate) unevaluable: Option<Unevaluable>,
    pub(crate) grant: GrantRule,
}

/// The policies, authentication strengths and named locations of a tenant.
#[derive(Debug, Clone)]
pub struct PolicySet {
    policies: Vec<Arc<ConditionalAccessPolicy>>,
    strengths: Vec<AuthenticationStrength>,
    named_locations: Vec<NamedLocation>,
    pub(crate) compiled: Vec<CompiledPolicy>,
    pub(crate) users: IdIndex,
    pub(crate) groups: IdIndex,
    pub(crate) roles: IdIndex,
    pub(crate) trusted_locations: Vec<Box<str>>,
}

impl Default for PolicySet {
    fn default() -> Self {
        PolicySet::new(Vec::new(), Vec::new(), Vec::new())
    }
}

impl PolicySet {
    /// Compiles a tenant's configuration. `strengths` are the custom strengths (built-ins are
    /// always known; a custom entry with a built-in id is ignored because built-ins are
    /// read-only). Never fails: problems make the affected policy fail closed, and `lint`
    /// explains them.
    pub fn new(
        policies: Vec<ConditionalAccessPolicy>,
        strengths: Vec<AuthenticationStrength>,
        named_locations: Vec<NamedLocation>,
    ) -> Self {
        let policies: Vec<Arc<ConditionalAccessPolicy>> =
            policies.into_iter().map(Arc::new).collect();
        let mut set = PolicySet {
            policies: Vec::new(),
            strengths,
            named_locations,
            compiled: Vec::with_capacity(policies.len()),
            users: IdIndex::default(),
            groups: IdIndex::default(),
            roles: IdIndex::default(),
            trusted_locations: Vec::new(),
        };
        set.trusted_locations = set
            .named_locations
            .iter()
            .filter(|l| l.is_trusted())
            .map(|l| normalize(l.id()).into())
            .collect();
        let mut strength_cache: IdMap<Arc<AuthenticationStrength>> = IdMap::default();
        let mut ids = [
            IdIndexBuilder::default(),
            IdIndexBuilder::default(),
            IdIndexBuilder::default(),
        ];
        for (index, policy) in policies.iter().enumerate() {
            let index = u32::try_from(index).unwrap_or(u32::MAX);
            let compiled = set.compile(index, policy, &mut strength_cache, &mut ids);
            set.compiled.push(compiled);
        }
        let [users, groups, roles] = ids;
        set.users = users.build();
        set.groups = groups.build();
        set.roles = roles.build();
        set.policies = policies;
        set
    }

    pub fn policies(&self) -> &[Arc<ConditionalAccessPolicy>] {
        &self.policies
    }

    /// The tenant's custom strengths, as given.
    pub fn strengths(&self) -> &[AuthenticationStrength] {
        &self.strengths
    }

    pub fn named_locations(&self) -> &[NamedLocation] {
        &self.named_locations
    }

    /// A strength by id: a built-in, else a custom strength of the tenant.
    pub fn strength(&self, id: &str) -> Option<&AuthenticationStrength> {
        built_in_strength(id).or_else(|| {
            self.strengths
                .iter()
                .find(|s| s.id.trim().eq_ignore_ascii_case(id.trim()))
        })
    }

    /// Built-ins followed by the tenant's custom strengths.
    pub fn all_strengths(&self) -> impl Iterator<Item = &AuthenticationStrength> {
        built_in_strengths().iter().chain(
            self.strengths
                .iter()
                .filter(|s| !AuthenticationStrength::is_built_in_id(&s.id)),
        )
    }

    /// A named location by id.
    pub fn named_location(&self, id: &str) -> Option<&NamedLocation> {
        self.named_locations
            .iter()
            .find(|l| l.id().trim().eq_ignore_ascii_case(id.trim()))
    }

    /// Ids of the tenant's named locations a sign-in from `ip` falls in.
    pub fn locations_for(&self, ip: IpAddr, country: Option<&str>) -> Vec<String> {
        crate::location::named_locations_containing(ip, country, &self.named_locations)
    }

    /// The grant controls a policy configures, resolved (for traces of policies that did not
    /// apply, and for display).
    pub fn configured_controls(&self, index: usize) -> &[Control] {
        self.compiled.get(index).map_or(&[], |c| &c.grant.controls)
    }

    /// Why a policy cannot be evaluated, if it cannot: `(member, condition)`.
    pub fn unevaluable_condition(&self, index: usize) -> Option<(&str, AnalysisReason)> {
        self.compiled
            .get(index)?
            .unevaluable
            .as_ref()
            .map(|u| (u.field.as_str(), u.condition))
    }

    fn resolve_strength(
        &self,
        reference: &AuthenticationStrength,
        cache: &mut IdMap<Arc<AuthenticationStrength>>,
    ) -> Control {
        let key: Box<str> = normalize(&reference.id).into();
        if let Some(found) = cache.get(&key) {
            return Control::AuthenticationStrength(found.clone());
        }
        // Built-ins are read-only: their definition wins over any copy. A tenant strength comes
        // next; the copy embedded in an exported policy is used when the tenant list lacks it.
        let resolved = self.strength(&reference.id).cloned().or_else(|| {
            reference
                .allowed_combinations
                .is_some()
                .then(|| reference.clone())
        });
        match resolved {
            Some(strength) => {
                let strength = Arc::new(strength);
                cache.insert(key, strength.clone());
                Control::AuthenticationStrength(strength)
            }
            None => Control::UnknownAuthenticationStrength(reference.id.clone()),
        }
    }

    fn index_ids(
        ids_by_kind: &mut [IdIndexBuilder; 3],
        policy: u32,
        ids: &[String],
        include: bool,
        kind: IdKind,
    ) {
        for id in ids {
            if id.eq_ignore_ascii_case(ALL)
                || id.eq_ignore_ascii_case(NONE)
                || id.eq_ignore_ascii_case(GUESTS_OR_EXTERNAL_USERS)
            {
                continue;
            }
            let map = &mut ids_by_kind[kind as usize];
            map.add(id, IdRef { policy, include });
        }
    }

    fn compile(
        &mut self,
        index: u32,
        policy: &ConditionalAccessPolicy,
        strengths: &mut IdMap<Arc<AuthenticationStrength>>,
        ids: &mut [IdIndexBuilder; 3],
    ) -> CompiledPolicy {
        let conditions = &policy.conditions;
        let mut unevaluable: Option<Unevaluable> = None;
        let mut mark = |condition: AnalysisReason, field: String| {
            if unevaluable.is_none() {
                unevaluable = Some(Unevaluable { condition, field });
            }
        };

        let enforcement = match &policy.state {
            PolicyState::Disabled => Enforcement::Disabled,
            PolicyState::EnabledForReportingButNotEnforced => Enforcement::ReportOnly,
            _ => Enforcement::Enforced,
        };

        // Users.
        let mut users = UsersRule::default();
        let workload = conditions
            .extra
            .get(CLIENT_APPLICATIONS)
            .is_some_and(is_meaningful);
        match &conditions.users {
            Some(u) => {
                let has = |list: &[String], special: &str| {
                    list.iter().any(|v| v.trim().eq_ignore_ascii_case(special))
                };
                let guests = |g: &Option<GuestsOrExternalUsers>| {
                    g.as_ref()
                        .is_some_and(|g| g.types().any(|t| t.eq_ignore_ascii_case("internalGuest")))
                };
                users.include_all = has(&u.include_users, ALL);
                users.include_guests = has(&u.include_users, GUESTS_OR_EXTERNAL_USERS)
                    || guests(&u.include_guests_or_external_users);
                users.exclude_guests = has(&u.exclude_users, GUESTS_OR_EXTERNAL_USERS)
                    || guests(&u.exclude_guests_or_external_users);
                let include_nothing_else = u
                    .include_users
                    .iter()
                    .all(|v| v.trim().eq_ignore_ascii_case(NONE))
                    && u.include_groups.is_empty()
                    && u.include_roles.is_empty()
                    && u.include_guests_or_external_users
                        .as_ref()
                        .is_none_or(|g| g.types().next().is_none());
                users.targets_nobody = include_nothing_else;
                Self::index_ids(ids, index, &u.include_users, true, IdKind::User);
                Self::index_ids(ids, index, &u.exclude_users, false, IdKind::User);
                Self::index_ids(ids, index, &u.include_groups, true, IdKind::Group);
                Self::index_ids(ids, index, &u.exclude_groups, false, IdKind::Group);
                Self::index_ids(ids, index, &u.include_roles, true, IdKind::Role);
                Self::index_ids(ids, index, &u.exclude_roles, false, IdKind::Role);
                if users.targets_nobody && workload {
                    users.workload_only = true;
                } else if workload {
                    mark(
                        AnalysisReason::WorkloadIdentities,
                        "conditions.clientApplications".to_owned(),
                    );
                }
            }
            None => {
                users.targets_nobody = true;
                users.workload_only = workload;
            }
        }

        // Target resources.
        let mut target = TargetRule::default();
        let mut targets_register_security_info = false;
        if let Some(apps) = &conditions.applications {
            for app in &apps.include_applications {
                if app.trim().eq_ignore_ascii_case(ALL) {
                    target.include_all_apps = true;
                } else if !app.trim().eq_ignore_ascii_case(NONE) {
                    target.include_apps.push(normalize(app).into());
                }
            }
            target.exclude_apps = apps
                .exclude_applications
                .iter()
                .map(|a| normalize(a).into())
                .collect();
            for action in &apps.include_user_actions {
                match UserAction::from_urn(action) {
                    Some(known) => target.user_actions.push(known),
                    None => mark(
                        AnalysisReason::UserActions,
                        format!("conditions.applications.includeUserActions: {action}"),
                    ),
                }
            }
            targets_register_security_info = apps.include_user_actions.iter().any(|a| {
                a.trim()
                    .eq_ignore_ascii_case(USER_ACTION_REGISTER_SECURITY_INFO)
            });
            target.auth_contexts = apps
                .include_authentication_context_class_references
                .iter()
                .map(|c| normalize(c).into())
                .collect();
        }

        // Device platforms.
        let platforms = conditions.platforms.as_ref().and_then(|p| {
            if p.include_platforms.is_empty() && p.exclude_platforms.is_empty() {
                return None;
            }
            let mut rule = PlatformRule {
                // Exclusions without inclusions mean "all except": the wider reading.
                include_all: p.include_platforms.is_empty(),
                ..PlatformRule::default()
            };
            for platform in &p.include_platforms {
                match platform {
                    DevicePlatform::All => rule.include_all = true,
                    other => rule.include |= platform_bit(other).unwrap_or(0),
                }
            }
            for platform in &p.exclude_platforms {
                match platform {
                    DevicePlatform::All => rule.exclude_all = true,
                    other => rule.exclude |= platform_bit(other).unwrap_or(0),
                }
            }
            Some(rule)
        });

        // Locations.
        let locations = match &conditions.locations {
            Some(l) if !(l.include_locations.is_empty() && l.exclude_locations.is_empty()) => {
                let mut rule = LocationRule {
                    include_all: l.include_locations.is_empty(),
                    ..LocationRule::default()
                };
                let sides = [(&l.include_locations, true), (&l.exclude_locations, false)];
                for (list, include) in sides {
                    for id in list {
                        let id = id.trim();
                        if id.eq_ignore_ascii_case(ALL) {
                            if include {
                                rule.include_all = true
                            } else {
                                rule.exclude_all = true
                            }
                        } else if id.eq_ignore_ascii_case(ALL_TRUSTED) {
                            if include {
                                rule.include_trusted = true
                            } else {
                                rule.exclude_trusted = true
                            }
                        } else {
                            match self.named_location(id) {
                                Some(location) if location.is_evaluable() => {}
                                Some(_) => mark(
                                    AnalysisReason::Location,
                                    format!(
                                        "conditions.locations: named location {id} is of a type this engine cannot evaluate"
                                    ),
                                ),
                                None => mark(
                                    AnalysisReason::Location,
                                    format!(
                                        "conditions.locations: named location {id} is not defined"
                                    ),
                                ),
                            }
                            let key: Box<str> = normalize(id).into();
                            if include {
                                rule.include.push(key)
                            } else {
                                rule.exclude.push(key)
                            }
                        }
                    }
                }
                Some(rule)
            }
            _ => None,
        };

        // Client apps and risk.
        let client_apps = (!conditions.client_app_types.is_empty()).then(|| {
            if conditions.client_app_types.contains(&ClientAppType::All) {
                u8::MAX
            } else {
                conditions
                    .client_app_types
                    .iter()
                    .filter_map(client_app_bit)
                    .fold(0, |mask, bit| mask | bit)
            }
        });
        let risk_mask = |levels: &[RiskLevel]| {
            (!levels.is_empty()).then(|| levels.iter().filter_map(risk_bit).fold(0u8, |m, b| m | b))
        };
        let sign_in_risk = risk_mask(&conditions.sign_in_risk_levels);
        let user_risk = risk_mask(&conditions.user_risk_levels);

        // Device filter.
        let device_filter = conditions
            .devices
            .as_ref()
            .and_then(|d| d.device_filter.as_ref())
            .and_then(|filter| {
                let include = match &filter.mode {
                    FilterMode::Include => true,
                    FilterMode::Exclude => false,
                    FilterMode::Other(mode) => {
                        mark(
                            AnalysisReason::Devices,
                            format!("conditions.devices.deviceFilter.mode: unknown mode `{mode}`"),
                        );
                        return None;
                    }
                };
                match Rule::parse(&filter.rule) {
                    Ok(rule) => Some((include, rule)),
                    Err(RuleError { position, message }) => {
                        mark(
                            AnalysisReason::Devices,
                            format!(
                                "conditions.devices.deviceFilter.rule: {message} (at {position})"
                            ),
                        );
                        None
                    }
                }
            });

        // Members we keep but cannot evaluate.
        for field in policy.unsupported_fields() {
            if field.effect == UnsupportedEffect::FailsClosed {
                let condition = condition_of(&field.path);
                mark(condition, field.path);
            }
        }

        // Grant controls.
        let mut grant = GrantRule::default();
        if let Some(g) = &policy.grant_controls {
            grant.any_of = matches!(g.operator, Some(GrantOperator::Or));
            for control in &g.built_in_controls {
                let compiled = match control {
                    BuiltInControl::Block => {
                        grant.block = true;
                        Control::Block
                    }
                    BuiltInControl::Mfa => Control::Mfa,
                    BuiltInControl::CompliantDevice => Control::CompliantDevice,
                    BuiltInControl::DomainJoinedDevice => Control::DomainJoinedDevice,
                    BuiltInControl::ApprovedApplication => Control::ApprovedApplication,
                    BuiltInControl::CompliantApplication => Control::CompliantApplication,
                    BuiltInControl::PasswordChange => Control::PasswordChange,
                    BuiltInControl::RiskRemediation => Control::RiskRemediation,
                    other => Control::Unsupported(other.as_str().to_owned()),
                };
                grant.controls.push(compiled);
            }
            if let Some(reference) = &g.authentication_strength {
                let resolved = self.resolve_strength(reference, strengths);
                grant.controls.push(resolved);
            }
            grant.controls.extend(
                g.terms_of_use
                    .iter()
                    .map(|t| Control::TermsOfUse(t.clone())),
            );
            grant.controls.extend(
                g.custom_authentication_factors
                    .iter()
                    .map(|c| Control::CustomControl(c.clone())),
            );
            for field in policy.unsupported_fields() {
                if field.effect == UnsupportedEffect::NeverSatisfied {
                    grant.controls.push(Control::Unsupported(field.path));
                }
            }
        }

        CompiledPolicy {
            enforcement,
            users,
            target,
            targets_register_security_info,
            platforms,
            locations,
            client_apps,
            sign_in_risk,
            user_risk,
            device_filter,
            unevaluable,
            grant,
        }
    }
}

#[derive(Clone, Copy)]
enum IdKind {
    User = 0,
    Group = 1,
    Role = 2,
}

/// The What-If reason family of an unmodelled member, from its path.
fn condition_of(path: &str) -> AnalysisReason {
    let member = path.strip_prefix("conditions.").unwrap_or(path);
    let head = member.split('.').next().unwrap_or(member);
    match head {
        "users" => AnalysisReason::Users,
        "applications" => AnalysisReason::Application,
        "platforms" => AnalysisReason::DevicePlatform,
        "locations" => AnalysisReason::Location,
        "devices" => AnalysisReason::Devices,
        "times" => AnalysisReason::Time,
        "insiderRiskLevels" => AnalysisReason::InsiderRisk,
        "authenticationFlows" => AnalysisReason::AuthenticationFlow,
        "clientApplications" | "servicePrincipalRiskLevels" => AnalysisReason::WorkloadIdentities,
        _ => AnalysisReason::InvalidCondition,
    }
}
