//! The authority's offline operations: initialisation, enrollment challenges, grants,
//! revocation, status lists, key rotation and the trust file verifiers need.
//!
//! An authority is a directory: `authority.json` (state), `keys/` (issuance keys) and a
//! `lock` file that serialises concurrent invocations.

mod state;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use warrant_attestation::{AttributeValue, BackendKind};
use warrant_envelope::{
    new_id, random_bytes, sha256, thumbprint, verify_enrollment, EntityData, GrantClaims, StatusBits,
    StatusListClaims, StatusReference, TrustedAuthority, CHALLENGE_LEN,
};
use warrant_hsm_backends::soft::SoftKeyStore;
use warrant_hsm_backends::{KeyName, KeyStore};
use zeroize::Zeroizing;

pub use state::{IssuedGrant, State};

use warrant_envelope::{Clock, SystemClock};

use crate::key_signer::KeySigner;
use crate::{files, Error};
use state::{OpenChallenge, StateFile};

/// Smallest status list published, so a list does not reveal how few grants exist.
const MIN_STATUS_ENTRIES: u64 = 1024;

/// What the authority decides about a grant beyond what the enrollment asks.
#[derive(Debug, Clone)]
pub struct GrantOptions {
    /// Cedar policy set for warrants under the grant.
    pub policy: String,
    /// The principal's groups.
    pub groups: Vec<String>,
    /// The principal's attributes.
    pub attributes: BTreeMap<String, AttributeValue>,
    /// Grant lifetime, seconds.
    pub valid_for: u64,
    /// Longest warrant lifetime under the grant, seconds.
    pub max_warrant_lifetime: u64,
    /// Whether a device with a software key may be granted at all.
    pub allow_software: bool,
}

/// An opened authority directory, locked for this process.
pub struct Authority {
    dir: PathBuf,
    file: StateFile,
    state: State,
    store: SoftKeyStore,
}

fn now() -> u64 {
    SystemClock.now()
}

fn key_name(name: &str) -> Result<KeyName, Error> {
    Ok(KeyName::new(name)?)
}

impl Authority {
    /// Creates an authority in `dir` with a first issuance key.
    pub fn init(
        dir: &Path,
        issuer: &str,
        status_uri: &str,
        passphrase: Option<Zeroizing<Vec<u8>>>,
    ) -> Result<Self, Error> {
        if issuer.is_empty() || status_uri.is_empty() {
            return Err(Error::Usage("the authority id and status URI must not be empty".into()));
        }
        files::create_private_dir(dir)?;
        let file = StateFile::lock(dir)?;
        if file.exists() {
            return Err(Error::Usage(format!("{} already holds an authority", dir.display())));
        }
        let store = open_store(dir, passphrase)?;
        let first = key_name("issuance-1")?;
        store.create(&first)?;
        let state = State::new(issuer.into(), status_uri.into(), first.to_string());
        file.save(&state)?;
        Ok(Self { dir: dir.to_owned(), file, state, store })
    }

    /// Opens the authority in `dir`.
    pub fn open(dir: &Path, passphrase: Option<Zeroizing<Vec<u8>>>) -> Result<Self, Error> {
        let file = StateFile::lock(dir)?;
        if !file.exists() {
            return Err(Error::Usage(format!(
                "{} holds no authority: create one with `warrant authority init`",
                dir.display()
            )));
        }
        let state = file.load()?;
        let store = open_store(dir, passphrase)?;
        Ok(Self { dir: dir.to_owned(), file, state, store })
    }

    /// The authority's state.
    pub fn state(&self) -> &State {
        &self.state
    }

