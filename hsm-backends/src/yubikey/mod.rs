//! YubiKey PIV key store (feature `yubikey`), through the `yubikey` crate 0.8 over PC/SC.
//!
//! Keys are P-256 pairs generated in a PIV slot (from the configured list: 9a, 9c, 9d, 9e,
//! retired 82-95) with a PIN and touch policy; a key's name maps to its card and slot in
//! `<dir>/<name>.yubikey`. The card is found by serial when several are present; readers whose
//! card has no PIV applet are skipped. The management key is the PIN-protected one that
//! `warrant yubikey setup` stores on the card. Enrollment evidence is the slot's attestation
//! certificate and the device's f9 certificate; warrants are vouched for by the key's own
//! signature (the grant holds the appraised attestation).

mod setup;

/// The yubikey crate this store is built on (for benchmarks against the bare library).
pub use ::yubikey;

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Mutex;
use std::time::{SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};
use warrant_attestation::piv::PivEvidence;
use warrant_attestation::{BackendKind, Evidence, P256PublicKey};
use yubikey::piv::{self, AlgorithmId, SlotId};
use yubikey::{Certificate, MgmKey, PinPolicy, Serial, TouchPolicy, YubiKey};
use zeroize::Zeroizing;

use crate::private_files::{open_private_dir, write_new_private_file};
use crate::{Error, EvidencePurpose, KeyInfo, KeyName, KeyProtection, KeyStore, PinSource};

pub use setup::{setup, SetupOptions, SetupReport};

/// How the YubiKey store finds its card and makes keys.
#[derive(Debug, Clone)]
pub struct YubikeyConfig {
    /// The card's serial; `None`: the one YubiKey present.
    pub serial: Option<u32>,
    /// Directory of key records (0700).
    pub dir: PathBuf,
    /// Slots new keys may take, in order (e.g. `["9c", "82", "83"]`).
    pub slots: Vec<u8>,
    /// The PIV PIN.
    pub pin: PinSource,
    /// PIN policy of new keys: `never`, `once`, `always`.
    pub pin_policy: String,
    /// Touch policy of new keys: `never`, `always`, `cached`.
    pub touch_policy: String,
}

/// The default slots: the retired key-management slots, which nothing else uses.
pub fn default_slots() -> Vec<u8> {
    (0x82..=0x95).collect()
}

/// Parses a slot name: `9a`, `9c`, `9d`, `9e`, `82`-`95`.
pub fn parse_slot(name: &str) -> Result<u8, String> {
    let slot = u8::from_str_radix(name, 16)
        .map_err(|_| format!("{name:?} is not a slot (9a, 9c, 9d, 9e, 82-95)"))?;
    match slot {
        0x9a | 0x9c | 0x9d | 0x9e | 0x82..=0x95 if name.len() == 2 => Ok(slot),
        _ => Err(format!("{name:?} is not a key slot (9a, 9c, 9d, 9e, 82-95)")),
    }
}

/// One key's record: which card and slot hold it.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct KeyRecord {
    version: u32,
    serial: u32,
    slot: String,
    public: String,
    created_at: u64,
}

/// A YubiKey PIV key store.
pub struct YubikeyStore {
    config: YubikeyConfig,
    pin: Zeroizing<String>,
    pin_policy: PinPolicy,
    touch_policy: TouchPolicy,
    card: Mutex<Option<YubiKey>>,
    evidence: Mutex<HashMap<KeyName, PivEvidence>>,
    /// Slot and public key by name: every signature needs both, and the record need not be read.
    keys: Mutex<HashMap<KeyName, (u8, P256PublicKey)>>,
}

fn card_error(operation: &'static str, e: yubikey::Error) -> Error {
    match e {
        yubikey::Error::WrongPin { tries } => Error::YubikeyPinRefused { tries },
        yubikey::Error::PinLocked => Error::YubikeyPinBlocked,
        yubikey::Error::NotFound => {
            Error::YubikeyNotFound("no YubiKey is present (is it inserted, and is pcscd running?)".into())
        }
        other => Error::Yubikey { operation, reason: other.to_string() },
    }
}

