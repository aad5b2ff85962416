//! The authority's operations: initialisation, enrollment challenges, grants, revocation,
//! status lists, key rotation and the trust anchor verifiers need.
//!
//! The authority's records live in the daemon's state database (see `database.rs` for the
//! schema); each operation is one transaction, committed only after its signature is made, so
//! a crash leaves either the old or the new state. Its keys are issuance keys of the daemon's
//! [`Keyring`].

use std::collections::BTreeMap;

use rusqlite::{params, Connection, OptionalExtension, Transaction};
use warrant_attestation::certificate::Cert;
use warrant_attestation::tpm::Credential;
use warrant_attestation::{Assurance, AttributeValue, BackendKind, DeviceFacts, EnrollmentTrust};
use warrant_envelope::issue::{
    new_id, random_bytes, status_list_digest, verify_enrollment_with, Clock, EntityData, GrantClaims,
    StatusBits, StatusListClaims, StatusReference, SystemClock, TrustedAuthority, CHALLENGE_LEN,
};
use warrant_envelope::thumbprint;
use warrant_hsm_backends::{KeyName, TpmIdentity};

mod principal;
pub(crate) mod tpm_credential;

pub use tpm_credential::TpmBinding;

use crate::database::sql;
use crate::keyring::{KeyPurpose, Keyring};
use crate::Error;

/// Longest life of an enrollment challenge: a day. A challenge is a one-time secret that
/// should be answered within minutes; the bound also keeps every expiry far inside the
/// database's signed 64-bit times (2^64 - 1 seconds once wrapped into an already-expired
/// challenge that was nevertheless answered as made).
pub const MAX_CHALLENGE_TTL: u64 = 24 * 3600;
/// Longest life of a grant: ten years.
pub const MAX_GRANT_VALIDITY: u64 = 10 * 366 * 24 * 3600;
/// Longest life of a status list: a year.
pub const MAX_STATUS_VALIDITY: u64 = 366 * 24 * 3600;
/// How long verifiers may use a list before fetching a newer one (its `ttl`), when not given:
/// five minutes, or the list's whole life if shorter. A revocation reaches every verifier
/// within about this time after the list that carries it is published.
pub const DEFAULT_STATUS_REFRESH: u64 = 300;

/// Refuses a lifetime of 0 or above `max` seconds, naming `what`.
fn check_lifetime(what: &str, seconds: u64, max: u64) -> Result<(), Error> {
    if seconds == 0 || seconds > max {
        return Err(Error::Usage(format!("{what} must be 1 to {max} seconds, not {seconds}")));
    }
    Ok(())
}

/// What the authority decides about a grant beyond what the enrollment asks.
#[derive(Debug, Clone)]
pub struct GrantOptions {
    /// The principal to grant, when its challenge recorded none; when both name one they
    /// must agree, and the enrollment must ask for it.
    pub principal: Option<String>,
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
    /// Whether a device whose evidence is self-reported (PKCS#11) may be granted.
    pub allow_self_reported: bool,
    /// Attestation roots and rules for appraising the enrollment's evidence.
    pub trust: EnrollmentTrust,
}

/// The authority's current settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    /// The authority's id (`iss`).
    pub issuer: String,
    /// The URI of its status list.
    pub status_uri: String,
    /// The key that signs new grants and lists.
    pub active_key: String,
    /// Every issuance key verifiers should trust, oldest first.
    pub keys: Vec<String>,
    /// Status index for the next grant.
    pub next_status_index: u64,
    /// Sequence of the last published status list (0: none yet).
    pub status_sequence: u64,
    /// [`status_list_digest`] of the last published status list (zeros: none yet).
    pub last_status_digest: [u8; 32],
}

/// A grant the authority issued.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IssuedGrant {
    /// Grant id.
    pub id: [u8; 16],
    /// The principal.
    pub principal: String,
    /// Index in the status list.
    pub status_index: u64,
}

/// The authority of a daemon: its database and its keys.
pub struct Authority<'a> {
    conn: &'a mut Connection,
    keys: &'a Keyring,
}

fn now() -> u64 {
    SystemClock.now()
}

impl<'a> Authority<'a> {
    /// The authority held in `conn`, signing with issuance keys of `keys`.
    pub fn new(conn: &'a mut Connection, keys: &'a Keyring) -> Self {
        Self { conn, keys }
    }

