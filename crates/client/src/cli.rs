//! The admin commands of the `portcullis` binary: `users`, `groups`, `roles`, `apps`,
//! `locations`, `audit`, `logs`, `passes`, `ca`, `strengths`, `methods`, `passkeys` and
//! `sessions`, each a thin layer over [`AdminClient`].
//!
//! The binary embeds [`AdminCommand`] with `#[command(flatten)]` in its own subcommand enum and
//! calls [`run`]; on `Err` it prints the error and exits with [`ClientError::exit`]'s code
//! (0 done, 1 refused by the server, 2 usage or a local file: [`crate::Exit`]). The connection flags live in
//! each group ([`ConnectionArgs`], global within the group) rather than at the top of the
//! binary, so that `portcullis users list --json` works and `serve --data-dir` keeps its own
//! meaning.
//!
//! Human output is tables and `label: value` blocks; `--json` prints the API's JSON (a list as
//! `{"value":[…]}` with every page collected) and nothing for commands whose API call returns
//! no body (deletes, membership changes).

use std::io::Write;
use std::path::PathBuf;

use clap::{Args, Subcommand};
use serde_json::{Value, json};

use crate::ClientError;
use crate::client::{
    AdminClient, ListOptions, NewApplication, NewUser, UserUpdate, odata_string, segment,
};
use crate::credentials::{Credentials, ENV_URL};
use crate::table::{Table, write_record};

type Out<'a> = &'a mut (dyn Write + Send);

/// How to reach the server and how to print.
#[derive(Debug, Clone, Args)]
pub struct ConnectionArgs {
    /// Address of the Portcullis server [default: the url in bootstrap.json, else http://localhost:8080]
    #[arg(long, env = ENV_URL, global = true, value_name = "URL")]
    pub url: Option<String>,
    /// The server's data folder, whose bootstrap.json holds the automation application's
    /// credentials (PORTCULLIS_CLIENT_ID and PORTCULLIS_CLIENT_SECRET win over it when set)
    #[arg(
        long,
        env = "PORTCULLIS_DATA_DIR",
        default_value = "./portcullis-data",
        global = true,
        value_name = "DIR"
    )]
    pub data_dir: PathBuf,
    /// Print the API's JSON instead of tables
    #[arg(long, global = true)]
    pub json: bool,
}

impl ConnectionArgs {
    /// Resolves credentials and connects (fetching a first token).
    pub async fn connect(&self) -> Result<AdminClient, ClientError> {
        let credentials = Credentials::resolve(self.url.as_deref(), &self.data_dir)?;
        AdminClient::with_credentials(credentials).await
    }
}

/// The admin commands, for `#[command(flatten)]` in the binary's subcommand enum.
#[derive(Debug, Subcommand)]
pub enum AdminCommand {
    /// Manage users
    Users(UsersArgs),
    /// Manage security groups and their members
    Groups(GroupsArgs),
    /// List directory roles and manage role assignments
    Roles(RolesArgs),
    /// Manage application registrations and their client secrets
    Apps(AppsArgs),
    /// Manage named locations for Conditional Access
    Locations(LocationsArgs),
    /// Read the directory audit log
    Audit(AuditArgs),
    /// Read the sign-in log
    Logs(LogsArgs),
    /// Issue, show and revoke a user's Temporary Access Pass (how a person with no method, or a
    /// locked-out administrator, gets in)
    Passes(PassesArgs),
    /// Conditional Access policies: list, show, import, export, state, delete, replay
    Ca(crate::ca::CaArgs),
    /// Authentication strengths (the built-in ones and custom ones)
    Strengths(crate::security::StrengthsArgs),
    /// The authentication method policies: TemporaryAccessPass, fido2 (passkeys, with the
    /// AAGUID list) and Password
    Methods(crate::security::MethodsArgs),
    /// A person's passkeys
    Passkeys(crate::security::PasskeysArgs),
    /// A person's sign-in sessions
    Sessions(crate::security::SessionsArgs),
}

impl AdminCommand {
    /// The connection flags given with this command.
    pub fn connection(&self) -> &ConnectionArgs {
        match self {
            AdminCommand::Users(a) => &a.connection,
            AdminCommand::Groups(a) => &a.connection,
            AdminCommand::Roles(a) => &a.connection,
            AdminCommand::Apps(a) => &a.connection,
            AdminCommand::Locations(a) => &a.connection,
            AdminCommand::Audit(a) => &a.connection,
            AdminCommand::Logs(a) => &a.connection,
            AdminCommand::Passes(a) => &a.connection,
            AdminCommand::Ca(a) => &a.connection,
            AdminCommand::Strengths(a) => &a.connection,
            AdminCommand::Methods(a) => &a.connection,
            AdminCommand::Passkeys(a) => &a.connection,
            AdminCommand::Sessions(a) => &a.connection,
        }
    }
}

/// `--filter` and `--top` of list commands.
#[derive(Debug, Clone, Default, Args)]
pub struct ListArgs {
    /// An OData $filter, e.g. "startswith(displayName,'Jo')"
    #[arg(long, value_name = "FILTER")]
    pub filter: Option<String>,
    /// Return at most N items [default: all]
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    pub top: Option<u32>,
}

impl ListArgs {
    fn options(&self) -> ListOptions {
        ListOptions {
            filter: self.filter.clone(),
            top: self.top.map(|t| t as usize),
        }
    }
}

#[derive(Debug, Args)]
pub struct UsersArgs {
    #[command(subcommand)]
    pub command: UsersCommand,
    #[command(flatten)]
    pub connection: ConnectionArgs,
}

#[derive(Debug, Subcommand)]
pub enum UsersCommand {
    /// List users
    List(ListArgs),
    /// Create a user
    Create {
        /// userPrincipalName, e.g. joni@contoso.com
        #[arg(long)]
        upn: String,
        /// Display name
        #[arg(long)]
        name: String,
        #[arg(long)]
        mail: Option<String>,
        /// Create a guest rather than a member
        #[arg(long)]
        guest: bool,
        /// Create the account disabled
        #[arg(long)]
        disabled: bool,
    },
    /// Show a user by id or userPrincipalName
    Show { user: String },
    /// Change a user's properties
    Update {
        /// Id or userPrincipalName
        user: String,
        /// New display name
        #[arg(long)]
        name: Option<String>,
        /// New userPrincipalName
        #[arg(long)]
        upn: Option<String>,
        /// New mail address
        #[arg(long, conflicts_with = "clear_mail")]
        mail: Option<String>,
        /// Remove the mail address
        #[arg(long)]
        clear_mail: bool,
        /// Enable sign-in
        #[arg(long, conflicts_with = "disable")]
        enable: bool,
        /// Block sign-in
        #[arg(long)]
        disable: bool,
        /// Member or Guest
        #[arg(long = "type", value_name = "TYPE", value_parser = ["Member", "Guest", "member", "guest"])]
        user_type: Option<String>,
    },
    /// Delete a user: it can be restored for 30 days (`users restore`)
    Delete { user: String },
    /// Restore a deleted user, by object id, with its groups, roles and methods
    Restore { id: String },
    /// The groups a user belongs to
    Groups {
        user: String,
        /// Include groups reached through nested groups
        #[arg(long)]
        transitive: bool,
    },
}

