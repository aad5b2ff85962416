//! PKCS#11 tokens and HSMs (through `cryptoki`, which loads the module at run time).
//!
//! A store is one token, found by label or serial (never by slot id: those change), logged
//! in with a PIN from a [`PinSource`]. Keys are P-256 pairs generated on the token with
//! CKA_TOKEN, CKA_PRIVATE, CKA_SENSITIVE and not CKA_EXTRACTABLE, named by CKA_LABEL (the
//! warrant key name), with a random CKA_ID. Existing pairs (e.g. from `pkcs11-tool
//! --keypairgen`) are used by their label. Signing is CKM_ECDSA over the SHA-256 digest
//! (SoftHSM has no CKM_ECDSA_SHA256).
//!
//! Sessions are pooled, one per concurrent caller; a module is initialised once per process
//! with OS locking. When the token drops sessions (closed, removed, reinserted), the store
//! reopens and logs in again, then retries once.

mod settings;
mod uri;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

use cryptoki::context::{CInitializeArgs, CInitializeFlags, Pkcs11};
use cryptoki::error::RvError;
use cryptoki::mechanism::Mechanism;
use cryptoki::object::{Attribute, AttributeType, KeyType, ObjectClass, ObjectHandle};
use cryptoki::session::{Session, UserType};
use cryptoki::slot::Slot;
use cryptoki::types::AuthPin;
use warrant_attestation::{BackendKind, EnrollmentEvidence, P256PublicKey, Pkcs11Report, WarrantEvidence};
use zeroize::Zeroizing;

pub use crate::pin::PinSource;
pub use settings::Pkcs11Settings;
pub use uri::{redacted as redacted_uri, Pkcs11Uri};

use crate::clock::unix_seconds;
use crate::key_cache::KeyCache;
use crate::sync::Locked;
use crate::{Error, KeyInfo, KeyName, KeyProtection, KeyStore, WarrantScope};

/// DER of the prime256v1 OID, the CKA_EC_PARAMS of P-256 keys.
const P256_PARAMS: [u8; 10] = [0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07];

/// Which token to use.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenSelector {
    /// Its label.
    pub label: Option<String>,
    /// Its serial number.
    pub serial: Option<String>,
}

impl TokenSelector {
    fn describe(&self) -> String {
        match (&self.label, &self.serial) {
            (Some(l), Some(s)) => format!("labelled {l:?} with serial {s:?}"),
            (Some(l), None) => format!("labelled {l:?}"),
            (None, Some(s)) => format!("with serial {s:?}"),
            (None, None) => "(none named)".into(),
        }
    }
}

fn p11(operation: &'static str) -> impl Fn(cryptoki::error::Error) -> Error {
    move |source| Error::Pkcs11 { operation, source }
}

/// A failure inside an operation on a session: from the token (maybe a lost session, worth
/// one reconnect), or final.
enum Failure {
    Token(cryptoki::error::Error),
    Final(Error),
}

impl From<cryptoki::error::Error> for Failure {
    fn from(e: cryptoki::error::Error) -> Self {
        Failure::Token(e)
    }
}

impl From<Error> for Failure {
    fn from(e: Error) -> Self {
        Failure::Final(e)
    }
}

fn rv(e: &cryptoki::error::Error) -> Option<RvError> {
    match e {
        cryptoki::error::Error::Pkcs11(rv, _) => Some(*rv),
        _ => None,
    }
}

/// Errors after which the session is gone and a new one (and a new login) may succeed.
fn session_lost(e: &cryptoki::error::Error) -> bool {
    matches!(
        rv(e),
        Some(
            RvError::SessionHandleInvalid
                | RvError::SessionClosed
                | RvError::DeviceRemoved
                | RvError::TokenNotPresent
                | RvError::UserNotLoggedIn
                | RvError::ObjectHandleInvalid
                | RvError::KeyHandleInvalid
        )
    )
}