    /// Creates the authority with a first issuance key: a new one, or the existing key that
    /// `existing_key` (a PKCS#11 URI) names.
    pub fn init(
        &mut self,
        issuer: &str,
        status_uri: &str,
        existing_key: Option<&str>,
    ) -> Result<Settings, Error> {
        if issuer.is_empty() || status_uri.is_empty() {
            return Err(Error::Usage("the authority id and status URI must not be empty".into()));
        }
        if self.settings_opt()?.is_some() {
            return Err(Error::Conflict("this daemon holds an authority already".into()));
        }
        let tx = self.conn.transaction().map_err(sql)?;
        let key = match existing_key {
            Some(reference) => self.keys.adopt(&tx, reference, KeyPurpose::Issuance)?.name.to_string(),
            None => new_issuance_key(&tx, self.keys)?,
        };
        tx.execute(
            "INSERT INTO authority (id, issuer, status_uri, active_key, next_status_index,
                 status_sequence, last_status_digest) VALUES (1, ?1, ?2, ?3, 0, 0, ?4)",
            params![issuer, status_uri, key, [0u8; 32].as_slice()],
        )
        .map_err(sql)?;
        tx.execute("INSERT INTO issuance_keys (position, name) VALUES (1, ?1)", [&key]).map_err(sql)?;
        tx.commit().map_err(sql)?;
        self.settings()
    }

    fn settings_opt(&self) -> Result<Option<Settings>, Error> {
        read_settings(self.conn)
    }

    /// The authority's settings; an error if none was created.
    pub fn settings(&self) -> Result<Settings, Error> {
        self.settings_opt()?.ok_or_else(|| {
            Error::NotFound("this daemon holds no authority: create one with `warrant authority init`".into())
        })
    }

    /// The trust anchor verifiers need: the authority id and every issuance key.
    pub fn trusted(&self) -> Result<TrustedAuthority, Error> {
        let settings = self.settings()?;
        let keys = settings
            .keys
            .iter()
            .map(|name| Ok(self.keys.store().public_key(&KeyName::new(name)?)?))
            .collect::<Result<Vec<_>, Error>>()?;
        Ok(TrustedAuthority { issuer: settings.issuer, keys })
    }

    /// Issues an enrollment challenge valid for `ttl` seconds, for `principal` when given (a
    /// grant for it then goes to that principal only).
    pub fn challenge(&mut self, ttl: u64, principal: Option<&str>) -> Result<[u8; CHALLENGE_LEN], Error> {
        self.settings()?;
        check_lifetime("a challenge's ttl", ttl, MAX_CHALLENGE_TTL)?;
        principal.map(principal::check_name).transpose()?;
        let challenge = random_bytes::<CHALLENGE_LEN>()?;
        self.store_challenge(&challenge, ttl, principal, None)?;
        Ok(challenge)
    }

    /// Issues an enrollment challenge for a TPM, valid for `ttl` seconds and for `principal`
    /// when given: checks its EK certificate against `ek_roots` and returns the challenge only
    /// as a credential that the TPM holding that EK and attestation key can activate.
    pub fn tpm_challenge(
        &mut self,
        ttl: u64,
        principal: Option<&str>,
        identity: &TpmIdentity,
        ek_roots: &[Cert],
    ) -> Result<Credential, Error> {
        self.settings()?;
        check_lifetime("a challenge's ttl", ttl, MAX_CHALLENGE_TTL)?;
        principal.map(principal::check_name).transpose()?;
        let challenge = random_bytes::<CHALLENGE_LEN>()?;
        let (credential, binding) = tpm_credential::credential_for(identity, ek_roots, &challenge, now())?;
        self.store_challenge(&challenge, ttl, principal, Some(&binding))?;
        Ok(credential)
    }

    fn store_challenge(
        &mut self,
        challenge: &[u8],
        ttl: u64,
        principal: Option<&str>,
        tpm: Option<&TpmBinding>,
    ) -> Result<(), Error> {
        let now = now();
        let tx = self.conn.transaction().map_err(sql)?;
        tx.execute("DELETE FROM challenges WHERE expires_at <= ?1", [now as i64]).map_err(sql)?;
        tx.execute(
            "INSERT INTO challenges (challenge, expires_at, principal, tpm_ak_name, tpm_ek_sha256)
             VALUES (?1, ?2, ?3, ?4, ?5)",
            params![
                challenge,
                now.saturating_add(ttl) as i64,
                principal,
                tpm.map(|b| b.ak_name.as_str()),
                tpm.map(|b| b.ek_sha256.as_str())
            ],
        )
        .map_err(sql)?;
        tx.commit().map_err(sql)
    }

    /// Verifies an enrollment request and issues a grant for it. The request's challenge must
    /// be open; it is consumed. The grant is for the principal the challenge recorded or
    /// `options.principal` names, and the enrollment must ask for that one.
    pub fn grant(
        &mut self,
        enrollment: &[u8],
        options: &GrantOptions,
    ) -> Result<(Vec<u8>, GrantClaims), Error> {
        let settings = self.settings()?;
        check_lifetime("a grant's validity", options.valid_for, MAX_GRANT_VALIDITY)?;
        let verified = verify_enrollment_with(enrollment, &options.trust)?;
        match verified.device.backend.assurance() {
            Assurance::Software if !options.allow_software => {
                return Err(Error::AuthorityRefuses(
                    "the device key is a software key; allow software keys to grant it anyway".into(),
                ))
            }
            Assurance::SelfReported if !options.allow_self_reported => return Err(Error::AuthorityRefuses(
                "the device's evidence is self-reported by its PKCS#11 token (unsigned: a software key can \
                     claim the same); allow self-reported evidence to grant it anyway"
                    .into(),
            )),
            _ => {}
        }
        warrant_envelope::issue::validate_policy(&options.policy)?;
        options.principal.as_deref().map(principal::check_name).transpose()?;
        let now = now();
        let tx = self.conn.transaction().map_err(sql)?;
        let open = tx
            .query_row(
                "SELECT principal, tpm_ak_name, tpm_ek_sha256 FROM challenges
                 WHERE challenge = ?1 AND expires_at > ?2",
                params![verified.claims.challenge.as_slice(), now as i64],
                |r| {
                    Ok((
                        r.get::<_, Option<String>>(0)?,
                        r.get::<_, Option<String>>(1)?,
                        r.get::<_, Option<String>>(2)?,
                    ))
                },
            )
            .optional()
            .map_err(sql)?;
        let Some((intended, ak_name, ek_sha256)) = open else {
            return Err(Error::AuthorityRefuses(
                "the enrollment's challenge was not issued by this authority, was used already, or expired"
                    .into(),
            ));
        };
        let principal =
            principal::decide(intended.as_deref(), options.principal.as_deref(), &verified.claims.principal)?;
        let tpm = ak_name.zip(ek_sha256).map(|(ak_name, ek_sha256)| TpmBinding { ak_name, ek_sha256 });
        check_tpm_binding(&verified.device, tpm.as_ref())?;
        let mut device = verified.device;
        if tpm.is_some() {
            // Checked when the credential challenge was made: the EK chains to a configured root.
            device.properties.insert("ek_verified".into(), AttributeValue::Bool(true));
        }
        tx.execute("DELETE FROM challenges WHERE challenge = ?1", [verified.claims.challenge.as_slice()])
            .map_err(sql)?;
        let claims = GrantClaims {
            issuer: settings.issuer.clone(),
            principal,
            id: new_id()?,
            issued_at: now,
            not_before: now,
            expires_at: now.saturating_add(options.valid_for),
            device_key: verified.claims.device_key.clone(),
            device,
            entity: EntityData { groups: options.groups.clone(), attributes: options.attributes.clone() },
            policy: options.policy.clone(),
            max_warrant_lifetime: options.max_warrant_lifetime,
            status: StatusReference { uri: settings.status_uri.clone(), index: settings.next_status_index },
        };
        let grant = claims.sign(&self.keys.signer(&settings.active_key, KeyPurpose::Issuance)?)?;
        tx.execute(
            "INSERT INTO grants (id, principal, status_index, issued_at, expires_at, device_kid)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            params![
                claims.id.as_slice(),
                claims.principal,
                claims.status.index as i64,
                now as i64,
                claims.expires_at as i64,
                thumbprint(&claims.device_key).as_slice()
            ],
        )
        .map_err(sql)?;
        tx.execute("UPDATE authority SET next_status_index = next_status_index + 1 WHERE id = 1", [])
            .map_err(sql)?;
        tx.commit().map_err(sql)?;
        Ok((grant, claims))
    }

    /// Marks a grant revoked (effective in the next published status list).
    pub fn revoke(&mut self, grant_id: &[u8]) -> Result<IssuedGrant, Error> {
        self.settings()?;
        let tx = self.conn.transaction().map_err(sql)?;
        let grant = tx
            .query_row("SELECT id, principal, status_index FROM grants WHERE id = ?1", [grant_id], |r| {
                Ok((r.get::<_, Vec<u8>>(0)?, r.get::<_, String>(1)?, r.get::<_, i64>(2)?))
            })
            .optional()
            .map_err(sql)?;
        let Some((id, principal, status_index)) = grant else {
            return Err(Error::NotFound(format!(
                "this authority issued no grant with id {}",
                hex::encode(grant_id)
            )));
        };
        tx.execute(
            "UPDATE grants SET revoked_at = coalesce(revoked_at, ?2) WHERE id = ?1",
            params![id, now() as i64],
        )
        .map_err(sql)?;
        tx.commit().map_err(sql)?;
        let id = id.try_into().map_err(|_| corrupt("a grant id is not 16 bytes"))?;
        Ok(IssuedGrant { id, principal, status_index: status_index as u64 })
    }

    /// Signs the next status list, valid for `valid_for` seconds, which verifiers should
    /// replace after `ttl` seconds (default [`DEFAULT_STATUS_REFRESH`], at most `valid_for`),
    /// and keeps it.
    pub fn publish_status(
        &mut self,
        valid_for: u64,
        ttl: Option<u64>,
    ) -> Result<(Vec<u8>, StatusListClaims), Error> {
        let settings = self.settings()?;
        check_lifetime("a status list's validity", valid_for, MAX_STATUS_VALIDITY)?;
        let ttl = ttl.unwrap_or(DEFAULT_STATUS_REFRESH.min(valid_for));
        check_lifetime("a status list's ttl (its validity or less)", ttl, valid_for)?;
        let tx = self.conn.transaction().map_err(sql)?;
        // Padded to MIN_STATUS_ENTRIES: a list does not reveal how few grants exist.
        let mut bits = StatusBits::with_capacity(settings.next_status_index);
        for index in revoked_indexes(&tx)? {
            bits.revoke(index)?;
        }
        let now = now();
        let claims = StatusListClaims {
            issuer: settings.issuer.clone(),
            uri: settings.status_uri.clone(),
            sequence: settings.status_sequence + 1,
            previous: previous_status_digest(&tx, settings.status_sequence)?,
            issued_at: now,
            expires_at: now.saturating_add(valid_for),
            time_to_live: ttl,
            bits,
        };
        let list = claims.sign(&self.keys.signer(&settings.active_key, KeyPurpose::Issuance)?)?;
        tx.execute(
            "UPDATE authority SET status_sequence = ?1, last_status_digest = ?2 WHERE id = 1",
            params![claims.sequence as i64, status_list_digest(&list)?.as_slice()],
        )
        .map_err(sql)?;
        tx.execute(
            "INSERT INTO status_lists (sequence, issued_at, expires_at, list) VALUES (?1, ?2, ?3, ?4)",
            params![claims.sequence as i64, now as i64, claims.expires_at as i64, list],
        )
        .map_err(sql)?;
        tx.commit().map_err(sql)?;
        Ok((list, claims))
    }

    /// A published status list by sequence number (the latest when `None`).
    pub fn status_list(&self, sequence: Option<u64>) -> Result<Vec<u8>, Error> {
        let missing = || match sequence {
            Some(seq) => Error::NotFound(format!("no status list with sequence {seq} has been published")),
            None => Error::NotFound("no status list has been published".into()),
        };
        let found = match sequence {
            // No list has a sequence beyond what SQLite stores.
            Some(seq) => {
                let seq = i64::try_from(seq).map_err(|_| missing())?;
                self.conn
                    .query_row("SELECT list FROM status_lists WHERE sequence = ?1", [seq], |r| r.get(0))
                    .optional()
            }
            None => self
                .conn
                .query_row("SELECT list FROM status_lists ORDER BY sequence DESC LIMIT 1", [], |r| r.get(0))
                .optional(),
        }
        .map_err(sql)?;
        found.ok_or_else(missing)
    }

    /// Creates a new issuance key and makes it the active one; the old keys stay trusted so
    /// the grants they signed remain valid.
    pub fn rotate_key(&mut self) -> Result<String, Error> {
        self.settings()?;
        let tx = self.conn.transaction().map_err(sql)?;
        let key = new_issuance_key(&tx, self.keys)?;
        tx.execute(
            "INSERT INTO issuance_keys (position, name) VALUES ((SELECT max(position) + 1 FROM issuance_keys), ?1)",
            [&key],
        )
        .map_err(sql)?;
        tx.execute("UPDATE authority SET active_key = ?1 WHERE id = 1", [&key]).map_err(sql)?;
        tx.commit().map_err(sql)?;
        Ok(key)
    }
}

