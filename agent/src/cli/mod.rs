//! The `warrant` command line: argument definitions and dispatch.

mod args;
mod demo;
mod view;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};
use serde_json::json;
use warrant_envelope::{HttpRequest, Verifier};
use warrant_hsm_backends::soft::SoftKeyStore;
use warrant_hsm_backends::KeyStore;

use crate::authority::{Authority, GrantOptions};
use crate::device::{self, WarrantRequest};
use crate::key_signer::KeySigner;
use crate::{files, trust_file, Error};
use args::{hex_bytes, key_value, passphrase, Hex, Output};

/// warrant: per-operation, policy-bound, device-attested credentials, verified offline.
///
/// Exit status: 0 success (or accepted), 1 rejected (the reason on stderr), 2 usage or I/O error.
#[derive(Debug, Parser)]
#[command(name = "warrant", version)]
pub struct Cli {
    /// Print machine-readable JSON instead of text.
    #[arg(long, global = true)]
    json: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Walk the whole flow in a temporary directory, on the software key store.
    Demo,
    /// The authority's offline operations.
    #[command(subcommand)]
    Authority(AuthorityCommand),
    /// Device keys in a key store.
    #[command(subcommand)]
    Keys(KeysCommand),
    /// Build an enrollment request answering an authority's challenge.
    Enroll(EnrollArgs),
    /// Sign a warrant for one request under a grant.
    Sign(SignArgs),
    /// Verify a warrant offline against a request (exit 0 accepted, 1 rejected).
    Verify(VerifyArgs),
    /// Decode a grant, warrant, status list or enrollment request (without verifying it).
    Inspect {
        /// The object's file.
        file: PathBuf,
    },
}

/// Where an authority lives and how its keys are unsealed.
#[derive(Debug, Args)]
struct AuthorityDir {
    /// The authority's directory.
    #[arg(long)]
    dir: PathBuf,
    /// File holding the passphrase that seals the issuance keys (else $WARRANT_PASSPHRASE, else none).
    #[arg(long)]
    passphrase_file: Option<PathBuf>,
}

#[derive(Debug, Subcommand)]
enum AuthorityCommand {
    /// Create an authority and its first issuance key.
    Init {
        #[command(flatten)]
        at: AuthorityDir,
        /// The authority's id (the `iss` of its grants).
        #[arg(long)]
        issuer: String,
        /// The URI of its status list (the `sub` of its status lists).
        #[arg(long)]
        status_uri: String,
    },
    /// Issue an enrollment challenge (hex) for a device.
    Challenge {
        #[command(flatten)]
        at: AuthorityDir,
        /// Seconds the challenge stays valid.
        #[arg(long, default_value_t = 600)]
        ttl: u64,
    },
    /// Verify an enrollment request and issue a grant for it.
    Grant(GrantArgs),
    /// Revoke a grant (effective with the next published status list).
    Revoke {
        #[command(flatten)]
        at: AuthorityDir,
        /// The grant's id (hex), as `warrant inspect` shows it.
        #[arg(long, conflicts_with = "grant", required_unless_present = "grant")]
        grant_id: Option<String>,
        /// The grant file.
        #[arg(long)]
        grant: Option<PathBuf>,
    },
    /// Sign and write the next status list.
    PublishStatus {
        #[command(flatten)]
        at: AuthorityDir,
        /// Seconds verifiers may rely on the list.
        #[arg(long, default_value_t = 3600)]
        ttl: u64,
        /// Where to write it.
        #[arg(long)]
        out: PathBuf,
    },
    /// Write the trust file verifiers need (authority id and all issuance keys).
    Trust {
        #[command(flatten)]
        at: AuthorityDir,
        /// Where to write it.
        #[arg(long)]
        out: PathBuf,
    },
    /// Create a new issuance key for new grants; earlier keys stay trusted.
    RotateKey {
        #[command(flatten)]
        at: AuthorityDir,
    },
}

#[derive(Debug, Args)]
struct GrantArgs {
    #[command(flatten)]
    at: AuthorityDir,
    /// The enrollment request file.
    #[arg(long)]
    enrollment: PathBuf,
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
    /// Where to write the grant.
    #[arg(long)]
    out: PathBuf,
}

/// Where device keys live.
#[derive(Debug, Args)]
struct StoreArgs {
    /// The software key store directory.
    #[arg(long)]
    store: PathBuf,
    /// File holding the passphrase that seals the keys (else $WARRANT_PASSPHRASE, else none).
    #[arg(long)]
    passphrase_file: Option<PathBuf>,
}

#[derive(Debug, Subcommand)]
enum KeysCommand {
    /// Create a P-256 key.
    Create {
        #[command(flatten)]
        at: StoreArgs,
        /// The key's name.
        name: String,
    },
    /// List the keys.
    List {
        #[command(flatten)]
        at: StoreArgs,
    },
}