#[derive(Debug, Args)]
pub struct GroupsArgs {
    #[command(subcommand)]
    pub command: GroupsCommand,
    #[command(flatten)]
    pub connection: ConnectionArgs,
}

/// Groups are named by id or by display name (when exactly one group has it).
#[derive(Debug, Subcommand)]
pub enum GroupsCommand {
    /// List groups
    List(ListArgs),
    /// Create a security group
    Create {
        #[arg(long)]
        name: String,
        #[arg(long)]
        description: Option<String>,
        /// Let the group hold directory roles (cannot be changed later; needs
        /// RoleManagement.ReadWrite.Directory)
        #[arg(long)]
        role_assignable: bool,
    },
    /// Show a group
    Show { group: String },
    /// Rename a group or change its description
    Update {
        group: String,
        #[arg(long)]
        name: Option<String>,
        #[arg(long)]
        description: Option<String>,
    },
    /// Delete a group and its memberships
    Delete { group: String },
    /// List a group's members
    Members {
        group: String,
        /// Include members of nested groups
        #[arg(long)]
        transitive: bool,
    },
    /// Add a user (id or userPrincipalName) or a group (id or name) to a group
    AddMember { group: String, member: String },
    /// Remove a member from a group
    RemoveMember { group: String, member: String },
}

#[derive(Debug, Args)]
pub struct RolesArgs {
    #[command(subcommand)]
    pub command: RolesCommand,
    #[command(flatten)]
    pub connection: ConnectionArgs,
}

#[derive(Debug, Subcommand)]
pub enum RolesCommand {
    /// List the built-in role definitions
    List,
    /// List role assignments
    Assignments {
        /// Only this principal's (id, userPrincipalName, or group or application name)
        #[arg(long)]
        principal: Option<String>,
    },
    /// Assign a role, tenant-wide
    Assign {
        /// A user (id or userPrincipalName), group or application (id or name)
        #[arg(long)]
        principal: String,
        /// The role's display name (e.g. "Global Reader") or template id
        #[arg(long)]
        role: String,
    },
    /// Remove a role assignment by its id
    Unassign { assignment: String },
}

#[derive(Debug, Args)]
pub struct AppsArgs {
    #[command(subcommand)]
    pub command: AppsCommand,
    #[command(flatten)]
    pub connection: ConnectionArgs,
}

/// Applications are named by object id, appId (client id), or display name when unique.
#[derive(Debug, Subcommand)]
pub enum AppsCommand {
    /// List application registrations
    List(ListArgs),
    /// Register an application
    Create {
        #[arg(long)]
        name: String,
        /// A redirect URI (repeat for several)
        #[arg(long = "redirect-uri", value_name = "URI")]
        redirect_uris: Vec<String>,
        /// A public client (no secrets, PKCE required), such as a native or single-page app
        #[arg(long)]
        public: bool,
        /// An admin API permission, e.g. User.Read.All (repeat for several)
        #[arg(long = "permission", value_name = "PERMISSION")]
        permissions: Vec<String>,
        /// How its ID tokens (and its access tokens) are signed: ES256 unless given
        #[arg(long = "id-token-alg", value_name = "ALG", value_parser = ["ES256", "RS256"])]
        id_token_alg: Option<String>,
    },
    /// Show an application and its secrets (never their values)
    Show { app: String },
    /// Delete an application and its secrets
    Delete { app: String },
    /// Create a client secret; its value is printed once
    AddSecret {
        app: String,
        /// A name to tell the secret apart
        #[arg(long)]
        name: Option<String>,
    },
    /// Remove a client secret by its key id
    RemoveSecret { app: String, key_id: String },
}

#[derive(Debug, Args)]
pub struct LocationsArgs {
    #[command(subcommand)]
    pub command: LocationsCommand,
    #[command(flatten)]
    pub connection: ConnectionArgs,
}

#[derive(Debug, Subcommand)]
pub enum LocationsCommand {
    /// List named locations
    List,
    /// Show a named location
    Show { id: String },
    /// Create a location from IP ranges
    CreateIp {
        #[arg(long)]
        name: String,
        /// A range in CIDR notation, e.g. 203.0.113.0/24 (repeat for several)
        #[arg(long = "cidr", value_name = "CIDR", required = true)]
        cidrs: Vec<String>,
        /// Mark the location as trusted
        #[arg(long)]
        trusted: bool,
    },
    /// Create a location from countries
    CreateCountry {
        #[arg(long)]
        name: String,
        /// An ISO 3166-1 alpha-2 code, e.g. NL (repeat for several)
        #[arg(long = "country", value_name = "CC", required = true)]
        countries: Vec<String>,
        /// Also match sign-ins whose country cannot be determined
        #[arg(long)]
        include_unknown: bool,
    },
    /// Delete a named location
    Delete { id: String },
}

#[derive(Debug, Args)]
pub struct AuditArgs {
    #[command(subcommand)]
    pub command: AuditCommand,
    #[command(flatten)]
    pub connection: ConnectionArgs,
}

#[derive(Debug, Subcommand)]
pub enum AuditCommand {
    /// List directory audit entries, newest first
    List {
        /// An OData $filter, e.g. "activityDisplayName eq 'Add user'"
        #[arg(long)]
        filter: Option<String>,
        /// Return at most N entries
        #[arg(long, value_name = "N", default_value_t = 100, value_parser = clap::value_parser!(u32).range(1..))]
        top: u32,
        /// Only this category, e.g. UserManagement
        #[arg(long)]
        category: Option<String>,
        /// Only entries at or after this time (2026-01-31 or 2026-01-31T12:00:00Z)
        #[arg(long, value_name = "DATETIME")]
        since: Option<String>,
    },
}

#[derive(Debug, Args)]
pub struct PassesArgs {
    #[command(subcommand)]
    pub command: PassesCommand,
    #[command(flatten)]
    pub connection: ConnectionArgs,
}

#[derive(Debug, Subcommand)]
pub enum PassesCommand {
    /// Issue a pass (replacing the one the user had) and print it: it is shown only this once
    Issue {
        /// Object id or userPrincipalName
        user: String,
        /// How long the pass works [default: the policy's default lifetime]
        #[arg(long, value_name = "MINUTES")]
        lifetime: Option<u32>,
        /// The pass works for one sign-in only [default: the policy's setting]
        #[arg(long)]
        once: bool,
    },
    /// Show the user's pass: when it works and whether it still can (never the pass itself)
    Show {
        /// Object id or userPrincipalName
        user: String,
    },
    /// Delete the user's pass so it no longer works
    Revoke {
        /// Object id or userPrincipalName
        user: String,
    },
}

#[derive(Debug, Args)]
pub struct LogsArgs {
    #[command(subcommand)]
    pub command: LogsCommand,
    #[command(flatten)]
    pub connection: ConnectionArgs,
}