/// Creates an issuance key with a fresh random name (so a key left behind by an interrupted
/// operation never collides with a new one).
fn new_issuance_key(tx: &Transaction<'_>, keys: &Keyring) -> Result<String, Error> {
    let name = KeyName::new(&format!("issuance-{}", hex::encode(random_bytes::<6>()?)))?;
    keys.create(tx, &name, KeyPurpose::Issuance)?;
    Ok(name.to_string())
}

/// What the list after `sequence` names as `prev`: the [`status_list_digest`] of the stored list
/// `sequence`, the function verifiers use. Computed from the list itself rather than read
/// from `last_status_digest`, which databases written before the digest covered only the
/// signed content hold as the SHA-256 of the list's bytes.
fn previous_status_digest(tx: &Transaction<'_>, sequence: u64) -> Result<[u8; 32], Error> {
    if sequence == 0 {
        return Ok([0; 32]);
    }
    let list: Option<Vec<u8>> = tx
        .query_row("SELECT list FROM status_lists WHERE sequence = ?1", [sequence as i64], |r| r.get(0))
        .optional()
        .map_err(sql)?;
    let list = list.ok_or_else(|| corrupt("the last published status list is missing"))?;
    Ok(status_list_digest(&list)?)
}

fn revoked_indexes(tx: &Transaction<'_>) -> Result<Vec<u64>, Error> {
    let mut stmt = tx.prepare("SELECT status_index FROM grants WHERE revoked_at IS NOT NULL").map_err(sql)?;
    let rows = stmt.query_map([], |r| r.get::<_, i64>(0)).map_err(sql)?;
    rows.map(|r| r.map(|i| i as u64).map_err(sql)).collect()
}