/// Whether an error may be a lost card or connection, worth one reopen: PC/SC errors, and a
/// refused operation after another process reset the card (its PIN status is then gone; the
/// reopen verifies the PIN again, and a wrong PIN is reported as such).
fn connection_lost(e: &yubikey::Error) -> bool {
    matches!(
        e,
        yubikey::Error::PcscError { .. }
            | yubikey::Error::GenericError
            | yubikey::Error::NotFound
            | yubikey::Error::AuthenticationError
    )
}

fn slot_id(slot: u8) -> Result<SlotId, Error> {
    SlotId::try_from(slot).map_err(|_| Error::Unsupported(format!("slot {slot:02x} is not a PIV key slot")))
}

fn now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)
}

pub(crate) fn parse_pin_policy(name: &str) -> Result<PinPolicy, Error> {
    match name {
        "never" => Ok(PinPolicy::Never),
        "once" => Ok(PinPolicy::Once),
        "always" => Ok(PinPolicy::Always),
        other => Err(Error::Unsupported(format!("unknown PIN policy {other:?} (never, once, always)"))),
    }
}

pub(crate) fn parse_touch_policy(name: &str) -> Result<TouchPolicy, Error> {
    match name {
        "never" => Ok(TouchPolicy::Never),
        "always" => Ok(TouchPolicy::Always),
        "cached" => Ok(TouchPolicy::Cached),
        other => Err(Error::Unsupported(format!("unknown touch policy {other:?} (never, always, cached)"))),
    }
}

/// Opens the card with `serial`, or the only card with a PIV applet.
pub(crate) fn open_card(serial: Option<u32>) -> Result<YubiKey, yubikey::Error> {
    match serial {
        Some(serial) => YubiKey::open_by_serial(Serial(serial)),
        // `YubiKey::open` skips readers whose card does not answer as a PIV YubiKey, and
        // refuses when two do.
        None => YubiKey::open(),
    }
}

impl YubikeyStore {
    /// Opens the store: the record directory (0700), the PIN, and the card (PIN verified).
    pub fn open(config: YubikeyConfig) -> Result<Self, Error> {
        open_private_dir(&config.dir)?;
        if config.slots.is_empty() {
            return Err(Error::Unsupported("the YubiKey store needs at least one slot for keys".into()));
        }
        let store = Self {
            pin: config.pin.read()?,
            pin_policy: parse_pin_policy(&config.pin_policy)?,
            touch_policy: parse_touch_policy(&config.touch_policy)?,
            config,
            card: Mutex::new(None),
            evidence: Mutex::new(HashMap::new()),
            keys: Mutex::new(HashMap::new()),
        };
        store.with_card("open the card", |_| Ok(()))?;
        Ok(store)
    }

    /// Runs `op` on the open card (PIN verified). A lost card or connection (removed and
    /// re-inserted, reset by another process) is reopened once; a refused PIN never retried.
    fn with_card<T>(
        &self,
        operation: &'static str,
        op: impl Fn(&mut YubiKey) -> Result<T, yubikey::Error>,
    ) -> Result<T, Error> {
        let mut guard = self.card.lock().map_err(|_| Error::Crypto("YubiKey lock poisoned"))?;
        for attempt in 0..2 {
            if guard.is_none() {
                let mut card = open_card(self.config.serial).map_err(|e| card_error("open the card", e))?;
                // The handle resets the card when dropped, so the PIN is verified on each open.
                card.verify_pin(self.pin.as_bytes()).map_err(|e| card_error("verify the PIN", e))?;
                *guard = Some(card);
            }
            let Some(card) = guard.as_mut() else { continue };
            if self.pin_policy == PinPolicy::Always {
                // An askpass asks the person each time, as the key's policy means; other
                // sources are unattended by nature.
                let fresh = match &self.config.pin {
                    PinSource::Askpass(_) => Some(self.config.pin.read()?),
                    _ => None,
                };
                let pin = fresh.as_ref().unwrap_or(&self.pin);
                card.verify_pin(pin.as_bytes()).map_err(|e| card_error("verify the PIN", e))?;
            }
            match op(card) {
                Ok(value) => return Ok(value),
                Err(e) if attempt == 0 && connection_lost(&e) => {
                    tracing::warn!(operation, error = %e, "YubiKey operation failed; reopening the card once");
                    *guard = None;
                }
                Err(e) => return Err(card_error(operation, e)),
            }
        }
        Err(Error::YubikeyNotFound("the card could not be reopened".into()))
    }