/// The process's loaded modules: PKCS#11 allows one initialisation per module per process.
fn module(path: &Path) -> Result<Arc<Pkcs11>, Error> {
    static MODULES: OnceLock<Locked<HashMap<PathBuf, Arc<Pkcs11>>>> = OnceLock::new();
    let mut modules = MODULES.get_or_init(|| Locked::new("PKCS#11 module table", HashMap::new())).lock()?;
    if let Some(m) = modules.get(path) {
        return Ok(m.clone());
    }
    let ctx = Pkcs11::new(path).map_err(|source| Error::Pkcs11Module { path: path.to_owned(), source })?;
    match ctx.initialize(CInitializeArgs::new(CInitializeFlags::OS_LOCKING_OK)) {
        Ok(()) => {}
        Err(e) if rv(&e) == Some(RvError::CryptokiAlreadyInitialized) => {}
        Err(e) => return Err(p11("C_Initialize")(e)),
    }
    let ctx = Arc::new(ctx);
    modules.insert(path.to_owned(), ctx.clone());
    Ok(ctx)
}

/// A key store on one PKCS#11 token.
pub struct Pkcs11KeyStore {
    ctx: Arc<Pkcs11>,
    token: TokenSelector,
    pin: Zeroizing<String>,
    state: Locked<Connection>,
    report: TokenReport,
    public_keys: KeyCache<P256PublicKey>,
    /// Private key handles, valid while the login lasts (cleared on reconnection).
    handles: KeyCache<ObjectHandle>,
    /// CKA_LOCAL, CKA_ALWAYS_SENSITIVE, CKA_NEVER_EXTRACTABLE of each key: fixed for its life.
    attributes: KeyCache<(bool, bool, bool)>,
}

impl std::fmt::Debug for Pkcs11KeyStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pkcs11KeyStore").field("token", &self.token).finish_non_exhaustive()
    }
}

/// The slot the token is in now, and idle logged-in sessions.
struct Connection {
    slot: Slot,
    idle: Vec<Session>,
}

#[derive(Debug, Clone)]
struct TokenReport {
    label: String,
    manufacturer: String,
    model: String,
    serial: String,
    firmware: String,
}

impl Pkcs11KeyStore {
    /// Opens the token `token` of the module at `module_path` and logs in with the PIN from
    /// `pin`.
    pub fn open(module_path: &Path, token: TokenSelector, pin: &PinSource) -> Result<Self, Error> {
        if token.label.is_none() && token.serial.is_none() {
            return Err(Error::TokenNotFound("(name it by label or serial)".into()));
        }
        let ctx = module(module_path)?;
        let pin = pin.read()?;
        let slot = find_slot(&ctx, &token)?;
        let info = ctx.get_token_info(slot).map_err(p11("C_GetTokenInfo"))?;
        let firmware = info.firmware_version();
        let report = TokenReport {
            label: info.label().trim_end().to_owned(),
            manufacturer: info.manufacturer_id().trim().to_owned(),
            model: info.model().trim().to_owned(),
            serial: info.serial_number().trim().to_owned(),
            firmware: format!("{}.{}", firmware.major(), firmware.minor()),
        };
        let store = Self {
            ctx,
            token,
            pin,
            state: Locked::new("PKCS#11 session pool", Connection { slot, idle: Vec::new() }),
            report,
            public_keys: KeyCache::new("public key cache"),
            handles: KeyCache::new("key handle cache"),
            attributes: KeyCache::new("key attribute cache"),
        };
        // Log in now, so a wrong PIN is reported at start, not at the first signature.
        let session = store.new_session(slot)?;
        store.state.lock()?.idle.push(session);
        Ok(store)
    }

    /// Opens the token a URI names (`module-path` in the URI wins over `default_module`).
    pub fn open_uri(uri: &Pkcs11Uri, default_module: Option<&Path>, pin: &PinSource) -> Result<Self, Error> {
        let module = uri.module_path.as_deref().or(default_module).ok_or_else(|| Error::InvalidUri {
            uri: "(token)".into(),
            reason: "no module: add ?module-path=... or configure one".into(),
        })?;
        Self::open(module, TokenSelector { label: uri.token.clone(), serial: uri.serial.clone() }, pin)
    }