#[derive(Debug, Subcommand)]
pub enum LogsCommand {
    /// List sign-ins, newest first (with --follow, oldest first as they arrive)
    Signins {
        /// An OData $filter, e.g. "conditionalAccessStatus eq 'failure'"
        #[arg(long)]
        filter: Option<String>,
        /// Only this person's sign-ins
        #[arg(long, value_name = "UPN")]
        user: Option<String>,
        /// Only sign-ins to this application (client id)
        #[arg(long, value_name = "APP_ID")]
        app: Option<String>,
        /// Only sign-ins that ended with this error code (0: success)
        #[arg(long, value_name = "CODE")]
        error_code: Option<u32>,
        /// Only this Conditional Access status: success, failure or notApplied
        #[arg(long, value_name = "STATUS")]
        ca_status: Option<String>,
        /// Only sign-ins at or after this time (2026-01-31 or 2026-01-31T12:00:00Z)
        #[arg(long, value_name = "DATETIME")]
        since: Option<String>,
        /// Return at most N entries
        #[arg(long, value_name = "N", default_value_t = 50, value_parser = clap::value_parser!(u32).range(1..))]
        top: u32,
        /// Keep printing new sign-ins as they happen (Ctrl-C to stop)
        #[arg(long)]
        follow: bool,
        /// Seconds between polls with --follow
        #[arg(long, value_name = "SECONDS", default_value_t = 2, value_parser = clap::value_parser!(u64).range(1..=3600))]
        interval: u64,
        /// Stop after this many polls with --follow (for scripts and tests)
        #[arg(long, hide = true)]
        max_polls: Option<u64>,
    },
}

/// Runs one admin command, writing its output to `out`. The error's `Display` is the message
/// to print before exiting non-zero (for a refusal, the server's own message).
pub async fn run(cmd: AdminCommand, out: &mut (dyn Write + Send)) -> Result<(), ClientError> {
    let connection = cmd.connection().clone();
    let client = connection.connect().await?;
    run_with(&client, cmd, connection.json, out).await
}

/// As [`run`], on a client that is already connected (the connection flags are ignored).
pub async fn run_with(
    client: &AdminClient,
    cmd: AdminCommand,
    json: bool,
    out: &mut (dyn Write + Send),
) -> Result<(), ClientError> {
    let printer = Printer { json };
    let result = match cmd {
        AdminCommand::Users(a) => users(client, a.command, &printer, out).await,
        AdminCommand::Groups(a) => groups(client, a.command, &printer, out).await,
        AdminCommand::Roles(a) => roles(client, a.command, &printer, out).await,
        AdminCommand::Apps(a) => apps(client, a.command, &printer, out).await,
        AdminCommand::Locations(a) => locations(client, a.command, &printer, out).await,
        AdminCommand::Audit(a) => audit(client, a.command, &printer, out).await,
        AdminCommand::Logs(a) => logs(client, a.command, &printer, out).await,
        AdminCommand::Passes(a) => passes(client, a.command, &printer, out).await,
        AdminCommand::Ca(a) => crate::ca::run(client, a.command, json, out).await,
        AdminCommand::Strengths(a) => {
            crate::security::strengths(client, a.command, json, out).await
        }
        AdminCommand::Methods(a) => crate::security::methods(client, a.command, json, out).await,
        AdminCommand::Passkeys(a) => crate::security::passkeys(client, a.command, json, out).await,
        AdminCommand::Sessions(a) => crate::security::sessions(client, a.command, json, out).await,
    };
    match result {
        // `portcullis audit list | head` closes the pipe early; that is the reader being done,
        // not a failure worth a message and a non-zero exit.
        Err(ClientError::Output(e)) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        other => other,
    }
}

// --- output helpers ------------------------------------------------------------------------

struct Printer {
    json: bool,
}

impl Printer {
    /// Prints a list as `{"value":[…]}` for scripts, or the table (or a "none" line) for people.
    fn list(
        &self,
        out: Out<'_>,
        items: &[Value],
        empty: &str,
        table: impl FnOnce() -> Table,
    ) -> Result<(), ClientError> {
        if self.json {
            return write_json(out, &json!({ "value": items }));
        }
        if items.is_empty() {
            writeln!(out, "{empty}")?;
            return Ok(());
        }
        table().write(out)?;
        Ok(())
    }