fn read_settings(conn: &Connection) -> Result<Option<Settings>, Error> {
    let row = conn
        .query_row(
            "SELECT issuer, status_uri, active_key, next_status_index, status_sequence, last_status_digest
             FROM authority WHERE id = 1",
            [],
            |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, String>(2)?,
                    r.get::<_, i64>(3)?,
                    r.get::<_, i64>(4)?,
                    r.get::<_, Vec<u8>>(5)?,
                ))
            },
        )
        .optional()
        .map_err(sql)?;
    let Some((issuer, status_uri, active_key, next_status_index, status_sequence, digest)) = row else {
        return Ok(None);
    };
    let mut stmt = conn.prepare("SELECT name FROM issuance_keys ORDER BY position").map_err(sql)?;
    let keys = stmt
        .query_map([], |r| r.get::<_, String>(0))
        .map_err(sql)?
        .collect::<Result<Vec<_>, _>>()
        .map_err(sql)?;
    Ok(Some(Settings {
        issuer,
        status_uri,
        active_key,
        keys,
        next_status_index: next_status_index as u64,
        status_sequence: status_sequence as u64,
        last_status_digest: digest.try_into().map_err(|_| corrupt("last_status_digest is not 32 bytes"))?,
    }))
}

fn corrupt(reason: &str) -> Error {
    Error::Database { path: crate::database::FILE_NAME.into(), reason: reason.into() }
}