    fn new_session(&self, slot: Slot) -> Result<Session, Error> {
        let session = self.ctx.open_rw_session(slot).map_err(p11("C_OpenSession"))?;
        match session.login(UserType::User, Some(&AuthPin::from(self.pin.as_str().to_owned()))) {
            Ok(()) => Ok(session),
            Err(e) if rv(&e) == Some(RvError::UserAlreadyLoggedIn) => Ok(session),
            Err(e)
                if matches!(
                    rv(&e),
                    Some(RvError::PinIncorrect | RvError::PinInvalid | RvError::PinLenRange)
                ) =>
            {
                Err(Error::PinIncorrect(format!(" for token {}", self.token.describe())))
            }
            Err(e) if rv(&e) == Some(RvError::PinLocked) => {
                Err(Error::PinIncorrect(format!(": the PIN of token {} is locked", self.token.describe())))
            }
            Err(e) => Err(p11("C_Login")(e)),
        }
    }

    /// Runs `op` with a logged-in session. If the token lost its sessions, reconnects (the
    /// token may be in another slot now), logs in again, and retries once.
    fn with_session<T>(
        &self,
        op: impl Fn(&Session) -> Result<T, Failure>,
        what: &'static str,
    ) -> Result<T, Error> {
        for attempt in 0..2 {
            let (session, slot) = {
                let mut state = self.state.lock()?;
                (state.idle.pop(), state.slot)
            };
            let session = match session {
                Some(s) => s,
                None => self.new_session(slot)?,
            };
            match op(&session) {
                Ok(value) => {
                    self.state.lock()?.idle.push(session);
                    return Ok(value);
                }
                Err(Failure::Token(e)) if session_lost(&e) && attempt == 0 => self.reconnect()?,
                Err(Failure::Token(e)) => {
                    if !session_lost(&e) {
                        self.state.lock()?.idle.push(session);
                    }
                    return Err(p11(what)(e));
                }
                Err(Failure::Final(e)) => return Err(e),
            }
        }
        Err(Error::Pkcs11Unexpected { operation: what, reason: "the token lost its sessions twice".into() })
    }

    /// Drops every session and handle, and finds the token again.
    fn reconnect(&self) -> Result<(), Error> {
        let slot = find_slot(&self.ctx, &self.token)?;
        self.handles.clear()?;
        let mut state = self.state.lock()?;
        state.idle.clear();
        state.slot = slot;
        Ok(())
    }

    /// The private key's handle: cached, else found (and cached).
    fn private_handle(&self, session: &Session, name: &KeyName) -> Result<Option<ObjectHandle>, Failure> {
        if let Some(h) = self.handles.get(name)? {
            return Ok(Some(h));
        }
        let found = Self::find(session, name, ObjectClass::PRIVATE_KEY)?;
        if let Some(h) = found {
            self.handles.insert(name, h)?;
        }
        Ok(found)
    }

    fn find(
        session: &Session,
        name: &KeyName,
        class: ObjectClass,
    ) -> Result<Option<ObjectHandle>, cryptoki::error::Error> {
        let template = [Attribute::Class(class), Attribute::Label(name.as_str().as_bytes().to_vec())];
        Ok(session.find_objects(&template)?.into_iter().next())
    }

