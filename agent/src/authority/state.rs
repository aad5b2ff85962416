//! The authority's state on disk: one JSON file replaced atomically, guarded by a lock file.

use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::files;
use crate::Error;

const STATE_FILE: &str = "authority.json";
const LOCK_FILE: &str = "lock";
const VERSION: u32 = 1;

/// A grant the authority issued.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct IssuedGrant {
    /// Grant id, hex.
    pub id: String,
    /// The principal.
    pub principal: String,
    /// Index in the status list.
    pub status_index: u64,
    /// Grant expiry.
    pub expires_at: u64,
    /// Thumbprint of the device key, hex.
    pub device_kid: String,
}

/// A challenge handed to a device, open until used or expired.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct OpenChallenge {
    /// The challenge, hex.
    pub challenge: String,
    /// When it stops being accepted.
    pub expires_at: u64,
}

/// Everything the authority remembers.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct State {
    /// Format version of this file.
    pub version: u32,
    /// The authority's id (`iss`).
    pub issuer: String,
    /// The URI of its status list.
    pub status_uri: String,
    /// Name of the key that signs new grants and lists.
    pub active_key: String,
    /// All issuance keys verifiers should trust, oldest first.
    pub keys: Vec<String>,
    /// Status index for the next grant.
    pub next_status_index: u64,
    /// Sequence of the last published status list (0: none yet).
    pub status_sequence: u64,
    /// SHA-256 of the last published status list, hex (zeros: none yet).
    pub last_status_digest: String,
    /// Revoked status indexes.
    pub revoked: BTreeSet<u64>,
    /// Issued grants.
    pub grants: Vec<IssuedGrant>,
    /// Open enrollment challenges.
    pub challenges: Vec<OpenChallenge>,
}

impl State {
    /// A fresh state.
    pub fn new(issuer: String, status_uri: String, first_key: String) -> Self {
        Self {
            version: VERSION,
            issuer,
            status_uri,
            active_key: first_key.clone(),
            keys: vec![first_key],
            next_status_index: 0,
            status_sequence: 0,
            last_status_digest: hex::encode([0u8; 32]),
            revoked: BTreeSet::new(),
            grants: Vec::new(),
            challenges: Vec::new(),
        }
    }
}

/// The state file of an authority directory, held under an exclusive lock.
pub struct StateFile {
    path: PathBuf,
    // Held for the lifetime of this value: the OS releases the lock when it is closed.
    _lock: fs::File,
}

impl StateFile {
    /// Locks `dir` (waiting for another `warrant` process to finish) and names its state file.
    pub fn lock(dir: &Path) -> Result<Self, Error> {
        let lock_path = dir.join(LOCK_FILE);
        let lock = fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)
            .map_err(files::io(&lock_path))?;
        lock.lock().map_err(files::io(&lock_path))?;
        Ok(Self { path: dir.join(STATE_FILE), _lock: lock })
    }

    /// Whether a state file exists.
    pub fn exists(&self) -> bool {
        self.path.exists()
    }

    /// Reads the state.
    pub fn load(&self) -> Result<State, Error> {
        let bytes = files::read(&self.path)?;
        let state: State = serde_json::from_slice(&bytes)
            .map_err(|e| Error::BadFile { path: self.path.clone(), reason: e.to_string() })?;
        if state.version != VERSION {
            return Err(Error::BadFile {
                path: self.path.clone(),
                reason: format!("state version {} is not supported (expected {VERSION})", state.version),
            });
        }
        Ok(state)
    }

    /// Replaces the state: after a crash, either the old or the new state is on disk.
    pub fn save(&self, state: &State) -> Result<(), Error> {
        let json = serde_json::to_vec_pretty(state)
            .map_err(|e| Error::BadFile { path: self.path.clone(), reason: e.to_string() })?;
        files::write_atomic(&self.path, &json, 0o600)
    }
}