/// A TPM enrollment must answer a credential challenge made for the same AK and EK; any other
/// enrollment must answer a plain one.
fn check_tpm_binding(device: &DeviceFacts, binding: Option<&TpmBinding>) -> Result<(), Error> {
    let text = |key: &str| match device.properties.get(key) {
        Some(AttributeValue::Text(t)) => Some(t.as_str()),
        _ => None,
    };
    match (device.backend, binding) {
        (BackendKind::Tpm, None) => Err(Error::AuthorityRefuses(
            "a TPM device must answer a credential challenge (warrant authority challenge --tpm-identity), \
             which proves its attestation key shares a TPM with a certified EK"
                .into(),
        )),
        (BackendKind::Tpm, Some(b)) => {
            if text("ak_name") != Some(b.ak_name.as_str())
                || text("ek_certificate_sha256") != Some(b.ek_sha256.as_str())
            {
                return Err(Error::AuthorityRefuses(
                    "the enrollment's attestation key or EK certificate is not the one the credential challenge was made for"
                        .into(),
                ));
            }
            Ok(())
        }
        (_, Some(_)) => Err(Error::AuthorityRefuses(
            "the challenge was made as a TPM credential but the enrollment carries no TPM evidence".into(),
        )),
        (_, None) => Ok(()),
    }
}