    fn read_public(
        session: &Session,
        name: &KeyName,
    ) -> Result<Option<Result<P256PublicKey, Error>>, cryptoki::error::Error> {
        let Some(public) = Self::find(session, name, ObjectClass::PUBLIC_KEY)? else { return Ok(None) };
        let attributes =
            session.get_attributes(public, &[AttributeType::EcParams, AttributeType::EcPoint])?;
        let mut params = None;
        let mut point = None;
        for attribute in attributes {
            match attribute {
                Attribute::EcParams(p) => params = Some(p),
                Attribute::EcPoint(p) => point = Some(p),
                _ => {}
            }
        }
        let corrupt = |reason: &str| Error::Pkcs11Unexpected {
            operation: "reading a public key",
            reason: format!("key {name}: {reason}"),
        };
        if params.as_deref() != Some(&P256_PARAMS[..]) {
            return Ok(Some(Err(corrupt("not a P-256 key"))));
        }
        Ok(Some(point.ok_or_else(|| corrupt("no CKA_EC_POINT")).and_then(|p| {
            unwrap_octet_string(&p)
                .and_then(|sec1| P256PublicKey::from_sec1(sec1).ok())
                .ok_or_else(|| corrupt("CKA_EC_POINT is not a DER OCTET STRING holding a P-256 point"))
        })))
    }

    fn key_attributes(
        session: &Session,
        handle: ObjectHandle,
    ) -> Result<(bool, bool, bool), cryptoki::error::Error> {
        let attributes = session.get_attributes(
            handle,
            &[AttributeType::Local, AttributeType::AlwaysSensitive, AttributeType::NeverExtractable],
        )?;
        let (mut local, mut always, mut never) = (false, false, false);
        for attribute in attributes {
            match attribute {
                Attribute::Local(b) => local = b,
                Attribute::AlwaysSensitive(b) => always = b,
                Attribute::NeverExtractable(b) => never = b,
                _ => {}
            }
        }
        Ok((local, always, never))
    }

    /// What the token reports about itself and the key `name` (its attributes read once).
    fn key_report(&self, name: &KeyName) -> Result<Pkcs11Report, Error> {
        let (local, always_sensitive, never_extractable) = self.attributes.get_or_load(name, || {
            self.with_session(
                |s| match self.private_handle(s, name)? {
                    Some(key) => Ok(Some(Self::key_attributes(s, key)?)),
                    None => Ok(None),
                },
                "reading key attributes",
            )?
            .ok_or_else(|| Error::KeyNotFound(name.to_string()))
        })?;
        let r = &self.report;
        Ok(Pkcs11Report {
            manufacturer: r.manufacturer.clone(),
            model: r.model.clone(),
            serial: r.serial.clone(),
            firmware: r.firmware.clone(),
            local,
            always_sensitive,
            never_extractable,
        })
    }
}

/// CKA_EC_POINT is a DER OCTET STRING around the SEC1 point (`04 41 04 ...`).
fn unwrap_octet_string(der: &[u8]) -> Option<&[u8]> {
    match der {
        [0x04, len, rest @ ..] if usize::from(*len) == rest.len() && *len < 0x80 => Some(rest),
        [0x04, 0x81, len, rest @ ..] if usize::from(*len) == rest.len() => Some(rest),
        _ => None,
    }
}

/// What a token says about its user PIN's tries (C_GetTokenInfo's flags), read without
/// logging in: a check that must not spend a try reads these first.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PinTries {
    /// CKF_USER_PIN_LOCKED: no try is left.
    pub locked: bool,
    /// CKF_USER_PIN_FINAL_TRY: one wrong PIN more locks it.
    pub final_try: bool,
    /// CKF_USER_PIN_COUNT_LOW: a wrong PIN was given since the last successful login.
    pub count_low: bool,
}

/// The PIN tries of the token `token` of the module at `module_path` (no login).
pub fn pin_tries(module_path: &Path, token: &TokenSelector) -> Result<PinTries, Error> {
    let ctx = module(module_path)?;
    let slot = find_slot(&ctx, token)?;
    let info = ctx.get_token_info(slot).map_err(p11("C_GetTokenInfo"))?;
    Ok(PinTries {
        locked: info.user_pin_locked(),
        final_try: info.user_pin_final_try(),
        count_low: info.user_pin_count_low(),
    })
}