    fn record_path(&self, name: &KeyName) -> PathBuf {
        self.config.dir.join(format!("{}.yubikey", name.as_str()))
    }

    fn record(&self, name: &KeyName) -> Result<(PathBuf, KeyRecord), Error> {
        let path = self.record_path(name);
        let bytes = match std::fs::read(&path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(Error::KeyNotFound(name.to_string()))
            }
            Err(source) => return Err(Error::Io { path, source }),
        };
        let record: KeyRecord = serde_json::from_slice(&bytes)
            .map_err(|_| Error::CorruptKeyFile { path: path.clone(), reason: "not a YubiKey key record" })?;
        Ok((path, record))
    }

    fn records(&self) -> Result<Vec<(KeyName, KeyRecord)>, Error> {
        let dir = &self.config.dir;
        let mut out = Vec::new();
        for entry in std::fs::read_dir(dir).map_err(|source| Error::Io { path: dir.clone(), source })? {
            let path = entry.map_err(|source| Error::Io { path: dir.clone(), source })?.path();
            let Some(stem) =
                path.file_name().and_then(|n| n.to_str()).and_then(|n| n.strip_suffix(".yubikey"))
            else {
                continue;
            };
            let Ok(name) = KeyName::new(stem) else { continue };
            let (_, record) = self.record(&name)?;
            out.push((name, record));
        }
        out.sort_by(|a, b| a.0.as_str().cmp(b.0.as_str()));
        Ok(out)
    }

    fn slot_of(&self, name: &KeyName) -> Result<(u8, P256PublicKey), Error> {
        let cache = || self.keys.lock().map_err(|_| Error::Crypto("key cache lock poisoned"));
        if let Some(key) = cache()?.get(name) {
            return Ok(key.clone());
        }
        let key = self.read_slot(name)?;
        cache()?.insert(name.clone(), key.clone());
        Ok(key)
    }

    fn read_slot(&self, name: &KeyName) -> Result<(u8, P256PublicKey), Error> {
        let (path, record) = self.record(name)?;
        let corrupt = |reason| Error::CorruptKeyFile { path: path.clone(), reason };
        let slot = parse_slot(&record.slot).map_err(|_| corrupt("bad slot"))?;
        let public = hex::decode(&record.public).map_err(|_| corrupt("bad public key"))?;
        let public = P256PublicKey::from_sec1(&public).map_err(|_| corrupt("bad public key"))?;
        Ok((slot, public))
    }

    fn info(name: &KeyName, record: &KeyRecord) -> Result<KeyInfo, Error> {
        let public =
            hex::decode(&record.public).map_err(|_| Error::Crypto("bad public key in a key record"))?;
        Ok(KeyInfo {
            name: name.clone(),
            backend: BackendKind::Yubikey,
            public_key: P256PublicKey::from_sec1(&public)
                .map_err(|_| Error::Crypto("bad public key in a key record"))?,
            created_at: record.created_at,
            protection: KeyProtection::Hardware,
        })
    }

    fn attestation(&self, name: &KeyName) -> Result<PivEvidence, Error> {
        let cache = || self.evidence.lock().map_err(|_| Error::Crypto("evidence cache lock poisoned"));
        if let Some(e) = cache()?.get(name) {
            return Ok(e.clone());
        }
        let (slot, _) = self.slot_of(name)?;
        let slot = slot_id(slot)?;
        let evidence = self.with_card("attest the key", |card| {
            let slot_certificate = piv::attest(card, slot)?.to_vec();
            let f9_certificate = Certificate::read(card, SlotId::Attestation)?;
            use x509_cert::der::Encode;
            let f9_certificate = f9_certificate.cert.to_der().map_err(|_| yubikey::Error::ParseError)?;
            Ok(PivEvidence { slot_certificate, f9_certificate })
        })?;
        cache()?.insert(name.clone(), evidence.clone());
        Ok(evidence)
    }
}