    /// Prints one object as JSON, or through `human`.
    fn object(
        &self,
        out: Out<'_>,
        value: &Value,
        human: impl FnOnce(Out<'_>) -> std::io::Result<()>,
    ) -> Result<(), ClientError> {
        if self.json {
            return write_json(out, value);
        }
        human(out)?;
        Ok(())
    }

    /// A confirmation for people; nothing for scripts, whose exit status says it worked.
    fn done(&self, out: Out<'_>, message: &str) -> Result<(), ClientError> {
        if !self.json {
            writeln!(out, "{message}")?;
        }
        Ok(())
    }
}

fn write_json(out: Out<'_>, value: &Value) -> Result<(), ClientError> {
    serde_json::to_writer_pretty(&mut *out, value).map_err(std::io::Error::from)?;
    writeln!(out)?;
    Ok(())
}

/// A string property, or "" when absent or null.
fn s(v: &Value, key: &str) -> String {
    match v.get(key) {
        Some(Value::String(t)) => t.clone(),
        Some(Value::Null) | None => String::new(),
        Some(other) => other.to_string(),
    }
}

fn yes_no(v: &Value, key: &str) -> String {
    match v.get(key).and_then(Value::as_bool) {
        Some(true) => "yes".into(),
        Some(false) => "no".into(),
        None => String::new(),
    }
}

/// `#microsoft.graph.user` → `user`.
fn odata_kind(v: &Value) -> String {
    let t = s(v, "@odata.type");
    t.rsplit('.').next().unwrap_or_default().to_string()
}

fn strings(v: &Value, key: &str) -> Vec<String> {
    v.get(key)
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(Value::as_str)
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default()
}

fn is_guid(text: &str) -> bool {
    uuid::Uuid::parse_str(text.trim()).is_ok()
}

// --- name resolution -------------------------------------------------------------------------

/// One object whose `displayName` is `name`, or a usage error that says why not.
async fn by_display_name(
    client: &AdminClient,
    collection: &str,
    what: &str,
    name: &str,
) -> Result<Option<Value>, ClientError> {
    let filter = format!("displayName eq {}", odata_string(name));
    let found = client
        .list(
            collection,
            &ListOptions {
                filter: Some(filter),
                top: Some(10),
            },
        )
        .await?;
    match found.len() {
        0 => Ok(None),
        1 => Ok(found.into_iter().next()),
        _ => {
            let ids: Vec<String> = found.iter().map(|v| s(v, "id")).collect();
            Err(ClientError::Usage(format!(
                "{} {what}s are named '{name}' ({}): give the id instead.",
                found.len(),
                ids.join(", ")
            )))
        }
    }
}

/// A group's id from its id or its display name.
async fn group_id(client: &AdminClient, group: &str) -> Result<String, ClientError> {
    if is_guid(group) {
        return Ok(group.trim().to_string());
    }
    match by_display_name(client, "groups", "group", group).await? {
        Some(g) => Ok(s(&g, "id")),
        None => Err(ClientError::Usage(format!(
            "no group has the id or name '{group}'."
        ))),
    }
}

/// An application's id (object id or appId) from either or its display name.
async fn app_id(client: &AdminClient, app: &str) -> Result<String, ClientError> {
    if is_guid(app) {
        return Ok(app.trim().to_string());
    }
    match by_display_name(client, "applications", "application", app).await? {
        Some(a) => Ok(s(&a, "id")),
        None => Err(ClientError::Usage(format!(
            "no application has the id, appId or name '{app}'."
        ))),
    }
}

/// A directory object's id from an id, a userPrincipalName, or a group or application name.
async fn principal_id(
    client: &AdminClient,
    principal: &str,
    allow_apps: bool,
) -> Result<String, ClientError> {
    let principal = principal.trim();
    if is_guid(principal) {
        return Ok(principal.to_string());
    }
    if principal.contains('@') {
        return Ok(s(&client.user(principal).await?, "id"));
    }
    let group = by_display_name(client, "groups", "group", principal).await?;
    let app = if allow_apps {
        by_display_name(client, "applications", "application", principal).await?
    } else {
        None
    };
    match (group, app) {
        (Some(g), None) => Ok(s(&g, "id")),
        (None, Some(a)) => Ok(s(&a, "id")),
        (Some(_), Some(_)) => Err(ClientError::Usage(format!(
            "both a group and an application are named '{principal}': give the id instead."
        ))),
        (None, None) => Err(ClientError::Usage(format!(
            "'{principal}' is not an id, a userPrincipalName, or the name of a group{}.",
            if allow_apps { " or application" } else { "" }
        ))),
    }
}

// --- users -----------------------------------------------------------------------------------

fn user_table(items: &[Value]) -> Table {
    let mut t = Table::new(&[
        "ID",
        "USER PRINCIPAL NAME",
        "DISPLAY NAME",
        "TYPE",
        "ENABLED",
    ]);
    for u in items {
        t.row([
            s(u, "id"),
            s(u, "userPrincipalName"),
            s(u, "displayName"),
            s(u, "userType"),
            yes_no(u, "accountEnabled"),
        ]);
    }
    t
}

fn write_pass(out: Out<'_>, p: &Value) -> std::io::Result<()> {
    let mut rows = Vec::new();
    if let Some(pass) = p.get("temporaryAccessPass").and_then(Value::as_str) {
        rows.push(("Temporary Access Pass", pass.to_string()));
    }
    rows.extend([
        ("Starts", s(p, "startDateTime")),
        ("Lifetime (minutes)", s(p, "lifetimeInMinutes")),
        ("One use", yes_no(p, "isUsableOnce")),
        ("Usable now", yes_no(p, "isUsable")),
        ("Why", s(p, "methodUsabilityReason")),
        ("ID", s(p, "id")),
    ]);
    write_record(out, &rows)
}

async fn passes(
    client: &AdminClient,
    cmd: PassesCommand,
    p: &Printer,
    out: Out<'_>,
) -> Result<(), ClientError> {
    let path = |user: &str| {
        format!(
            "users/{}/authentication/temporaryAccessPassMethods",
            segment(user)
        )
    };
    match cmd {
        PassesCommand::Issue {
            user,
            lifetime,
            once,
        } => {
            let mut body = serde_json::Map::new();
            if let Some(minutes) = lifetime {
                body.insert("lifetimeInMinutes".into(), json!(minutes));
            }
            if once {
                body.insert("isUsableOnce".into(), json!(true));
            }
            let issued = client.post(&path(&user), &Value::Object(body)).await?;
            p.object(out, &issued, |out| {
                writeln!(
                    out,
                    "Issued a Temporary Access Pass for {user}. It is shown only now."
                )?;
                write_pass(out, &issued)
            })
        }
        PassesCommand::Show { user } => {
            let items = client.list_all(&path(&user)).await?;
            match items.first() {
                Some(pass) => p.object(out, pass, |out| write_pass(out, pass)),
                None if p.json => write_json(out, &Value::Null),
                None => {
                    writeln!(out, "{user} has no Temporary Access Pass.")?;
                    Ok(())
                }
            }
        }
        PassesCommand::Revoke { user } => {
            let items = client.list_all(&path(&user)).await?;
            if items.is_empty() {
                return p.done(out, &format!("{user} had no Temporary Access Pass."));
            }
            for pass in &items {
                client
                    .delete(&format!("{}/{}", path(&user), segment(&s(pass, "id"))))
                    .await?;
            }
            p.done(
                out,
                &format!("Revoked the Temporary Access Pass of {user}: it no longer works."),
            )
        }
    }
}

fn write_user(out: Out<'_>, u: &Value) -> std::io::Result<()> {
    write_record(
        out,
        &[
            ("ID", s(u, "id")),
            ("User principal name", s(u, "userPrincipalName")),
            ("Display name", s(u, "displayName")),
            ("Mail", s(u, "mail")),
            ("User type", s(u, "userType")),
            ("Account enabled", yes_no(u, "accountEnabled")),
            ("Created", s(u, "createdDateTime")),
        ],
    )
}

fn group_table(items: &[Value]) -> Table {
    let mut t = Table::new(&["ID", "DISPLAY NAME", "DESCRIPTION", "CREATED"]);
    for g in items {
        t.row([
            s(g, "id"),
            s(g, "displayName"),
            s(g, "description"),
            s(g, "createdDateTime"),
        ]);
    }
    t
}

async fn users(
    client: &AdminClient,
    cmd: UsersCommand,
    p: &Printer,
    out: Out<'_>,
) -> Result<(), ClientError> {
    match cmd {
        UsersCommand::List(list) => {
            let items = client.list_users(&list.options()).await?;
            p.list(out, &items, "No users.", || user_table(&items))
        }
        UsersCommand::Create {
            upn,
            name,
            mail,
            guest,
            disabled,
        } => {
            let user = NewUser {
                user_principal_name: upn,
                display_name: name,
                mail,
                account_enabled: Some(!disabled),
                user_type: Some(if guest { "Guest" } else { "Member" }.into()),
            };
            let created = client.create_user(&user).await?;
            p.object(out, &created, |out| {
                writeln!(out, "Created user {}.", s(&created, "userPrincipalName"))?;
                write_user(out, &created)
            })
        }
        UsersCommand::Show { user } => {
            let u = client.user(&user).await?;
            p.object(out, &u, |out| write_user(out, &u))
        }
        UsersCommand::Update {
            user,
            name,
            upn,
            mail,
            clear_mail,
            enable,
            disable,
            user_type,
        } => {
            let update = UserUpdate {
                user_principal_name: upn.clone(),
                display_name: name,
                mail: if clear_mail {
                    Some(None)
                } else {
                    mail.map(Some)
                },
                account_enabled: if enable {
                    Some(true)
                } else if disable {
                    Some(false)
                } else {
                    None
                },
                user_type: user_type.map(|t| {
                    if t.eq_ignore_ascii_case("guest") {
                        "Guest"
                    } else {
                        "Member"
                    }
                    .to_string()
                }),
            };
            if update.is_empty() {
                return Err(ClientError::Usage(
                    "nothing to change: give --name, --upn, --mail, --clear-mail, --enable, --disable or --type.".into(),
                ));
            }
            client.update_user(&user, &update).await?;
            // A new UPN is a new way to find the user; the old one no longer resolves.
            let now = client.user(upn.as_deref().unwrap_or(&user)).await?;
            p.object(out, &now, |out| {
                writeln!(out, "Updated user {}.", s(&now, "userPrincipalName"))?;
                write_user(out, &now)
            })
        }
        UsersCommand::Delete { user } => {
            client.delete_user(&user).await?;
            p.done(out, &format!("Deleted user {user}."))
        }
        UsersCommand::Restore { id } => {
            let user = client.restore_user(&id).await?;
            p.object(out, &user, |out| {
                writeln!(out, "Restored user {}.", s(&user, "userPrincipalName"))?;
                write_user(out, &user)
            })
        }
        UsersCommand::Groups { user, transitive } => {
            let items = client.user_member_of(&user, transitive).await?;
            p.list(
                out,
                &items,
                &format!("{user} is not a member of any group."),
                || group_table(&items),
            )
        }
    }
}

// --- groups ----------------------------------------------------------------------------------

fn write_group(out: Out<'_>, g: &Value) -> std::io::Result<()> {
    write_record(
        out,
        &[
            ("ID", s(g, "id")),
            ("Display name", s(g, "displayName")),
            ("Description", s(g, "description")),
            ("Mail nickname", s(g, "mailNickname")),
            ("Security enabled", yes_no(g, "securityEnabled")),
            ("Role-assignable", yes_no(g, "isAssignableToRole")),
            ("Created", s(g, "createdDateTime")),
        ],
    )
}

async fn groups(
    client: &AdminClient,
    cmd: GroupsCommand,
    p: &Printer,
    out: Out<'_>,
) -> Result<(), ClientError> {
    match cmd {
        GroupsCommand::List(list) => {
            let items = client.list_groups(&list.options()).await?;
            p.list(out, &items, "No groups.", || group_table(&items))
        }
        GroupsCommand::Create {
            name,
            description,
            role_assignable,
        } => {
            let created = client
                .create_group(&name, description.as_deref(), role_assignable)
                .await?;
            p.object(out, &created, |out| {
                writeln!(out, "Created group {}.", s(&created, "displayName"))?;
                write_group(out, &created)
            })
        }
        GroupsCommand::Show { group } => {
            let g = client.group(&group_id(client, &group).await?).await?;
            p.object(out, &g, |out| write_group(out, &g))
        }
        GroupsCommand::Update {
            group,
            name,
            description,
        } => {
            let id = group_id(client, &group).await?;
            let mut patch = json!({});
            if let Some(n) = name {
                patch["displayName"] = json!(n);
            }
            if let Some(d) = description {
                patch["description"] = json!(d);
            }
            if patch.as_object().is_some_and(|m| m.is_empty()) {
                return Err(ClientError::Usage(
                    "nothing to change: give --name or --description.".into(),
                ));
            }
            client.update_group(&id, &patch).await?;
            let g = client.group(&id).await?;
            p.object(out, &g, |out| {
                writeln!(out, "Updated group {}.", s(&g, "displayName"))?;
                write_group(out, &g)
            })
        }
        GroupsCommand::Delete { group } => {
            client
                .delete_group(&group_id(client, &group).await?)
                .await?;
            p.done(out, &format!("Deleted group {group}."))
        }
        GroupsCommand::Members { group, transitive } => {
            let items = client
                .group_members(&group_id(client, &group).await?, transitive)
                .await?;
            p.list(out, &items, &format!("{group} has no members."), || {
                let mut t = Table::new(&["ID", "TYPE", "DISPLAY NAME", "USER PRINCIPAL NAME"]);
                for m in &items {
                    t.row([
                        s(m, "id"),
                        odata_kind(m),
                        s(m, "displayName"),
                        s(m, "userPrincipalName"),
                    ]);
                }
                t
            })
        }
        GroupsCommand::AddMember { group, member } => {
            let gid = group_id(client, &group).await?;
            let mid = principal_id(client, &member, false).await?;
            client.add_member(&gid, &mid).await?;
            p.done(out, &format!("Added {member} to {group}."))
        }
        GroupsCommand::RemoveMember { group, member } => {
            let gid = group_id(client, &group).await?;
            let mid = principal_id(client, &member, false).await?;
            client.remove_member(&gid, &mid).await?;
            p.done(out, &format!("Removed {member} from {group}."))
        }
    }
}

// --- roles -----------------------------------------------------------------------------------

async fn roles(
    client: &AdminClient,
    cmd: RolesCommand,
    p: &Printer,
    out: Out<'_>,
) -> Result<(), ClientError> {
    match cmd {
        RolesCommand::List => {
            let items = client.role_definitions().await?;
            p.list(out, &items, "No roles.", || {
                let mut t = Table::new(&["ID", "DISPLAY NAME", "PRIVILEGED", "DESCRIPTION"]);
                for r in &items {
                    t.row([
                        s(r, "id"),
                        s(r, "displayName"),
                        yes_no(r, "isPrivileged"),
                        s(r, "description"),
                    ]);
                }
                t
            })
        }
        RolesCommand::Assignments { principal } => {
            let pid = match &principal {
                Some(pr) => Some(principal_id(client, pr, true).await?),
                None => None,
            };
            let items = client.role_assignments(pid.as_deref()).await?;
            if p.json {
                return p.list(out, &items, "", Table::default);
            }
            // Role ids mean nothing to a person; one more call names them.
            let definitions = client.role_definitions().await?;
            let role_name = |id: &str| {
                definitions
                    .iter()
                    .find(|d| s(d, "id") == id)
                    .map(|d| s(d, "displayName"))
                    .unwrap_or_else(|| id.to_string())
            };
            p.list(out, &items, "No role assignments.", || {
                let mut t = Table::new(&["ID", "ROLE", "PRINCIPAL", "SCOPE"]);
                for a in &items {
                    t.row([
                        s(a, "id"),
                        role_name(&s(a, "roleDefinitionId")),
                        s(a, "principalId"),
                        s(a, "directoryScopeId"),
                    ]);
                }
                t
            })
        }
        RolesCommand::Assign { principal, role } => {
            let definition = client.find_role_definition(&role).await?;
            let pid = principal_id(client, &principal, true).await?;
            let assignment = client.assign_role(&pid, &s(&definition, "id")).await?;
            p.object(out, &assignment, |out| {
                writeln!(
                    out,
                    "Assigned {} to {principal}.",
                    s(&definition, "displayName")
                )?;
                write_record(
                    out,
                    &[
                        ("Assignment ID", s(&assignment, "id")),
                        ("Role", s(&definition, "displayName")),
                        ("Role definition ID", s(&assignment, "roleDefinitionId")),
                        ("Principal ID", s(&assignment, "principalId")),
                        ("Scope", s(&assignment, "directoryScopeId")),
                    ],
                )
            })
        }
        RolesCommand::Unassign { assignment } => {
            client.remove_role_assignment(&assignment).await?;
            p.done(out, &format!("Removed role assignment {assignment}."))
        }
    }
}

// --- applications ----------------------------------------------------------------------------

fn client_type(a: &Value) -> &'static str {
    if a.get("isFallbackPublicClient").and_then(Value::as_bool) == Some(true) {
        "public"
    } else {
        "confidential"
    }
}