fn find_slot(ctx: &Pkcs11, token: &TokenSelector) -> Result<Slot, Error> {
    for slot in ctx.get_slots_with_token().map_err(p11("C_GetSlotList"))? {
        let Ok(info) = ctx.get_token_info(slot) else { continue };
        let label_ok = token.label.as_deref().is_none_or(|l| info.label().trim_end() == l);
        let serial_ok = token.serial.as_deref().is_none_or(|s| info.serial_number().trim_end() == s);
        if label_ok && serial_ok {
            return Ok(slot);
        }
    }
    Err(Error::TokenNotFound(token.describe()))
}

impl KeyStore for Pkcs11KeyStore {
    fn backend(&self) -> BackendKind {
        BackendKind::Pkcs11
    }

    fn create(&self, name: &KeyName) -> Result<KeyInfo, Error> {
        if self
            .with_session(|s| Ok(Self::find(s, name, ObjectClass::PRIVATE_KEY)?), "C_FindObjects")?
            .is_some()
        {
            return Err(Error::KeyExists(name.to_string()));
        }
        let mut id = [0u8; 16];
        aws_lc_rs::rand::fill(&mut id).map_err(|_| Error::Crypto("random key id"))?;
        let label = name.as_str().as_bytes().to_vec();
        let public = [
            Attribute::Token(true),
            Attribute::Private(false),
            Attribute::Verify(true),
            Attribute::EcParams(P256_PARAMS.to_vec()),
            Attribute::Label(label.clone()),
            Attribute::Id(id.to_vec()),
        ];
        let private = [
            Attribute::Token(true),
            Attribute::Private(true),
            Attribute::Sensitive(true),
            Attribute::Extractable(false),
            Attribute::Sign(true),
            Attribute::KeyType(KeyType::EC),
            Attribute::Label(label),
            Attribute::Id(id.to_vec()),
        ];
        self.with_session(
            |s| {
                let (_, private) = s.generate_key_pair(&Mechanism::EccKeyPairGen, &public, &private)?;
                self.handles.insert(name, private)?;
                Ok(())
            },
            "C_GenerateKeyPair",
        )?;
        let public_key = self.public_key(name)?;
        let created_at = unix_seconds();
        Ok(KeyInfo {
            name: name.clone(),
            backend: BackendKind::Pkcs11,
            public_key,
            created_at,
            protection: KeyProtection::Hardware,
        })
    }

    fn list(&self) -> Result<Vec<KeyInfo>, Error> {
        let labels = self.with_session(
            |s| {
                let objects = s.find_objects(&[
                    Attribute::Class(ObjectClass::PRIVATE_KEY),
                    Attribute::KeyType(KeyType::EC),
                ])?;
                let mut labels = Vec::new();
                for object in objects {
                    for attribute in s.get_attributes(object, &[AttributeType::Label])? {
                        if let Attribute::Label(l) = attribute {
                            labels.push(l);
                        }
                    }
                }
                Ok(labels)
            },
            "listing keys",
        )?;
        let mut keys = Vec::new();
        for label in labels {
            // Keys whose label is not a warrant key name are not warrant's to use.
            let Some(name) = std::str::from_utf8(&label).ok().and_then(|l| KeyName::new(l).ok()) else {
                continue;
            };
            let Ok(public_key) = self.public_key(&name) else { continue };
            // The token keeps no creation time warrant can rely on.
            keys.push(KeyInfo {
                name,
                backend: BackendKind::Pkcs11,
                public_key,
                created_at: 0,
                protection: KeyProtection::Hardware,
            });
        }
        keys.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(keys)
    }

    fn public_key(&self, name: &KeyName) -> Result<P256PublicKey, Error> {
        self.public_keys.get_or_load(name, || {
            self.with_session(|s| Ok(Self::read_public(s, name)?), "reading a public key")?
                .ok_or_else(|| Error::KeyNotFound(name.to_string()))?
        })
    }

