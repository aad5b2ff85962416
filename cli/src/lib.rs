//! The `warrant` command line: argument definitions and dispatch. Key operations go to
//! warrantd over its socket (through `warrant-client`); verify, inspect and evidence run
//! locally; `demo`, `setup` and `doctor` run warrantd's subcommands of those names. Nothing of
//! the daemon is linked.
#![forbid(unsafe_code)]

mod args;
mod error;
mod evidence;
mod files;
mod gate;
mod loopback_peer;
mod proxy;
mod publish;
mod tls;
mod upstream;
mod view;
mod warrantd;
mod yubikey;

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};
use serde_json::json;
use warrant_api::trust::TrustFile;
use warrant_envelope::device::sha256;
use warrant_envelope::verify::{Expected, HttpRequest, Verifier};

use args::{hex_bytes, key_value, Hex, Output};
use warrant_api as api;
use warrant_client::Client;

pub use error::Error;

/// warrant: per-operation, policy-bound, device-attested credentials, verified offline.
///
/// Key and authority operations are done by warrantd, reached on its socket (--socket,
/// $WARRANT_SOCKET, else $XDG_RUNTIME_DIR/warrant/agent.sock when it exists, else
/// /run/warrant/agent.sock). `verify`, `inspect`, `evidence` and `yubikey setup` run locally;
/// `demo`, `setup` and `doctor` run the warrantd installed next to this program.
///
/// Exit status: 0 success (or accepted), 1 rejected or refused (the reason on stderr), 2 usage,
/// I/O or daemon error.
#[derive(Debug, Parser)]
#[command(name = "warrant", version)]
pub struct Cli {
    /// Print machine-readable JSON instead of text.
    #[arg(long, global = true)]
    json: bool,
    /// warrantd's socket.
    #[arg(long, global = true, env = "WARRANT_SOCKET")]
    socket: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Walk the whole flow through a warrantd on a temporary socket, with software keys (runs
    /// `warrantd demo`: the warrantd next to this program, else the one on $PATH).
    Demo,
    /// Write a commented warrantd configuration for this machine with the strongest key store
    /// that works here (a TPM, a YubiKey, a PKCS#11 token, else software keys), check it, and
    /// name the next command (runs `warrantd setup`).
    Setup(warrantd::SetupArgs),
    /// Check this machine's warrantd: configuration, socket, key store, directories, clock and
    /// the grants given; one line per check, ok, warn or fail with the fix; exit 0 when nothing
    /// fails, 1 otherwise (runs `warrantd doctor`). In system mode, as root, the key store and
    /// directories are checked as the daemon's user and groups.
    Doctor(warrantd::DoctorArgs),
    /// The authority's operations (warrantd's admin rule must allow you).
    #[command(subcommand)]
    Authority(AuthorityCommand),
    /// Device keys held by warrantd.
    #[command(subcommand)]
    Keys(KeysCommand),
    /// Build an enrollment request answering an authority's challenge.
    Enroll(EnrollArgs),
    /// Sign a warrant for one request under a grant.
    Sign(SignArgs),
    /// Verify a warrant offline against a request (exit 0 accepted, 1 rejected).
    Verify(VerifyArgs),
    /// Run a reverse proxy that verifies each request's warrant (docs/HTTP.md) and forwards
    /// accepted ones to the upstream with the verified identity in Warrant-* headers.
    ///
    /// Writes one JSON line per decision on standard output, and status list changes on
    /// standard error (filtered by $WARRANT_LOG, default info); stops on SIGTERM or SIGINT.
    Gate(gate::GateArgs),
    /// Run a local endpoint that has warrantd sign a warrant for each request (only the body's
    /// digest goes to the daemon) and forwards it to the upstream with the warrant attached.
    ///
    /// Any tool that takes a base URL then sends warrants. Stops on SIGTERM or SIGINT.
    Proxy(proxy::ProxyArgs),
    /// Run a command with a proxy of its own (as `warrant proxy`) on an ephemeral loopback
    /// port, its URL in the command's environment as WARRANT_PROXY_URL (and each --env NAME);
    /// the proxy stops when the command exits. Nothing secret enters the environment.
    ///
    /// Exit status: the command's (128 + the signal number if a signal ended it).
    Exec(proxy::ExecArgs),
    /// Prepare a YubiKey for warrantd (management key, PIN, PUK).
    #[command(subcommand)]
    Yubikey(yubikey::YubikeyCommand),
    /// Verify attestation evidence made by other tools, offline.
    #[command(subcommand)]
    Evidence(evidence::EvidenceCommand),
    /// Decode a grant, warrant, status list or enrollment request (without verifying it).
    Inspect {
        /// The object's file.
        file: PathBuf,
    },
}

#[derive(Debug, Subcommand)]
enum AuthorityCommand {
    /// Create the daemon's authority and its first issuance key.
    Init {
        /// The authority's id (the `iss` of its grants).
        #[arg(long)]
        issuer: String,
        /// The URI of its status list (the `sub` of its status lists).
        #[arg(long)]
        status_uri: String,
        /// Issue with this existing key on the daemon's PKCS#11 token
        /// (`pkcs11:token=...;object=...`) instead of generating one.
        #[arg(long)]
        key_uri: Option<String>,
    },
    /// Show the authority's settings.
    Show,
    /// Issue an enrollment challenge for a device: hex on stdout, or, for a TPM device
    /// (--tpm-identity), a credential file only that TPM can open (--out).
    ///
    /// The principal is the authority's decision: record it here (--principal) or name it when
    /// granting; a grant refuses an enrollment that asks for another principal.
    Challenge {
        /// The principal this challenge is for: its grant goes to this principal only.
        #[arg(long)]
        principal: Option<String>,
        /// Seconds the challenge stays valid.
        #[arg(long, default_value_t = 600)]
        ttl: u64,
        /// The device's TPM identity (from `warrant keys tpm-identity`): its EK certificate must
        /// chain to a root in [authority] tpm_ek_roots.
        #[arg(long, requires = "out")]
        tpm_identity: Option<PathBuf>,
        /// Where to write the TPM credential.
        #[arg(long, requires = "tpm_identity")]
        out: Option<PathBuf>,
    },
    /// Verify an enrollment request and issue a grant for it, for the principal its challenge
    /// recorded or --principal names (the enrollment must ask for the same one).
    Grant(GrantArgs),
    /// Revoke a grant (effective with the next published status list).
    Revoke {
        /// The grant's id (hex), as `warrant inspect` shows it.
        #[arg(long, conflicts_with = "grant", required_unless_present = "grant")]
        grant_id: Option<String>,
        /// The grant file.
        #[arg(long)]
        grant: Option<PathBuf>,
    },
    /// Sign and write the next status list.
    PublishStatus {
        /// Seconds verifiers may rely on the list (its `exp`, counted from now).
        #[arg(long, default_value_t = 3600)]
        valid_for: u64,
        /// Seconds after which verifiers should fetch a newer list (its `ttl`; at most
        /// --valid-for) [default: 300, or --valid-for if shorter].
        #[arg(long)]
        ttl: Option<u64>,
        #[command(flatten)]
        to: StatusOutput,
    },
    /// Write the latest published status list again (e.g. after a lost copy), with --out-dir
    /// its history too.
    StatusList {
        #[command(flatten)]
        to: StatusOutput,
    },
    /// Write the trust file verifiers need (authority id and all issuance keys).
    Trust {
        /// Where to write it.
        #[arg(long)]
        out: PathBuf,
    },
    /// Create a new issuance key for new grants; earlier keys stay trusted.
    RotateKey,
}

/// Where a status list is written.
#[derive(Debug, Args)]
struct StatusOutput {
    /// A file to write it to (replaced atomically).
    #[arg(long, required_unless_present = "out_dir")]
    out: Option<PathBuf>,
    /// A directory a web server serves: the list goes at DIR/<the path of its URI> and the
    /// lists before it at DIR/<path>.history/<sequence>, for verifiers that missed some to walk
    /// the chain; each file replaced atomically, the history first.
    #[arg(long)]
    out_dir: Option<PathBuf>,
    /// How many earlier lists --out-dir keeps in the history (older ones are removed).
    #[arg(long, default_value_t = publish::DEFAULT_KEEP)]
    keep: u64,
}

#[derive(Debug, Args)]
struct GrantArgs {
    /// The enrollment request file.
    #[arg(long)]
    enrollment: PathBuf,
    /// The principal to grant. Required when the challenge was made without --principal; else
    /// it must equal the challenge's. The enrollment must ask for this principal.
    #[arg(long)]
    principal: Option<String>,
    /// The Cedar policy file for warrants under the grant.
    #[arg(long)]
    policy: PathBuf,
    /// A group of the principal (repeatable).
    #[arg(long = "group")]
    groups: Vec<String>,
    /// An attribute of the principal, NAME=VALUE (repeatable; true/false and integers are typed).
    #[arg(long = "attr", value_parser = key_value)]
    attributes: Vec<(String, String)>,
    /// Grant lifetime in seconds.
    #[arg(long, default_value_t = 7 * 24 * 3600)]
    valid_for: u64,
    /// Longest lifetime of a warrant under the grant, in seconds.
    #[arg(long, default_value_t = 300)]
    max_warrant_ttl: u64,
    /// Grant a device whose key is a software key (no hardware protection).
    #[arg(long)]
    allow_software: bool,
    /// Grant a device whose evidence its key store reports about itself, unsigned (PKCS#11):
    /// a software key can make the same claims.
    #[arg(long)]
    allow_self_reported: bool,
    /// Where to write the grant.
    #[arg(long)]
    out: PathBuf,
}

#[derive(Debug, Subcommand)]
enum KeysCommand {
    /// Create a P-256 device key.
    Create {
        /// The key's name.
        name: String,
    },
    /// List the keys.
    List,
    /// Show one key.
    Show {
        /// The key's name.
        name: String,
    },
    /// Use a device key that exists on the daemon's PKCS#11 token, named by its URI.
    Existing {
        /// `pkcs11:token=...;object=...` (the object label becomes the key's name).
        uri: String,
    },
    /// Delete a device key (its grants become useless).
    Delete {
        /// The key's name.
        name: String,
    },
    /// Write the daemon's TPM identity (EK certificate and attestation key) for the authority's
    /// `challenge --tpm-identity`.
    TpmIdentity {
        /// Where to write it (JSON).
        #[arg(long)]
        out: PathBuf,
    },
}

#[derive(Debug, Args)]
struct EnrollArgs {
    /// The device key.
    #[arg(long)]
    key: String,
    /// The principal to enroll as (the authority grants only the one it decided on).
    #[arg(long)]
    principal: String,
    /// The authority's challenge (hex).
    #[arg(long, required_unless_present = "tpm_credential", conflicts_with = "tpm_credential")]
    challenge: Option<String>,
    /// The authority's challenge as a TPM credential file (from `challenge --tpm-identity`).
    #[arg(long)]
    tpm_credential: Option<PathBuf>,
    /// Where to write the request.
    #[arg(long)]
    out: PathBuf,
}

#[derive(Debug, Args)]
struct SignArgs {
    /// The device key.
    #[arg(long)]
    key: String,
    /// The grant file.
    #[arg(long)]
    grant: PathBuf,
    /// The verifier the warrant is for.
    #[arg(long)]
    audience: String,
    /// Cedar action id.
    #[arg(long)]
    action: String,
    /// Cedar resource id.
    #[arg(long)]
    resource: String,
    #[command(flatten)]
    request: RequestArgs,
    /// A context claim NAME=VALUE (repeatable).
    #[arg(long = "claim", value_parser = key_value)]
    claims: Vec<(String, String)>,
    /// The verifier's nonce (hex), if it issued one.
    #[arg(long)]
    nonce: Option<String>,
    /// The newest status list of the grant's authority: warrantd remembers it and binds
    /// cached TPM quotes to it, so verifiers holding it can tell the quote is fresh.
    #[arg(long)]
    status_list: Option<PathBuf>,
    /// Warrant lifetime in seconds.
    #[arg(long, default_value_t = 60)]
    ttl: u64,
    /// Where to write the warrant.
    #[arg(long, required_unless_present = "header")]
    out: Option<PathBuf>,
    /// Print the request's header line, `Authorization: Warrant <base64url>` (docs/HTTP.md),
    /// on standard output (with --json: {"authorization": ...}).
    #[arg(long)]
    header: bool,
}

/// The HTTP request a warrant is bound to.
#[derive(Debug, Args)]
struct RequestArgs {
    /// HTTP method.
    #[arg(long)]
    method: String,
    /// Target URI in absolute form (https://host/path?query), exactly as the service
    /// reconstructs it; dot-segments, %2F or %2E in the path, a fragment or userinfo are refused.
    #[arg(long)]
    target: String,
    /// File with the request body (none: empty body). Only its digest goes to the daemon.
    #[arg(long)]
    body: Option<PathBuf>,
}

#[derive(Debug, Args)]
struct VerifyArgs {
    /// The warrant file.
    warrant: PathBuf,
    /// A trust file from `warrant authority trust` (repeatable).
    #[arg(long = "trust", required = true)]
    trust: Vec<PathBuf>,
    /// This verifier's audience.
    #[arg(long)]
    audience: String,
    /// The latest status list file (repeatable, oldest first).
    #[arg(long = "status")]
    status: Vec<PathBuf>,
    /// A status list's URL (https://...; http:// only to a loopback address), fetched once
    /// (repeatable; after the --status files).
    #[arg(long = "status-url")]
    status_url: Vec<String>,
    /// PEM CA certificates an https status host's certificate must chain to (default: the
    /// system's roots).
    #[arg(long, requires = "status_url")]
    status_ca: Option<PathBuf>,
    #[command(flatten)]
    request: RequestArgs,
    /// The action the request performs: a warrant for another action is refused
    /// (action_mismatch). Required unless --any-operation.
    #[arg(long, required_unless_present = "any_operation", conflicts_with = "any_operation")]
    action: Option<String>,
    /// The resource the request acts on: a warrant for another is refused (resource_mismatch).
    /// Required unless --any-operation.
    #[arg(long, required_unless_present = "any_operation", conflicts_with = "any_operation")]
    resource: Option<String>,
    /// Accept whatever action and resource the warrant names (shown in the result): for
    /// inspecting a stored warrant, never for deciding whether to perform an operation.
    #[arg(long)]
    any_operation: bool,
    /// The nonce this verifier issued (hex).
    #[arg(long, value_parser = hex_bytes)]
    nonce: Option<Hex>,
    /// A local Cedar policy file that must also permit.
    #[arg(long)]
    policy: Option<PathBuf>,
    /// Accept devices with software keys.
    #[arg(long)]
    allow_software: bool,
    /// Accept devices whose evidence is self-reported by their key store (PKCS#11).
    #[arg(long)]
    allow_self_reported: bool,
    /// Tolerated clock skew, seconds.
    #[arg(long, default_value_t = warrant_envelope::verify::DEFAULT_CLOCK_SKEW_SECS)]
    skew: u64,
}

/// Runs the CLI with the process arguments.
pub fn run() -> ExitCode {
    let cli = Cli::parse();
    let out = Output { json: cli.json };
    match dispatch(cli.command, cli.socket.as_deref(), out) {
        Ok(code) => code,
        Err(e) => {
            if out.json {
                println!("{}", json!({"ok": false, "error": e.code(), "message": e.to_string()}));
            } else {
                eprintln!("warrant: {e}");
            }
            ExitCode::from(e.exit_code())
        }
    }
}

fn dispatch(command: Command, socket: Option<&Path>, out: Output) -> Result<ExitCode, Error> {
    let connect = || Client::new(&warrant_client::socket_path(socket));
    match command {
        Command::Demo => return warrantd::demo(out),
        Command::Setup(args) => return warrantd::setup(args, out),
        Command::Doctor(args) => return warrantd::doctor(args, socket, out),
        Command::Authority(cmd) => authority(&mut connect()?, cmd, out)?,
        Command::Keys(cmd) => keys(&mut connect()?, cmd, out)?,
        Command::Enroll(args) => {
            let tpm_credential = match &args.tpm_credential {
                Some(path) => Some(files::read_json::<api::TpmCredential>(path)?),
                None => None,
            };
            let request = api::EnrollRequest {
                key: args.key,
                principal: args.principal,
                challenge: args.challenge,
                tpm_credential,
            };
            let answer: api::EnrollResponse = connect()?.post("/enroll", &request)?;
            files::write_atomic(&args.out, &answer.enrollment, 0o644)?;
            out.done(
                &format!("enrollment request written to {}", args.out.display()),
                json!({"out": args.out}),
            );
        }
        Command::Sign(args) => {
            let body = read_body(&args.request)?;
            let request = api::SignRequest {
                key: args.key,
                grant: files::read(&args.grant)?,
                audience: args.audience,
                action: args.action,
                resource: args.resource,
                request: api::BoundRequest {
                    method: args.request.method,
                    target: args.request.target,
                    body_sha256: hex::encode(sha256(&body)),
                },
                context: args::context(args.claims),
                nonce: args.nonce,
                ttl: args.ttl,
                status_list: args.status_list.as_deref().map(files::read).transpose()?,
            };
            let answer: api::SignResponse = connect()?.post("/sign", &request)?;
            if let Some(path) = &args.out {
                files::write_atomic(path, &answer.warrant, 0o644)?;
            }
            let authorization = warrant_http::authorization_value(&answer.warrant);
            if args.header {
                let size = answer.warrant.len();
                out.done(
                    &format!("Authorization: {authorization}"),
                    json!({"authorization": authorization, "out": args.out, "size": size, "warrant_id": answer.warrant_id}),
                );
            } else if let Some(path) = &args.out {
                out.done(
                    &format!(
                        "warrant {} ({} bytes) written to {}",
                        answer.warrant_id,
                        answer.warrant.len(),
                        path.display()
                    ),
                    json!({"out": path, "size": answer.warrant.len(), "warrant_id": answer.warrant_id}),
                );
            }
        }
        Command::Verify(args) => verify(args, out)?,
        Command::Gate(args) => gate::run(args)?,
        Command::Proxy(args) => proxy::run_proxy(args, &warrant_client::socket_path(socket))?,
        Command::Exec(args) => return proxy::run_exec(args, &warrant_client::socket_path(socket)),
        Command::Evidence(cmd) => evidence::run(cmd, out)?,
        Command::Yubikey(cmd) => yubikey::run(cmd, out)?,
        Command::Inspect { file } => {
            let inspected = warrant_envelope::inspect(&files::read(&file)?)?;
            out.print(&view::inspected(&inspected));
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn authority(client: &mut Client, cmd: AuthorityCommand, out: Output) -> Result<(), Error> {
    match cmd {
        AuthorityCommand::Init { issuer, status_uri, key_uri } => {
            let settings: api::AuthoritySettings = client
                .post("/authority", &api::InitAuthority { issuer: issuer.clone(), status_uri, key_uri })?;
            out.done(
                &format!("authority {issuer:?} created with issuance key {}", settings.active_key),
                json!({"issuer": issuer, "active_key": settings.active_key}),
            );
        }
        AuthorityCommand::Show => {
            let settings: api::AuthoritySettings = client.get("/authority")?;
            out.print(&serde_json::to_value(settings).unwrap_or_default());
        }
        AuthorityCommand::Challenge { principal, ttl, tpm_identity, out: file } => {
            let tpm_identity = match &tpm_identity {
                Some(path) => Some(files::read_json::<api::TpmIdentity>(path)?),
                None => None,
            };
            let answer: api::ChallengeResponse = client
                .post("/authority/challenges", &api::ChallengeRequest { ttl, principal, tpm_identity })?;
            let principal = answer.principal;
            match (answer.challenge, answer.tpm_credential, file) {
                (Some(challenge), None, None) => {
                    out.done(&challenge, json!({"challenge": challenge, "principal": principal, "ttl": ttl}))
                }
                (None, Some(credential), Some(file)) => {
                    files::write_json(&file, &credential)?;
                    out.done(
                        &format!("TPM credential challenge written to {}", file.display()),
                        json!({"out": file, "principal": principal, "ttl": ttl}),
                    );
                }
                _ => {
                    return Err(Error::UnexpectedAnswer(
                        "the challenge is neither hex nor the TPM credential asked for".into(),
                    ))
                }
            }
        }
        AuthorityCommand::Grant(args) => {
            let request = api::GrantRequest {
                enrollment: files::read(&args.enrollment)?,
                principal: args.principal,
                policy: files::read_text(&args.policy)?,
                groups: args.groups,
                attributes: args::context(args.attributes),
                valid_for: args.valid_for,
                max_warrant_ttl: args.max_warrant_ttl,
                allow_software: args.allow_software,
                allow_self_reported: args.allow_self_reported,
            };
            let answer: api::GrantResponse = client.post("/authority/grants", &request)?;
            files::write_atomic(&args.out, &answer.grant, 0o644)?;
            out.done(
                &format!(
                    "grant {} for {:?} written to {} ({} bytes)",
                    answer.grant_id,
                    answer.principal,
                    args.out.display(),
                    answer.grant.len()
                ),
                json!({"grant_id": answer.grant_id, "principal": answer.principal, "out": args.out}),
            );
        }
        AuthorityCommand::Revoke { grant_id, grant } => {
            let grant_id = match (grant_id, grant) {
                (Some(id), _) => id,
                (None, Some(file)) => hex::encode(grant_id_of(&file)?),
                (None, None) => return Err(Error::Usage("name the grant with --grant-id or --grant".into())),
            };
            let revoked: api::RevokeResponse =
                client.post("/authority/revocations", &api::RevokeRequest { grant_id })?;
            out.done(
                &format!(
                    "grant {} of {:?} revoked (status index {}); publish a status list to make it effective",
                    revoked.grant_id, revoked.principal, revoked.status_index
                ),
                json!({"grant_id": revoked.grant_id, "status_index": revoked.status_index}),
            );
        }
        AuthorityCommand::PublishStatus { valid_for, ttl, to } => {
            let list: api::StatusListResponse =
                client.post("/authority/status-lists", &api::PublishRequest { valid_for, ttl })?;
            write_status_list(client, &list, &to, out)?;
        }
        AuthorityCommand::StatusList { to } => {
            let list: api::StatusListResponse = client.get("/authority/status-lists/latest")?;
            write_status_list(client, &list, &to, out)?;
        }
        AuthorityCommand::Trust { out: path } => {
            let trust: TrustFile = client.get("/authority/trust")?;
            // What the daemon sent is checked before verifiers are handed it: an invalid trust
            // file is never written, and a valid one replaces the old one in one step.
            let trusted =
                trust.to_authority().map_err(|e| Error::UnexpectedAnswer(format!("the trust file: {e}")))?;
            let text =
                trust.to_text().map_err(|e| Error::UnexpectedAnswer(format!("the trust file: {e}")))?;
            files::write_atomic(&path, text.as_bytes(), 0o644)?;
            out.done(
                &format!(
                    "trust file for {:?} ({} keys) written to {}",
                    trusted.issuer,
                    trusted.keys.len(),
                    path.display()
                ),
                json!({"issuer": trusted.issuer, "keys": trusted.keys.len(), "out": path}),
            );
        }
        AuthorityCommand::RotateKey => {
            let answer: api::RotateResponse = client.post("/authority/keys", &json!({}))?;
            out.done(
                &format!("new issuance key {:?} is active; re-export the trust file", answer.active_key),
                json!({"active_key": answer.active_key}),
            );
        }
    }
    Ok(())
}

fn write_status_list(
    client: &mut Client,
    list: &api::StatusListResponse,
    to: &StatusOutput,
    out: Output,
) -> Result<(), Error> {
    let (_, sequence) = publish::uri_and_sequence(&list.list)?;
    if sequence != list.sequence {
        return Err(Error::UnexpectedAnswer(format!(
            "status list {} is numbered {sequence} inside",
            list.sequence
        )));
    }
    let mut said = Vec::new();
    let mut result = json!({"sequence": list.sequence, "size": list.list.len()});
    if let Some(path) = &to.out {
        publish::replace_served(path, &list.list)?;
        said.push(format!("written to {}", path.display()));
        result["out"] = json!(path);
    }
    if let Some(dir) = &to.out_dir {
        let earlier = |seq: u64| {
            let entry: api::StatusListResponse = client.get(&format!("/authority/status-lists/{seq}"))?;
            match publish::uri_and_sequence(&entry.list)? {
                (_, inside) if inside == seq && entry.sequence == seq => Ok(entry.list),
                (_, inside) => Err(Error::UnexpectedAnswer(format!(
                    "status list {seq} was asked for, list {inside} came"
                ))),
            }
        };
        let published = publish::publish(dir, &list.list, to.keep, earlier)?;
        said.push(format!(
            "published at {} (history entries written: {:?}, removed: {:?})",
            published.list.display(),
            published.history_written,
            published.history_removed
        ));
        result["published"] = json!(published.list);
        result["history_written"] = json!(published.history_written);
        result["history_removed"] = json!(published.history_removed);
    }
    out.done(
        &format!("status list {} ({} bytes) {}", list.sequence, list.list.len(), said.join("; ")),
        result,
    );
    Ok(())
}

fn keys(client: &mut Client, cmd: KeysCommand, out: Output) -> Result<(), Error> {
    match cmd {
        KeysCommand::Create { name } => {
            let key: api::Key = client.post("/keys", &api::CreateKey { name })?;
            out.print(&view::key(&key));
        }
        KeysCommand::List => {
            let list: api::KeyList = client.get("/keys")?;
            out.print(&serde_json::Value::Array(list.keys.iter().map(view::key).collect()));
        }
        KeysCommand::Show { name } => {
            let key: api::Key = client.get(&format!("/keys/{name}"))?;
            out.print(&view::key(&key));
        }
        KeysCommand::Existing { uri } => {
            let key: api::Key = client.post("/keys/existing", &api::ExistingKey { uri })?;
            out.print(&view::key(&key));
        }
        KeysCommand::Delete { name } => {
            let deleted: api::Deleted = client.delete(&format!("/keys/{name}"))?;
            out.done(&format!("key {:?} deleted", deleted.name), json!({"deleted": deleted.name}));
        }
        KeysCommand::TpmIdentity { out: file } => {
            let identity: api::TpmIdentity = client.get("/tpm/identity")?;
            files::write_json(&file, &identity)?;
            out.done(&format!("TPM identity written to {}", file.display()), json!({"out": file}));
        }
    }
    Ok(())
}

fn verify(args: VerifyArgs, out: Output) -> Result<(), Error> {
    let mut builder = Verifier::builder(&args.audience)
        .clock_skew(args.skew)
        .allow_software_evidence(args.allow_software)
        .allow_self_reported_evidence(args.allow_self_reported);
    for path in &args.trust {
        builder = builder.trust(files::read_trust(path)?);
    }
    if let Some(path) = &args.policy {
        builder = builder.local_policy(files::read_text(path)?);
    }
    let verifier = builder.build()?;
    for path in &args.status {
        verifier.install_status_list(&files::read(path)?)?;
    }
    if !args.status_url.is_empty() {
        let options = warrant_http::FetchOptions { ca_file: args.status_ca.clone(), ..Default::default() };
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| Error::Usage(format!("cannot start the runtime: {e}")))?;
        for url in &args.status_url {
            let source = warrant_http::HttpStatusSource::new(url, &options)?;
            runtime.block_on(warrant_http::refresh(&verifier, &source))?;
        }
    }
    let body = read_body(&args.request)?;
    let request = HttpRequest { method: &args.request.method, target: &args.request.target, body: &body };
    let warrant = files::read(&args.warrant)?;
    let nonce = args.nonce.as_ref().map(|n| n.0.as_slice());
    let verified = match (&args.action, &args.resource) {
        (Some(action), Some(resource)) => {
            verifier.verify(&warrant, &Expected { action, resource }, &request, nonce)?
        }
        // clap admits neither only with --any-operation.
        _ => verifier.verify_without_operation_check(&warrant, &request, nonce)?,
    };
    out.print(&view::verified(&verified));
    Ok(())
}

/// The id of the grant in `path` (unverified: the authority looks it up in its own records).
fn grant_id_of(path: &Path) -> Result<[u8; 16], Error> {
    match warrant_envelope::inspect(&files::read(path)?)?.claims {
        warrant_envelope::Claims::Grant(claims) => Ok(claims.id),
        _ => Err(Error::BadFile { path: path.to_owned(), reason: "not a grant".into() }),
    }
}

fn read_body(request: &RequestArgs) -> Result<Vec<u8>, Error> {
    request.body.as_deref().map(files::read).transpose().map(Option::unwrap_or_default)
}