fn redirect_uris(a: &Value) -> Vec<String> {
    ["web", "publicClient", "spa"]
        .iter()
        .filter_map(|k| a.get(*k))
        .flat_map(|v| strings(v, "redirectUris"))
        .collect()
}

fn secrets(a: &Value) -> Vec<Value> {
    a.get("passwordCredentials")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default()
}

fn write_app(out: Out<'_>, a: &Value) -> std::io::Result<()> {
    write_record(
        out,
        &[
            ("ID", s(a, "id")),
            ("App ID (client id)", s(a, "appId")),
            ("Display name", s(a, "displayName")),
            ("Client type", client_type(a).into()),
            ("Redirect URIs", redirect_uris(a).join(", ")),
            ("API permissions", strings(a, "apiPermissions").join(", ")),
            ("ID token alg", s(a, "idTokenSignedResponseAlg")),
            ("Created", s(a, "createdDateTime")),
        ],
    )?;
    let creds = secrets(a);
    if creds.is_empty() {
        return Ok(());
    }
    writeln!(out)?;
    writeln!(out, "Client secrets:")?;
    let mut t = Table::new(&["KEY ID", "NAME", "HINT", "EXPIRES"]);
    for c in &creds {
        t.row([
            s(c, "keyId"),
            s(c, "displayName"),
            format!("{}…", s(c, "hint")),
            s(c, "endDateTime"),
        ]);
    }
    t.write(out)
}