    fn sign_digest(&self, name: &KeyName, digest: &[u8; 32]) -> Result<[u8; 64], Error> {
        let signature = self
            .with_session(
                |s| match self.private_handle(s, name)? {
                    Some(key) => Ok(Some(s.sign(&Mechanism::Ecdsa, key, digest)?)),
                    None => Ok(None),
                },
                "C_Sign",
            )?
            .ok_or_else(|| Error::KeyNotFound(name.to_string()))?;
        signature
            .as_slice()
            .try_into()
            .map_err(|_| Error::Crypto("the token's ECDSA signature is not 64 bytes"))
    }

    // The same self-report in both places: the token has nothing to bind a nonce to.
    fn enrollment_evidence(
        &self,
        name: &KeyName,
        _challenge: &[u8; 32],
    ) -> Result<EnrollmentEvidence, Error> {
        Ok(EnrollmentEvidence::Pkcs11(self.key_report(name)?))
    }

    fn warrant_evidence(
        &self,
        name: &KeyName,
        _scope: &WarrantScope,
        _binding: &[u8; 32],
    ) -> Result<WarrantEvidence, Error> {
        Ok(WarrantEvidence::Pkcs11(self.key_report(name)?))
    }

    fn existing(&self, reference: &str) -> Result<KeyInfo, Error> {
        let uri = Pkcs11Uri::parse(reference)?;
        let r = &self.report;
        let other = |given: &Option<String>, ours: &str| given.as_deref().is_some_and(|g| g != ours);
        if other(&uri.token, &r.label) || other(&uri.serial, &r.serial) {
            return Err(Error::InvalidUri {
                uri: uri::redacted(reference),
                reason: format!(
                    "names another token than this store's ({:?}, serial {:?})",
                    r.label, r.serial
                ),
            });
        }
        let object = uri.object.as_deref().ok_or_else(|| Error::InvalidUri {
            uri: uri::redacted(reference),
            reason: "name the key with object= (its CKA_LABEL)".into(),
        })?;
        let name = KeyName::new(object)?;
        let public_key = self.public_key(&name)?;
        if let Some(id) = &uri.id {
            let matches = self.with_session(
                |s| {
                    Ok(!s
                        .find_objects(&[
                            Attribute::Class(ObjectClass::PRIVATE_KEY),
                            Attribute::Label(object.as_bytes().to_vec()),
                            Attribute::Id(id.clone()),
                        ])?
                        .is_empty())
                },
                "C_FindObjects",
            )?;
            if !matches {
                return Err(Error::KeyNotFound(format!("{object} with id {}", hex::encode(id))));
            }
        }
        Ok(KeyInfo {
            name,
            backend: BackendKind::Pkcs11,
            public_key,
            created_at: 0,
            protection: KeyProtection::Hardware,
        })
    }

    fn delete(&self, name: &KeyName) -> Result<(), Error> {
        let deleted = self.with_session(
            |s| {
                self.handles.remove(name)?;
                self.attributes.remove(name)?;
                let mut any = false;
                for class in [ObjectClass::PRIVATE_KEY, ObjectClass::PUBLIC_KEY] {
                    while let Some(object) = Self::find(s, name, class)? {
                        s.destroy_object(object)?;
                        any = true;
                    }
                }
                Ok(any)
            },
            "C_DestroyObject",
        )?;
        self.public_keys.remove(name)?;
        if deleted {
            Ok(())
        } else {
            Err(Error::KeyNotFound(name.to_string()))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ec_points_are_unwrapped_from_their_octet_string() {
        let mut der = vec![0x04, 0x41, 0x04];
        der.extend([7u8; 64]);
        assert_eq!(unwrap_octet_string(&der).map(<[u8]>::len), Some(65));
        assert_eq!(unwrap_octet_string(&der[..10]), None);
        assert_eq!(unwrap_octet_string(&[0x03, 0x01, 0x00]), None);
    }
}