    /// The directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn signer(&self) -> Result<KeySigner<'_>, Error> {
        Ok(KeySigner::new(&self.store, key_name(&self.state.active_key)?)?)
    }

    /// The trust anchor verifiers need: the authority id and every issuance key.
    pub fn trusted(&self) -> Result<TrustedAuthority, Error> {
        let keys = self
            .state
            .keys
            .iter()
            .map(|name| Ok(self.store.public_key(&key_name(name)?)?))
            .collect::<Result<Vec<_>, Error>>()?;
        Ok(TrustedAuthority { issuer: self.state.issuer.clone(), keys })
    }

    /// Issues an enrollment challenge valid for `ttl` seconds.
    pub fn challenge(&mut self, ttl: u64) -> Result<[u8; CHALLENGE_LEN], Error> {
        let challenge = random_bytes::<CHALLENGE_LEN>()?;
        let now = now();
        self.state.challenges.retain(|c| c.expires_at > now);
        self.state
            .challenges
            .push(OpenChallenge { challenge: hex::encode(challenge), expires_at: now.saturating_add(ttl) });
        self.file.save(&self.state)?;
        Ok(challenge)
    }

    /// Verifies an enrollment request and issues a grant for it. The request's challenge must
    /// be open; it is consumed.
    pub fn grant(
        &mut self,
        enrollment: &[u8],
        options: &GrantOptions,
    ) -> Result<(Vec<u8>, GrantClaims), Error> {
        let verified = verify_enrollment(enrollment)?;
        let now = now();
        let challenge = hex::encode(verified.claims.challenge);
        let open = self.state.challenges.iter().position(|c| c.challenge == challenge && c.expires_at > now);
        let Some(open) = open else {
            return Err(Error::AuthorityRefuses(
                "the enrollment's challenge was not issued by this authority, was used already, or expired"
                    .into(),
            ));
        };
        if verified.device.backend == BackendKind::Software && !options.allow_software {
            return Err(Error::AuthorityRefuses(
                "the device key is a software key; pass --allow-software to grant it anyway".into(),
            ));
        }
        warrant_envelope::validate_policy(&options.policy)?;
        let claims = GrantClaims {
            issuer: self.state.issuer.clone(),
            principal: verified.claims.principal.clone(),
            id: new_id()?,
            issued_at: now,
            not_before: now,
            expires_at: now.saturating_add(options.valid_for),
            device_key: verified.claims.device_key.clone(),
            device: verified.device,
            entity: EntityData { groups: options.groups.clone(), attributes: options.attributes.clone() },
            policy: options.policy.clone(),
            max_warrant_lifetime: options.max_warrant_lifetime,
            status: StatusReference {
                uri: self.state.status_uri.clone(),
                index: self.state.next_status_index,
            },
        };
        let grant = claims.sign(&self.signer()?)?;
        self.state.challenges.remove(open);
        self.state.next_status_index += 1;
        self.state.grants.push(IssuedGrant {
            id: hex::encode(claims.id),
            principal: claims.principal.clone(),
            status_index: claims.status.index,
            expires_at: claims.expires_at,
            device_kid: hex::encode(thumbprint(&claims.device_key)),
        });
        self.file.save(&self.state)?;
        Ok((grant, claims))
    }

    /// Marks a grant revoked (effective in the next published status list).
    pub fn revoke(&mut self, grant_id: &str) -> Result<IssuedGrant, Error> {
        let id = grant_id.to_ascii_lowercase();
        let grant = self
            .state
            .grants
            .iter()
            .find(|g| g.id == id)
            .cloned()
            .ok_or_else(|| Error::Usage(format!("this authority issued no grant with id {grant_id}")))?;
        self.state.revoked.insert(grant.status_index);
        self.file.save(&self.state)?;
        Ok(grant)
    }

    /// Signs the next status list, valid for `ttl` seconds.
    pub fn publish_status(&mut self, ttl: u64) -> Result<(Vec<u8>, StatusListClaims), Error> {
        let mut bits = StatusBits::with_capacity(self.state.next_status_index.max(MIN_STATUS_ENTRIES));
        for index in &self.state.revoked {
            bits.revoke(*index)?;
        }
        let previous: [u8; 32] = hex::decode(&self.state.last_status_digest)
            .ok()
            .and_then(|d| d.try_into().ok())
            .ok_or_else(|| Error::BadFile {
                path: self.dir.clone(),
                reason: "last_status_digest is not 32 hex bytes".into(),
            })?;
        let now = now();
        let claims = StatusListClaims {
            issuer: self.state.issuer.clone(),
            uri: self.state.status_uri.clone(),
            sequence: self.state.status_sequence + 1,
            previous,
            issued_at: now,
            expires_at: now.saturating_add(ttl),
            bits,
        };
        let list = claims.sign(&self.signer()?)?;
        self.state.status_sequence = claims.sequence;
        self.state.last_status_digest = hex::encode(sha256(&list));
        self.file.save(&self.state)?;
        Ok((list, claims))
    }

    /// Creates a new issuance key and makes it the active one; the old keys stay trusted so
    /// the grants they signed remain valid.
    pub fn rotate_key(&mut self) -> Result<String, Error> {
        let name = format!("issuance-{}", self.state.keys.len() + 1);
        self.store.create(&key_name(&name)?)?;
        self.state.keys.push(name.clone());
        self.state.active_key = name.clone();
        self.file.save(&self.state)?;
        Ok(name)
    }
}

fn open_store(dir: &Path, passphrase: Option<Zeroizing<Vec<u8>>>) -> Result<SoftKeyStore, Error> {
    let store = SoftKeyStore::open(dir.join("keys"))?;
    Ok(match passphrase {
        Some(p) => store.with_passphrase(p),
        None => store,
    })
}
