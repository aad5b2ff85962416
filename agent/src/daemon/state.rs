//! What the daemon holds while it runs: its configuration (replaced on SIGHUP), the state
//! database, the keys and the audit log.

use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard, RwLock};

use rusqlite::Connection;
use warrant_hsm_backends::Reconciled;

use super::audit::{AuditLog, Decision, Entry};
use super::config::{Config, Limits};
use super::error::ApiError;
use super::operation::{Permit, Progress};
use super::peer::Caller;
use super::rules::{Request, RuleSet};
use crate::keyring::Keyring;
use crate::newest_lists::NewestStatusLists;
use crate::{database, files, locks, Error};

/// The daemon's shared state.
pub struct Daemon {
    settings: RwLock<Arc<Live>>,
    db: Mutex<Connection>,
    /// The keys.
    pub keys: Keyring,
    /// The audit log.
    pub audit: AuditLog,
    /// The newest status list given per (issuer, URI), which cached TPM quotes are bound to.
    pub status_lists: NewestStatusLists,
    // Held while the daemon runs: a second daemon on the same state directory refuses.
    _lock: std::fs::File,
}

/// The part of the configuration a reload replaces.
pub struct Live {
    /// The whole configuration as loaded.
    pub config: Config,
    /// Its rules, with their rate-limit buckets.
    pub rules: RuleSet,
}

impl Daemon {
    /// Locks the state directory, opens the database, the key store and the audit log.
    pub fn open(config: Config) -> Result<Self, Error> {
        files::create_private_dir(&config.state_dir)?;
        let lock = lock_state_dir(&config.state_dir)?;
        let conn = database::open(&config.state_dir)?;
        let store = warrant_hsm_backends::open(&config.keystore, &config.state_dir)?;
        let keys = Keyring::open(store, &conn)?;
        let audit = AuditLog::open(&config.audit)?;
        reconcile_keys(&keys, &audit)?;
        let rules = config.rules.clone();
        Ok(Self {
            settings: RwLock::new(Arc::new(Live { config, rules })),
            db: Mutex::new(conn),
            keys,
            audit,
            status_lists: NewestStatusLists::default(),
            _lock: lock,
        })
    }

    /// The configuration in force.
    pub fn live(&self) -> Arc<Live> {
        locks::read(&self.settings).clone()
    }

    /// The limits in force.
    pub fn limits(&self) -> Limits {
        self.live().config.limits
    }

    /// Applies a reloaded configuration. Settings that need a restart (socket, state directory,
    /// key store, audit destinations) keep their running values; the returned list names them.
    pub fn reload(&self, new: Config) -> Vec<&'static str> {
        let old = self.live();
        let mut not_applied = Vec::new();
        let c = &old.config;
        if new.socket != c.socket || new.socket_gid != c.socket_gid || new.mode != c.mode {
            not_applied.push("socket");
        }
        if new.state_dir != c.state_dir {
            not_applied.push("state_dir");
        }
        if new.keystore != c.keystore {
            not_applied.push("keystore");
        }
        if new.audit != c.audit {
            not_applied.push("audit");
        }
        if new.device != c.device {
            not_applied.push("device");
        }
        let config = Config {
            socket: c.socket.clone(),
            socket_gid: c.socket_gid,
            mode: c.mode,
            state_dir: c.state_dir.clone(),
            keystore: c.keystore.clone(),
            audit: c.audit.clone(),
            device: c.device.clone(),
            ..new
        };
        let rules = config.rules.clone();
        *locks::write(&self.settings) = Arc::new(Live { config, rules });
        not_applied
    }

    /// The state database (one writer at a time).
    pub fn db(&self) -> MutexGuard<'_, Connection> {
        crate::locks::lock(&self.db)
    }

    /// Checks `request` against the rules, then that the caller is still there (no work
    /// begins for a caller that left); a refusal is audited and returned. An allowed request
    /// gets a [`Permit`] with the id its lines share, noted in `progress`.
    pub async fn authorize(
        &self,
        caller: &Caller,
        progress: &Progress,
        request: Request<'_>,
        entry: &Entry,
    ) -> Result<Permit, ApiError> {
        let decided = self.live().rules.authorize(caller, request);
        let refused = match decided {
            Ok(rule) => match caller.still_the_same_process() {
                Ok(()) => return Permit::issue(rule, entry.operation, progress).map_err(ApiError::from),
                Err(e) => (Some(rule), e),
            },
            Err(e) => {
                let rule = match &e {
                    Error::Forbidden { rule, .. } | Error::RateLimited { rule } => Some(rule.clone()),
                    _ => None,
                };
                (rule, e)
            }
        };
        let (rule, e) = refused;
        let mut entry = entry.clone();
        entry.rule = rule;
        entry.reason = Some(e.to_string());
        self.audit.record(Some(caller), Decision::Deny, entry).await?;
        Err(e.into())
    }

    /// Finishes an allowed operation whose work ran inline and left nothing behind but its
    /// answer: audits what was done (saying so when the caller left and the answer is
    /// withheld) and returns the answer. No line, no answer.
    pub async fn conclude<T>(
        &self,
        caller: &Caller,
        permit: Permit,
        entry: Entry,
        result: Result<T, Error>,
    ) -> Result<T, ApiError> {
        permit.running();
        let mut entry = permit.mark(entry);
        match result {
            Ok(value) => {
                let withheld = caller.still_the_same_process().err();
                entry.reason = withheld.as_ref().map(ToString::to_string);
                self.audit.record(Some(caller), Decision::Allow, entry).await?;
                match withheld {
                    Some(e) => Err(e.into()),
                    None => Ok(value),
                }
            }
            Err(e) => {
                entry.reason = Some(e.to_string());
                self.audit.record(Some(caller), Decision::Error, entry).await?;
                Err(e.into())
            }
        }
    }
}

/// Quarantines orphan key files and removes partial ones, each with a log and an audit line
/// (on disk before the daemon serves: a key moved aside is never unrecorded).
fn reconcile_keys(keys: &Keyring, audit: &AuditLog) -> Result<(), Error> {
    for done in keys.reconcile()? {
        let (key, reason) = match done {
            Reconciled::Quarantined { name, to } => (
                Some(name.to_string()),
                format!(
                    "the key file of {:?} had no record (a crash between the file and its record): \
                     moved to {}, and the name is free again",
                    name.as_str(),
                    to.display()
                ),
            ),
            Reconciled::RemovedPartial { path } => (
                None,
                format!("{} was a partly written key file (a crash during a write): removed", path.display()),
            ),
        };
        tracing::warn!("keys: {reason}");
        let entry = Entry { operation: "keys.reconcile", key, reason: Some(reason), ..Default::default() };
        audit.record_blocking(Decision::Allow, entry)?;
    }
    Ok(())
}

fn lock_state_dir(dir: &Path) -> Result<std::fs::File, Error> {
    let path = dir.join("lock");
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(|source| Error::Io { path: path.clone(), source })?;
    match file.try_lock() {
        Ok(()) => Ok(file),
        Err(std::fs::TryLockError::WouldBlock) => Err(Error::Conflict(format!(
            "another warrantd is using the state directory {}; stop it first",
            dir.display()
        ))),
        Err(std::fs::TryLockError::Error(source)) => Err(Error::Io { path, source }),
    }
}