impl KeyStore for YubikeyStore {
    fn backend(&self) -> BackendKind {
        BackendKind::Yubikey
    }

    fn create(&self, name: &KeyName) -> Result<KeyInfo, Error> {
        let path = self.record_path(name);
        if path.exists() {
            return Err(Error::KeyExists(name.to_string()));
        }
        let used: Vec<String> = self.records()?.into_iter().map(|(_, r)| r.slot).collect();
        let slot =
            self.config.slots.iter().copied().find(|s| !used.contains(&format!("{s:02x}"))).ok_or_else(
                || {
                    Error::Unsupported(
                        "every configured YubiKey slot holds a key: delete one or configure more slots"
                            .into(),
                    )
                },
            )?;
        let slot_id = slot_id(slot)?;
        let (pin_policy, touch_policy) = (self.pin_policy, self.touch_policy);
        let (serial, spki) = self.with_card("generate a key", |card| {
            let mgm = MgmKey::get_protected(card)?;
            card.authenticate(mgm)?;
            let spki = piv::generate(card, slot_id, AlgorithmId::EccP256, pin_policy, touch_policy)?;
            Ok((card.serial().0, spki))
        })?;
        let point = spki.subject_public_key.raw_bytes();
        let public = P256PublicKey::from_sec1(point)
            .map_err(|_| Error::Crypto("the card returned an invalid P-256 key"))?;
        let record = KeyRecord {
            version: 1,
            serial,
            slot: format!("{slot:02x}"),
            public: hex::encode(public.sec1()),
            created_at: now(),
        };
        write_new_private_file(
            &path,
            &serde_json::to_vec_pretty(&record).map_err(|_| Error::Crypto("encoding a key record"))?,
        )?;
        Self::info(name, &record)
    }

    fn list(&self) -> Result<Vec<KeyInfo>, Error> {
        self.records()?.iter().map(|(name, record)| Self::info(name, record)).collect()
    }

    fn public_key(&self, name: &KeyName) -> Result<P256PublicKey, Error> {
        Ok(self.slot_of(name)?.1)
    }

    fn sign_digest(&self, name: &KeyName, digest: &[u8; 32]) -> Result<[u8; 64], Error> {
        let (slot, _) = self.slot_of(name)?;
        let slot = slot_id(slot)?;
        // Slot 9c is the PIV digital-signature slot: cards may want the PIN right before each use.
        let pin_each_time = slot == SlotId::Signature;
        let der = self.with_card("sign", |card| {
            if pin_each_time {
                card.verify_pin(self.pin.as_bytes())?;
            }
            piv::sign_data(card, digest, AlgorithmId::EccP256, slot).map(|b| b.to_vec())
        })?;
        let signature = p256::ecdsa::Signature::from_der(&der)
            .map_err(|_| Error::Crypto("the card returned a malformed ECDSA signature"))?;
        let mut out = [0u8; 64];
        out.copy_from_slice(&signature.to_bytes());
        Ok(out)
    }

    fn evidence(
        &self,
        name: &KeyName,
        purpose: EvidencePurpose,
        _nonce: &[u8; 32],
    ) -> Result<Evidence, Error> {
        match purpose {
            EvidencePurpose::Enrollment => Ok(Evidence::YubikeyPiv(self.attestation(name)?)),
            EvidencePurpose::Warrant { .. } => Ok(Evidence::YubikeyKey),
        }
    }

    fn delete(&self, name: &KeyName) -> Result<(), Error> {
        // The key stays in its slot until a new key overwrites it; warrant forgets it.
        let (path, _) = self.record(name)?;
        self.evidence.lock().map_err(|_| Error::Crypto("evidence cache lock poisoned"))?.remove(name);
        self.keys.lock().map_err(|_| Error::Crypto("key cache lock poisoned"))?.remove(name);
        std::fs::remove_file(&path).map_err(|source| Error::Io { path, source })
    }
}