#[derive(Debug, Args)]
struct EnrollArgs {
    #[command(flatten)]
    at: StoreArgs,
    /// The device key.
    #[arg(long)]
    key: String,
    /// The principal to enroll as.
    #[arg(long)]
    principal: String,
    /// The authority's challenge (hex).
    #[arg(long, value_parser = hex_bytes)]
    challenge: Hex,
    /// Where to write the request.
    #[arg(long)]
    out: PathBuf,
}

#[derive(Debug, Args)]
struct SignArgs {
    #[command(flatten)]
    at: StoreArgs,
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
    #[arg(long, value_parser = hex_bytes)]
    nonce: Option<Hex>,
    /// Warrant lifetime in seconds.
    #[arg(long, default_value_t = 60)]
    ttl: u64,
    /// Where to write the warrant.
    #[arg(long)]
    out: PathBuf,
}

/// The HTTP request a warrant is bound to.
#[derive(Debug, Args)]
struct RequestArgs {
    /// HTTP method.
    #[arg(long)]
    method: String,
    /// Target URI, exactly as the verifier will see it.
    #[arg(long)]
    target: String,
    /// File with the request body (none: empty body).
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
    #[command(flatten)]
    request: RequestArgs,
    /// The nonce this verifier issued (hex).
    #[arg(long, value_parser = hex_bytes)]
    nonce: Option<Hex>,
    /// A local Cedar policy file that must also permit.
    #[arg(long)]
    policy: Option<PathBuf>,
    /// Accept devices with software keys.
    #[arg(long)]
    allow_software: bool,
    /// Tolerated clock skew, seconds.
    #[arg(long, default_value_t = warrant_envelope::DEFAULT_CLOCK_SKEW_SECS)]
    skew: u64,
}

