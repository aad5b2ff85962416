//! The YubiKey key store itself (feature `yubikey`).

use std::path::PathBuf;

use serde::{Deserialize, Serialize};
use warrant_attestation::piv::PivEvidence;
use warrant_attestation::{BackendKind, EnrollmentEvidence, P256PublicKey, WarrantEvidence};
use yubikey::piv::{self, AlgorithmId, SlotId};
use yubikey::{Certificate, MgmKey, Serial, YubiKey};
use zeroize::Zeroizing;

use super::{PinPolicy, PivSlot, TouchPolicy};
use crate::clock::unix_seconds;
use crate::key_cache::KeyCache;
use crate::private_files::{open_private_dir, write_new_private_file};
use crate::sync::Locked;
use crate::{Error, KeyInfo, KeyName, KeyProtection, KeyStore, PinSource, WarrantScope};

/// How the YubiKey store finds its card and makes keys.
#[derive(Debug, Clone)]
pub struct YubikeyConfig {
    /// The card's serial; `None`: the one YubiKey present.
    pub serial: Option<u32>,
    /// Directory of key records (0700).
    pub dir: PathBuf,
    /// Slots new keys may take, in order.
    pub slots: Vec<PivSlot>,
    /// The PIV PIN.
    pub pin: PinSource,
    /// PIN policy of new keys.
    pub pin_policy: PinPolicy,
    /// Touch policy of new keys.
    pub touch_policy: TouchPolicy,
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
    card: Locked<Option<YubiKey>>,
    evidence: KeyCache<PivEvidence>,
    /// Slot and public key by name: every signature needs both, and the record need not be read.
    keys: KeyCache<(u8, P256PublicKey)>,
}

pub(super) fn card_error(operation: &'static str, e: yubikey::Error) -> Error {
    match e {
        yubikey::Error::WrongPin { tries } => Error::YubikeyPinRefused { tries },
        yubikey::Error::PinLocked => Error::YubikeyPinBlocked,
        yubikey::Error::NotFound => {
            Error::YubikeyNotFound("no YubiKey is present (is it inserted, and is pcscd running?)".into())
        }
        source => Error::Yubikey { operation, source },
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

fn piv_pin_policy(policy: PinPolicy) -> yubikey::PinPolicy {
    match policy {
        PinPolicy::Never => yubikey::PinPolicy::Never,
        PinPolicy::Once => yubikey::PinPolicy::Once,
        PinPolicy::Always => yubikey::PinPolicy::Always,
    }
}

fn piv_touch_policy(policy: TouchPolicy) -> yubikey::TouchPolicy {
    match policy {
        TouchPolicy::Never => yubikey::TouchPolicy::Never,
        TouchPolicy::Always => yubikey::TouchPolicy::Always,
        TouchPolicy::Cached => yubikey::TouchPolicy::Cached,
    }
}

/// Opens the card with `serial`, or the only card with a PIV applet.
pub(super) fn open_card(serial: Option<u32>) -> Result<YubiKey, yubikey::Error> {
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
            config,
            card: Locked::new("YubiKey connection", None),
            evidence: KeyCache::new("attestation cache"),
            keys: KeyCache::new("key slot cache"),
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
        let mut guard = self.card.lock()?;
        for attempt in 0..2 {
            if guard.is_none() {
                let mut card = open_card(self.config.serial).map_err(|e| card_error("open the card", e))?;
                // The handle resets the card when dropped, so the PIN is verified on each open.
                card.verify_pin(self.pin.as_bytes()).map_err(|e| card_error("verify the PIN", e))?;
                *guard = Some(card);
            }
            let Some(card) = guard.as_mut() else { continue };
            if self.config.pin_policy == PinPolicy::Always {
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
        self.keys.get_or_load(name, || self.read_slot(name))
    }

    fn read_slot(&self, name: &KeyName) -> Result<(u8, P256PublicKey), Error> {
        let (path, record) = self.record(name)?;
        let corrupt = |reason| Error::CorruptKeyFile { path: path.clone(), reason };
        let slot = PivSlot::parse(&record.slot).map_err(|_| corrupt("bad slot"))?.number();
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
        self.evidence.get_or_load(name, || self.read_attestation(name))
    }

    fn read_attestation(&self, name: &KeyName) -> Result<PivEvidence, Error> {
        let (slot, _) = self.slot_of(name)?;
        let slot = slot_id(slot)?;
        self.with_card("attest the key", |card| {
            let slot_certificate = piv::attest(card, slot)?.to_vec();
            let f9_certificate = Certificate::read(card, SlotId::Attestation)?;
            use x509_cert::der::Encode;
            let f9_certificate = f9_certificate.cert.to_der().map_err(|_| yubikey::Error::ParseError)?;
            Ok(PivEvidence { slot_certificate, f9_certificate })
        })
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
        let slot = self
            .config
            .slots
            .iter()
            .map(|s| s.number())
            .find(|s| !used.contains(&format!("{s:02x}")))
            .ok_or_else(|| {
                Error::Unsupported(
                    "every configured YubiKey slot holds a key: delete one or configure more slots".into(),
                )
            })?;
        let slot_id = slot_id(slot)?;
        let pin_policy = piv_pin_policy(self.config.pin_policy);
        let touch_policy = piv_touch_policy(self.config.touch_policy);
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
            created_at: unix_seconds(),
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

    fn enrollment_evidence(
        &self,
        name: &KeyName,
        _challenge: &[u8; 32],
    ) -> Result<EnrollmentEvidence, Error> {
        Ok(EnrollmentEvidence::YubikeyPiv(self.attestation(name)?))
    }

    fn warrant_evidence(
        &self,
        _name: &KeyName,
        _scope: &WarrantScope,
        _binding: &[u8; 32],
    ) -> Result<WarrantEvidence, Error> {
        Ok(WarrantEvidence::YubikeyKey)
    }

    fn delete(&self, name: &KeyName) -> Result<(), Error> {
        // The key stays in its slot until a new key overwrites it; warrant forgets it.
        let (path, _) = self.record(name)?;
        self.evidence.remove(name)?;
        self.keys.remove(name)?;
        std::fs::remove_file(&path).map_err(|source| Error::Io { path, source })
    }
}