async fn apps(
    client: &AdminClient,
    cmd: AppsCommand,
    p: &Printer,
    out: Out<'_>,
) -> Result<(), ClientError> {
    match cmd {
        AppsCommand::List(list) => {
            let items = client.list_applications(&list.options()).await?;
            p.list(out, &items, "No applications.", || {
                let mut t = Table::new(&["ID", "APP ID", "DISPLAY NAME", "CLIENT TYPE", "SECRETS"]);
                for a in &items {
                    t.row([
                        s(a, "id"),
                        s(a, "appId"),
                        s(a, "displayName"),
                        client_type(a).into(),
                        secrets(a).len().to_string(),
                    ]);
                }
                t
            })
        }
        AppsCommand::Create {
            name,
            redirect_uris,
            public,
            permissions,
            id_token_alg,
        } => {
            let app = NewApplication {
                display_name: name,
                public,
                redirect_uris,
                api_permissions: permissions,
                id_token_signed_response_alg: id_token_alg,
            };
            let created = client.create_application(&app).await?;
            p.object(out, &created, |out| {
                writeln!(out, "Created application {}.", s(&created, "displayName"))?;
                write_app(out, &created)?;
                if !public {
                    writeln!(out)?;
                    writeln!(
                        out,
                        "It has no client secret yet: portcullis apps add-secret {}",
                        s(&created, "id")
                    )?;
                }
                Ok(())
            })
        }
        AppsCommand::Show { app } => {
            let a = client.application(&app_id(client, &app).await?).await?;
            p.object(out, &a, |out| write_app(out, &a))
        }
        AppsCommand::Delete { app } => {
            client
                .delete_application(&app_id(client, &app).await?)
                .await?;
            p.done(out, &format!("Deleted application {app}."))
        }
        AppsCommand::AddSecret { app, name } => {
            let secret = client
                .add_secret(&app_id(client, &app).await?, name.as_deref())
                .await?;
            p.object(out, &secret, |out| {
                writeln!(out, "New client secret for {app}:")?;
                writeln!(out)?;
                writeln!(out, "    {}", s(&secret, "secretText"))?;
                writeln!(out)?;
                write_record(
                    out,
                    &[
                        ("Key ID", s(&secret, "keyId")),
                        ("Name", s(&secret, "displayName")),
                        ("Expires", s(&secret, "endDateTime")),
                    ],
                )?;
                writeln!(out)?;
                writeln!(
                    out,
                    "Warning: copy the secret now. Portcullis keeps only its hash, so it will not be shown again."
                )
            })
        }
        AppsCommand::RemoveSecret { app, key_id } => {
            client
                .remove_secret(&app_id(client, &app).await?, &key_id)
                .await?;
            p.done(out, &format!("Removed secret {key_id} from {app}."))
        }
    }
}

// --- named locations -------------------------------------------------------------------------

fn location_kind(l: &Value) -> &'static str {
    match s(l, "@odata.type").as_str() {
        "#microsoft.graph.ipNamedLocation" => "ip",
        "#microsoft.graph.countryNamedLocation" => "country",
        _ => "other",
    }
}

/// The ranges of an IP location or the countries of a country location, comma-separated.
fn location_scope(l: &Value) -> String {
    if let Some(ranges) = l.get("ipRanges").and_then(Value::as_array) {
        return ranges
            .iter()
            .map(|r| s(r, "cidrAddress"))
            .collect::<Vec<_>>()
            .join(", ");
    }
    let mut countries = strings(l, "countriesAndRegions");
    if l.get("includeUnknownCountriesAndRegions")
        .and_then(Value::as_bool)
        == Some(true)
    {
        countries.push("(unknown)".into());
    }
    countries.join(", ")
}

fn write_location(out: Out<'_>, l: &Value) -> std::io::Result<()> {
    let mut fields = vec![
        ("ID", s(l, "id")),
        ("Display name", s(l, "displayName")),
        ("Type", location_kind(l).into()),
    ];
    if location_kind(l) == "ip" {
        fields.push(("Trusted", yes_no(l, "isTrusted")));
        fields.push(("IP ranges", location_scope(l)));
    } else {
        fields.push(("Countries", strings(l, "countriesAndRegions").join(", ")));
        fields.push((
            "Include unknown",
            yes_no(l, "includeUnknownCountriesAndRegions"),
        ));
    }
    fields.push(("Created", s(l, "createdDateTime")));
    fields.push(("Modified", s(l, "modifiedDateTime")));
    write_record(out, &fields)
}

async fn locations(
    client: &AdminClient,
    cmd: LocationsCommand,
    p: &Printer,
    out: Out<'_>,
) -> Result<(), ClientError> {
    match cmd {
        LocationsCommand::List => {
            let items = client.named_locations().await?;
            p.list(out, &items, "No named locations.", || {
                let mut t = Table::new(&[
                    "ID",
                    "DISPLAY NAME",
                    "TYPE",
                    "TRUSTED",
                    "RANGES OR COUNTRIES",
                ]);
                for l in &items {
                    t.row([
                        s(l, "id"),
                        s(l, "displayName"),
                        location_kind(l).into(),
                        yes_no(l, "isTrusted"),
                        location_scope(l),
                    ]);
                }
                t
            })
        }
        LocationsCommand::Show { id } => {
            let l = client.named_location(&id).await?;
            p.object(out, &l, |out| write_location(out, &l))
        }
        LocationsCommand::CreateIp {
            name,
            cidrs,
            trusted,
        } => {
            let created = client.create_ip_location(&name, &cidrs, trusted).await?;
            p.object(out, &created, |out| {
                writeln!(
                    out,
                    "Created named location {}.",
                    s(&created, "displayName")
                )?;
                write_location(out, &created)
            })
        }
        LocationsCommand::CreateCountry {
            name,
            countries,
            include_unknown,
        } => {
            let created = client
                .create_country_location(&name, &countries, include_unknown)
                .await?;
            p.object(out, &created, |out| {
                writeln!(
                    out,
                    "Created named location {}.",
                    s(&created, "displayName")
                )?;
                write_location(out, &created)
            })
        }
        LocationsCommand::Delete { id } => {
            client.delete_named_location(&id).await?;
            p.done(out, &format!("Deleted named location {id}."))
        }
    }
}