/// Runs the CLI with the process arguments.
pub fn run() -> ExitCode {
    let cli = Cli::parse();
    let out = Output { json: cli.json };
    match dispatch(cli.command, out) {
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

fn dispatch(command: Command, out: Output) -> Result<ExitCode, Error> {
    match command {
        Command::Demo => return demo::run(out),
        Command::Authority(cmd) => authority(cmd, out)?,
        Command::Keys(cmd) => keys(cmd, out)?,
        Command::Enroll(args) => {
            let store = open_store(&args.at)?;
            let key = KeySigner::new(&store, warrant_hsm_backends::KeyName::new(&args.key)?)?;
            let challenge = args
                .challenge
                .0
                .try_into()
                .map_err(|_| Error::Usage("the challenge must be 32 bytes (64 hex digits)".into()))?;
            let request = device::enroll(&key, &args.principal, challenge)?;
            files::write_atomic(&args.out, &request, 0o644)?;
            out.done(
                &format!("enrollment request written to {}", args.out.display()),
                json!({"out": args.out}),
            );
        }
        Command::Sign(args) => {
            let store = open_store(&args.at)?;
            let key = KeySigner::new(&store, warrant_hsm_backends::KeyName::new(&args.key)?)?;
            let grant = files::read(&args.grant)?;
            let body = read_body(&args.request)?;
            let warrant = device::sign_warrant(
                &key,
                &WarrantRequest {
                    grant: &grant,
                    audience: &args.audience,
                    action: &args.action,
                    resource: &args.resource,
                    request: HttpRequest {
                        method: &args.request.method,
                        target: &args.request.target,
                        body: &body,
                    },
                    context: args::attributes(args.claims),
                    nonce: args.nonce.map(|n| n.0),
                    lifetime: args.ttl,
                },
            )?;
            files::write_atomic(&args.out, &warrant, 0o644)?;
            out.done(
                &format!("warrant ({} bytes) written to {}", warrant.len(), args.out.display()),
                json!({"out": args.out, "size": warrant.len()}),
            );
        }
        Command::Verify(args) => verify(args, out)?,
        Command::Inspect { file } => {
            let inspected = warrant_envelope::inspect(&files::read(&file)?)?;
            out.print(&view::inspected(&inspected));
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn authority(cmd: AuthorityCommand, out: Output) -> Result<(), Error> {
    match cmd {
        AuthorityCommand::Init { at, issuer, status_uri } => {
            let authority =
                Authority::init(&at.dir, &issuer, &status_uri, passphrase(at.passphrase_file.as_deref())?)?;
            out.done(
                &format!("authority {issuer:?} created in {}", authority.dir().display()),
                json!({"issuer": issuer, "dir": authority.dir()}),
            );
        }
        AuthorityCommand::Challenge { at, ttl } => {
            let challenge = open_authority(&at)?.challenge(ttl)?;
            out.done(&hex::encode(challenge), json!({"challenge": hex::encode(challenge), "ttl": ttl}));
        }
        AuthorityCommand::Grant(args) => {
            let options = GrantOptions {
                policy: files::read_text(&args.policy)?,
                groups: args.groups,
                attributes: args::attributes(args.attributes),
                valid_for: args.valid_for,
                max_warrant_lifetime: args.max_warrant_ttl,
                allow_software: args.allow_software,
            };
            let (grant, claims) =
                open_authority(&args.at)?.grant(&files::read(&args.enrollment)?, &options)?;
            files::write_atomic(&args.out, &grant, 0o644)?;
            out.done(
                &format!(
                    "grant {} for {:?} written to {} ({} bytes)",
                    hex::encode(claims.id),
                    claims.principal,
                    args.out.display(),
                    grant.len()
                ),
                json!({"grant_id": hex::encode(claims.id), "principal": claims.principal, "out": args.out}),
            );
        }
        AuthorityCommand::Revoke { at, grant_id, grant } => {
            let id = match (grant_id, grant) {
                (Some(id), _) => id,
                (None, Some(file)) => hex::encode(device::grant_claims(&files::read(&file)?)?.id),
                (None, None) => return Err(Error::Usage("name the grant with --grant-id or --grant".into())),
            };
            let revoked = open_authority(&at)?.revoke(&id)?;
            out.done(
                &format!(
                    "grant {} of {:?} revoked (status index {}); publish a status list to make it effective",
                    revoked.id, revoked.principal, revoked.status_index
                ),
                json!({"grant_id": revoked.id, "status_index": revoked.status_index}),
            );
        }
        AuthorityCommand::PublishStatus { at, ttl, out: path } => {
            let (list, claims) = open_authority(&at)?.publish_status(ttl)?;
            files::write_atomic(&path, &list, 0o644)?;
            out.done(
                &format!(
                    "status list {} written to {} ({} bytes)",
                    claims.sequence,
                    path.display(),
                    list.len()
                ),
                json!({"sequence": claims.sequence, "out": path, "size": list.len()}),
            );
        }
        AuthorityCommand::Trust { at, out: path } => {
            let trusted = open_authority(&at)?.trusted()?;
            files::write_atomic(&path, trust_file::to_json(&trusted).as_bytes(), 0o644)?;
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
        AuthorityCommand::RotateKey { at } => {
            let name = open_authority(&at)?.rotate_key()?;
            out.done(
                &format!("new issuance key {name:?} is active; re-export the trust file"),
                json!({"active_key": name}),
            );
        }
    }
    Ok(())
}

fn keys(cmd: KeysCommand, out: Output) -> Result<(), Error> {
    match cmd {
        KeysCommand::Create { at, name } => {
            let info = open_store(&at)?.create(&warrant_hsm_backends::KeyName::new(&name)?)?;
            out.print(&view::key(&info));
        }
        KeysCommand::List { at } => {
            let keys = open_store(&at)?.list()?;
            out.print(&serde_json::Value::Array(keys.iter().map(view::key).collect()));
        }
    }
    Ok(())
}

fn verify(args: VerifyArgs, out: Output) -> Result<(), Error> {
    let mut builder =
        Verifier::builder(&args.audience).clock_skew(args.skew).allow_software_evidence(args.allow_software);
    for path in &args.trust {
        builder = builder.trust(trust_file::read(path)?);
    }
    if let Some(path) = &args.policy {
        builder = builder.local_policy(files::read_text(path)?);
    }
    let verifier = builder.build()?;
    for path in &args.status {
        verifier.install_status_list(&files::read(path)?)?;
    }
    let body = read_body(&args.request)?;
    let request = HttpRequest { method: &args.request.method, target: &args.request.target, body: &body };
    let verified = verifier.verify(
        &files::read(&args.warrant)?,
        &request,
        args.nonce.as_ref().map(|n| n.0.as_slice()),
    )?;
    out.print(&view::verified(&verified));
    Ok(())
}

fn read_body(request: &RequestArgs) -> Result<Vec<u8>, Error> {
    request.body.as_deref().map(files::read).transpose().map(Option::unwrap_or_default)
}

fn open_store(at: &StoreArgs) -> Result<SoftKeyStore, Error> {
    let store = SoftKeyStore::open(&at.store)?;
    Ok(match passphrase(at.passphrase_file.as_deref())? {
        Some(p) => store.with_passphrase(p),
        None => store,
    })
}

fn open_authority(at: &AuthorityDir) -> Result<Authority, Error> {
    Authority::open(&at.dir, passphrase(at.passphrase_file.as_deref())?)
}