// --- audit -----------------------------------------------------------------------------------

/// The `$filter` for `audit list`: the given filter, the category and the start time, all
/// required.
/// The `$filter` for `logs signins` from its flags.
#[allow(clippy::too_many_arguments)]
fn sign_in_filter(
    filter: Option<&str>,
    user: Option<&str>,
    app: Option<&str>,
    error_code: Option<u32>,
    ca_status: Option<&str>,
    since: Option<&str>,
) -> Option<String> {
    let mut parts = Vec::new();
    if let Some(f) = filter.map(str::trim).filter(|f| !f.is_empty()) {
        parts.push(format!("({f})"));
    }
    if let Some(u) = user {
        parts.push(format!("userPrincipalName eq {}", odata_string(u)));
    }
    if let Some(a) = app {
        parts.push(format!("appId eq {}", odata_string(a)));
    }
    if let Some(c) = error_code {
        parts.push(format!("status/errorCode eq {c}"));
    }
    if let Some(c) = ca_status {
        parts.push(format!("conditionalAccessStatus eq {}", odata_string(c)));
    }
    if let Some(t) = since {
        let t = t.trim();
        let t = if t.len() == 10 && !t.contains('T') {
            format!("{t}T00:00:00Z")
        } else {
            t.to_string()
        };
        parts.push(format!("createdDateTime ge {t}"));
    }
    (!parts.is_empty()).then(|| parts.join(" and "))
}

fn sign_in_table(items: &[Value]) -> Table {
    let mut t = Table::new(&[
        "TIME",
        "USER",
        "APPLICATION",
        "RESULT",
        "CONDITIONAL ACCESS",
        "METHOD",
        "IP",
        "DEVICE",
    ]);
    for e in items {
        let code = e["status"]["errorCode"].as_u64().unwrap_or_default();
        let result = if code == 0 {
            "success".to_string()
        } else {
            format!("failure {code}")
        };
        let method = e["authenticationDetails"]
            .as_array()
            .map(|d| {
                d.iter()
                    .filter_map(|m| m["authenticationMethod"].as_str())
                    .collect::<Vec<_>>()
                    .join(" + ")
            })
            .unwrap_or_default();
        let device = format!(
            "{} {}",
            s(&e["deviceDetail"], "operatingSystem"),
            s(&e["deviceDetail"], "browser")
        );
        t.row([
            s(e, "createdDateTime"),
            s(e, "userPrincipalName"),
            s(e, "appDisplayName"),
            result,
            s(e, "conditionalAccessStatus"),
            method,
            s(e, "ipAddress"),
            device.trim().to_string(),
        ]);
    }
    t
}

async fn logs(
    client: &AdminClient,
    cmd: LogsCommand,
    p: &Printer,
    out: Out<'_>,
) -> Result<(), ClientError> {
    let LogsCommand::Signins {
        filter,
        user,
        app,
        error_code,
        ca_status,
        since,
        top,
        follow,
        interval,
        max_polls,
    } = cmd;
    let base = sign_in_filter(
        filter.as_deref(),
        user.as_deref(),
        app.as_deref(),
        error_code,
        ca_status.as_deref(),
        since.as_deref(),
    );
    let options = ListOptions {
        filter: base.clone(),
        top: Some(top as usize),
    };
    let mut items = client.sign_ins(&options).await?;
    if !follow {
        return p.list(out, &items, "No sign-ins.", || sign_in_table(&items));
    }
    // Following: print what there is oldest first, then poll for entries newer than the last
    // one shown. Entries are ordered by time; an entry with the same instant is not repeated
    // because the id is remembered too.
    items.reverse();
    let mut seen: std::collections::HashSet<String> = items.iter().map(|e| s(e, "id")).collect();
    let mut last = items.last().map(|e| s(e, "createdDateTime"));
    print_follow(p, out, &items)?;
    let mut polls = 0;
    loop {
        if max_polls.is_some_and(|m| polls >= m) {
            return Ok(());
        }
        polls += 1;
        tokio::time::sleep(std::time::Duration::from_secs(interval)).await;
        let mut parts: Vec<String> = base.iter().map(|b| format!("({b})")).collect();
        if let Some(t) = &last {
            parts.push(format!("createdDateTime ge {t}"));
        }
        let options = ListOptions {
            filter: (!parts.is_empty()).then(|| parts.join(" and ")),
            top: Some(999),
        };
        let mut fresh: Vec<Value> = client
            .sign_ins(&options)
            .await?
            .into_iter()
            .filter(|e| !seen.contains(&s(e, "id")))
            .collect();
        fresh.reverse();
        for e in &fresh {
            seen.insert(s(e, "id"));
            last = Some(s(e, "createdDateTime"));
        }
        print_follow(p, out, &fresh)?;
    }
}

/// With --follow, one JSON object per line for scripts, or table rows for people.
fn print_follow(p: &Printer, out: Out<'_>, items: &[Value]) -> Result<(), ClientError> {
    if items.is_empty() {
        return Ok(());
    }
    if p.json {
        for e in items {
            writeln!(out, "{}", serde_json::to_string(e).unwrap_or_default())?;
        }
    } else {
        sign_in_table(items).write(out)?;
    }
    out.flush()?;
    Ok(())
}

fn audit_filter(
    filter: Option<&str>,
    category: Option<&str>,
    since: Option<&str>,
) -> Option<String> {
    let mut parts = Vec::new();
    if let Some(f) = filter.map(str::trim).filter(|f| !f.is_empty()) {
        parts.push(format!("({f})"));
    }
    if let Some(c) = category {
        parts.push(format!("category eq {}", odata_string(c)));
    }
    if let Some(t) = since {
        let t = t.trim();
        // A bare date is the start of that day in UTC, which is what "since Monday" means to
        // an administrator reading a log kept in UTC.
        let t = if t.len() == 10 && !t.contains('T') {
            format!("{t}T00:00:00Z")
        } else {
            t.to_string()
        };
        parts.push(format!("activityDateTime ge {t}"));
    }
    match parts.len() {
        0 => None,
        // A lone user filter needs no parentheses.
        1 if filter.is_some() => filter.map(|f| f.trim().to_string()),
        _ => Some(parts.join(" and ")),
    }
}

/// Who made a change: the user's UPN or the application's name.
fn initiator(a: &Value) -> String {
    let by = a.get("initiatedBy").cloned().unwrap_or(Value::Null);
    if let Some(user) = by.get("user").filter(|u| !u.is_null()) {
        let upn = s(user, "userPrincipalName");
        return if upn.is_empty() { s(user, "id") } else { upn };
    }
    if let Some(app) = by.get("app").filter(|a| !a.is_null()) {
        let name = s(app, "displayName");
        return if name.is_empty() {
            s(app, "appId")
        } else {
            name
        };
    }
    String::new()
}

fn targets(a: &Value) -> String {
    a.get("targetResources")
        .and_then(Value::as_array)
        .map(|ts| {
            ts.iter()
                .map(|t| {
                    let upn = s(t, "userPrincipalName");
                    let name = s(t, "displayName");
                    if !upn.is_empty() {
                        upn
                    } else if !name.is_empty() {
                        name
                    } else {
                        s(t, "id")
                    }
                })
                .collect::<Vec<_>>()
                .join(", ")
        })
        .unwrap_or_default()
}

async fn audit(
    client: &AdminClient,
    cmd: AuditCommand,
    p: &Printer,
    out: Out<'_>,
) -> Result<(), ClientError> {
    match cmd {
        AuditCommand::List {
            filter,
            top,
            category,
            since,
        } => {
            let options = ListOptions {
                filter: audit_filter(filter.as_deref(), category.as_deref(), since.as_deref()),
                top: Some(top as usize),
            };
            let items = client.directory_audits(&options).await?;
            p.list(out, &items, "No audit entries.", || {
                let mut t = Table::new(&[
                    "TIME",
                    "ACTIVITY",
                    "CATEGORY",
                    "RESULT",
                    "INITIATED BY",
                    "TARGETS",
                ]);
                for a in &items {
                    t.row([
                        s(a, "activityDateTime"),
                        s(a, "activityDisplayName"),
                        s(a, "category"),
                        s(a, "result"),
                        initiator(a),
                        targets(a),
                    ]);
                }
                t
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::{CommandFactory, Parser};

    #[derive(Parser)]
    struct Cli {
        #[command(subcommand)]
        command: AdminCommand,
    }

    #[test]
    fn command_tree_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn connection_flags_may_follow_the_leaf_command() {
        let cli = Cli::try_parse_from([
            "portcullis",
            "users",
            "list",
            "--top",
            "5",
            "--json",
            "--url",
            "http://h:1",
            "--data-dir",
            "/d",
        ])
        .unwrap();
        let c = cli.command.connection();
        assert!(c.json);
        assert_eq!(c.url.as_deref(), Some("http://h:1"));
        assert_eq!(c.data_dir, PathBuf::from("/d"));
        let AdminCommand::Users(UsersArgs {
            command: UsersCommand::List(l),
            ..
        }) = cli.command
        else {
            panic!()
        };
        assert_eq!(l.top, Some(5));
    }

    #[test]
    fn the_id_token_algorithm_is_es256_or_rs256() {
        let parse = |alg: &str| {
            Cli::try_parse_from([
                "portcullis",
                "apps",
                "create",
                "--name",
                "Gateway",
                "--id-token-alg",
                alg,
            ])
        };
        let Ok(Cli {
            command:
                AdminCommand::Apps(AppsArgs {
                    command: AppsCommand::Create { id_token_alg, .. },
                    ..
                }),
        }) = parse("RS256")
        else {
            panic!("RS256 parses")
        };
        assert_eq!(id_token_alg.as_deref(), Some("RS256"));
        for bad in ["none", "HS256", "rs256", ""] {
            assert!(parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn repeated_flags_collect() {
        let cli = Cli::try_parse_from([
            "portcullis",
            "apps",
            "create",
            "--name",
            "Web",
            "--redirect-uri",
            "https://a/cb",
            "--redirect-uri",
            "https://b/cb",
            "--permission",
            "User.Read.All",
        ])
        .unwrap();
        let AdminCommand::Apps(AppsArgs {
            command:
                AppsCommand::Create {
                    redirect_uris,
                    permissions,
                    public,
                    ..
                },
            ..
        }) = cli.command
        else {
            panic!()
        };
        assert_eq!(redirect_uris, ["https://a/cb", "https://b/cb"]);
        assert_eq!(permissions, ["User.Read.All"]);
        assert!(!public);
    }

    #[test]
    fn enable_and_disable_conflict() {
        assert!(
            Cli::try_parse_from([
                "portcullis",
                "users",
                "update",
                "x",
                "--enable",
                "--disable"
            ])
            .is_err()
        );
        assert!(
            Cli::try_parse_from(["portcullis", "locations", "create-ip", "--name", "x"]).is_err()
        );
        assert!(Cli::try_parse_from(["portcullis", "users", "list", "--top", "0"]).is_err());
    }

    #[test]
    fn audit_filters_combine() {
        assert_eq!(audit_filter(None, None, None), None);
        assert_eq!(
            audit_filter(Some("result eq 'success'"), None, None).as_deref(),
            Some("result eq 'success'")
        );
        assert_eq!(
            audit_filter(
                Some("result eq 'success'"),
                Some("UserManagement"),
                Some("2026-01-31")
            )
            .as_deref(),
            Some(
                "(result eq 'success') and category eq 'UserManagement' and activityDateTime ge 2026-01-31T00:00:00Z"
            )
        );
        assert_eq!(
            audit_filter(None, None, Some("2026-01-31T12:00:00Z")).as_deref(),
            Some("activityDateTime ge 2026-01-31T12:00:00Z")
        );
    }

    #[test]
    fn audit_rows_name_initiator_and_targets() {
        let entry = json!({
            "initiatedBy": {"user": null, "app": {"appId": "a1", "displayName": "Portcullis automation"}},
            "targetResources": [{"id": "u1", "displayName": "Joni", "userPrincipalName": "joni@contoso.com"}, {"id": "g1", "displayName": null}]
        });
        assert_eq!(initiator(&entry), "Portcullis automation");
        assert_eq!(targets(&entry), "joni@contoso.com, g1");
    }

    #[test]
    fn location_scopes() {
        let ip = json!({"@odata.type":"#microsoft.graph.ipNamedLocation","ipRanges":[{"cidrAddress":"10.0.0.0/8"},{"cidrAddress":"2001:db8::/32"}]});
        assert_eq!(location_kind(&ip), "ip");
        assert_eq!(location_scope(&ip), "10.0.0.0/8, 2001:db8::/32");
        let c = json!({"@odata.type":"#microsoft.graph.countryNamedLocation","countriesAndRegions":["NL","BE"],"includeUnknownCountriesAndRegions":true});
        assert_eq!(location_kind(&c), "country");
        assert_eq!(location_scope(&c), "NL, BE, (unknown)");
    }

    #[test]
    fn json_lists_are_graph_collections() {
        let mut out = Vec::new();
        Printer { json: true }
            .list(&mut out, &[json!({"id": "1"})], "none", Table::default)
            .unwrap();
        let v: Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(v, json!({"value": [{"id": "1"}]}));
        let mut out = Vec::new();
        Printer { json: false }
            .list(&mut out, &[], "No users.", Table::default)
            .unwrap();
        assert_eq!(String::from_utf8(out).unwrap(), "No users.\n");
    }
}
