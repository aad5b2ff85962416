//! The TPM key store itself (feature `tpm`).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use tss_esapi::abstraction::ek;
use tss_esapi::abstraction::AsymmetricAlgorithmSelection;
use tss_esapi::constants::response_code::Tss2ResponseCodeKind;
use tss_esapi::constants::tss::{TPM2_RH_NULL, TPM2_ST_HASHCHECK};
use tss_esapi::constants::SessionType;
use tss_esapi::handles::{AuthHandle, KeyHandle, ObjectHandle, SessionHandle};
use tss_esapi::interface_types::algorithm::HashingAlgorithm;
use tss_esapi::interface_types::ecc::EccCurve;
use tss_esapi::interface_types::key_bits::RsaKeyBits;
use tss_esapi::interface_types::resource_handles::Hierarchy;
use tss_esapi::interface_types::session_handles::{AuthSession, PolicySession};
use tss_esapi::structures::{
    Auth, Data, Digest, EncryptedSecret, HashScheme, HashcheckTicket, IdObject, PcrSelectionList, PcrSlot,
    Private, Public, Signature, SignatureScheme, SymmetricDefinition,
};
use tss_esapi::tcti_ldr::TctiNameConf;
use tss_esapi::traits::{Marshall, UnMarshall};
use tss_esapi::tss2_esys::TPMT_TK_HASHCHECK;
use tss_esapi::Context;
use warrant_attestation::tpm::{
    cached_quote_nonce, Attested, Credential, PcrValue, TpmAttest, TpmCertifyEvidence, TpmHash,
    TpmQuoteEvidence,
};
use warrant_attestation::{BackendKind, EnrollmentEvidence, P256PublicKey, WarrantEvidence};
use zeroize::Zeroizing;

use super::key_blob::KeyBlob;
use super::templates;
use crate::clock::unix_seconds;
use crate::key_cache::KeyCache;
use crate::private_files::{open_private_dir, write_new_private_file};
use crate::reconcile::reconcile_dir;
use crate::sync::Locked;
use crate::{
    Error, KeyInfo, KeyName, KeyProtection, KeyStore, PinSource, Reconciled, TpmIdentity, WarrantScope,
};

/// How the TPM store is reached and what it quotes.
#[derive(Debug, Clone)]
pub struct TpmConfig {
    /// TCTI: `device:/dev/tpmrm0`, `swtpm:host=127.0.0.1,port=2321`, `tabrmd`, ...
    pub tcti: String,
    /// Directory for key blobs (0700).
    pub dir: PathBuf,
    /// PCRs quoted into each warrant, by bank; `None` signs warrants without a quote.
    pub quote_pcrs: Option<Vec<(TpmHash, Vec<u8>)>>,
    /// Reuse a quote for at most this many seconds for the warrants under one grant, bound to
    /// the newest status list the device knows for the grant (a new list means a new quote),
    /// instead of quoting for each warrant; `None`, or no list known: a quote per warrant.
    pub quote_cache_seconds: Option<u64>,
    /// The PIN new keys get as their authValue (and keys made with one need), so the TPM's
    /// dictionary-attack lockout guards it. `None`: keys without a PIN.
    pub pin: Option<PinSource>,
}

/// The default TCTI: the kernel's resource manager.
pub const DEFAULT_TCTI: &str = "device:/dev/tpmrm0";
/// Largest number of device keys kept loaded: swtpm without a resource manager has three
/// transient slots, and the SRK and the AK take two.
const LOADED_KEYS: usize = 1;
/// Quote attempts when a PCR changes between the quote and the read.
const QUOTE_ATTEMPTS: usize = 3;
const AK_FILE: &str = ".attestation-key.tpmkey";

/// A TPM 2.0 key store.
pub struct TpmKeyStore {
    config: TpmConfig,
    pin: Option<Zeroizing<String>>,
    connection: Locked<Option<Connection>>,
    /// Cached quotes by grant id, one per grant (for its newest known status list).
    quotes: Locked<HashMap<[u8; 16], CachedQuote>>,
    /// Public keys by name: every signature asks for one, and the key file need not be read.
    public_keys: KeyCache<P256PublicKey>,
}

/// Most grants with a cached quote at once; beyond, the cache starts over.
const CACHED_GRANTS: usize = 64;

/// A quote serving the warrants under one grant.
struct CachedQuote {
    /// The status list it is bound to.
    status_list: [u8; 32],
    /// When it was made (the warrant time it was made for).
    made_at: u64,
    quote: TpmQuoteEvidence,
}

/// An open TPM context with the SRK loaded and what is cached on it.
struct Connection {
    ctx: Context,
    srk: KeyHandle,
    srk_name: String,
    loaded: Vec<(KeyName, KeyHandle)>,
    ak: Option<KeyHandle>,
}

/// A failure inside an operation: from the TPM (maybe worth one reconnect), or final.
enum Failure {
    Tpm(&'static str, tss_esapi::Error),
    Final(Error),
}

impl From<Error> for Failure {
    fn from(e: Error) -> Self {
        Failure::Final(e)
    }
}

/// Names the operation a TPM result came from, so errors say what was attempted.
trait During<T> {
    fn during(self, operation: &'static str) -> Result<T, Failure>;
}

impl<T> During<T> for tss_esapi::Result<T> {
    fn during(self, operation: &'static str) -> Result<T, Failure> {
        self.map_err(|e| Failure::Tpm(operation, e))
    }
}

fn response_kind(e: &tss_esapi::Error) -> Option<Tss2ResponseCodeKind> {
    match e {
        tss_esapi::Error::Tss2Error(rc) => rc.kind(),
        tss_esapi::Error::WrapperError(_) => None,
    }
}

/// A refused authorisation: retrying would spend another dictionary-attack try.
fn auth_failure(e: &tss_esapi::Error) -> bool {
    matches!(
        response_kind(e),
        Some(Tss2ResponseCodeKind::AuthFail | Tss2ResponseCodeKind::BadAuth | Tss2ResponseCodeKind::Lockout)
    )
}

fn tpm_error(operation: &'static str, e: tss_esapi::Error) -> Error {
    match response_kind(&e) {
        Some(Tss2ResponseCodeKind::Lockout) => Error::TpmLockout,
        Some(Tss2ResponseCodeKind::AuthFail | Tss2ResponseCodeKind::BadAuth) => {
            Error::TpmPinRefused(operation.to_owned())
        }
        _ => Error::Tpm { operation, source: e },
    }
}

fn hash_algorithm(hash: TpmHash) -> HashingAlgorithm {
    match hash {
        TpmHash::Sha1 => HashingAlgorithm::Sha1,
        TpmHash::Sha256 => HashingAlgorithm::Sha256,
        TpmHash::Sha384 => HashingAlgorithm::Sha384,
        TpmHash::Sha512 => HashingAlgorithm::Sha512,
    }
}

/// Runs one command with `count` password sessions (empty or set authValues), then clears
/// them: commands without authorisation areas refuse sessions.
fn with_password<T>(
    ctx: &mut Context,
    count: usize,
    command: impl FnOnce(&mut Context) -> tss_esapi::Result<T>,
) -> tss_esapi::Result<T> {
    let p = Some(AuthSession::Password);
    ctx.set_sessions((p, if count > 1 { p } else { None }, None));
    let result = command(ctx);
    ctx.clear_sessions();
    result
}

impl Connection {
    fn open(tcti: &str) -> Result<Self, Failure> {
        let conf = TctiNameConf::from_str(tcti)
            .map_err(|source| Error::TpmTcti { tcti: tcti.to_owned(), source })?;
        let mut ctx = Context::new(conf).during("connect to the TPM")?;
        let template = templates::storage_root_key().during("build the SRK template")?;
        let srk = with_password(&mut ctx, 1, |ctx| {
            ctx.create_primary(Hierarchy::Owner, template, None, None, None, None)
        })
        .during("derive the storage root key")?
        .key_handle;
        let (_, name, _) = ctx.read_public(srk).during("read the storage root key")?;
        Ok(Self { ctx, srk, srk_name: hex::encode(name.value()), loaded: Vec::new(), ak: None })
    }

    fn flush_keys(&mut self) {
        for (_, handle) in self.loaded.drain(..) {
            let _ = self.ctx.flush_context(handle.into());
        }
    }

    /// Loads a stored blob under the SRK, refusing blobs made under another SRK.
    fn load_blob(&mut self, path: &Path, name: &str) -> Result<KeyHandle, Failure> {
        let blob = KeyBlob::read(path)?;
        if blob.srk_name != self.srk_name {
            return Err(Error::TpmCleared(name.to_owned()).into());
        }
        let corrupt = |reason| Error::CorruptKeyFile { path: path.into(), reason };
        let private =
            Private::try_from(blob.bytes(path, "private")?).map_err(|_| corrupt("bad private blob"))?;
        let public =
            Public::unmarshall(&blob.bytes(path, "public")?).map_err(|_| corrupt("bad public area"))?;
        let srk = self.srk;
        with_password(&mut self.ctx, 1, |ctx| ctx.load(srk, private, public)).during("load the key")
    }

    fn key(&mut self, store: &TpmKeyStore, name: &KeyName) -> Result<KeyHandle, Failure> {
        if let Some((_, handle)) = self.loaded.iter().find(|(n, _)| n == name) {
            return Ok(*handle);
        }
        if self.loaded.len() >= LOADED_KEYS {
            self.flush_keys();
        }
        let path = store.key_path(name)?;
        // Without its PIN the key is not even loaded: a signature attempt would cost a DA try.
        let auth = if KeyBlob::read(&path)?.pin {
            let pin = store.pin.as_ref().ok_or_else(|| Error::TpmPinRequired(name.to_string()))?;
            Some(Auth::try_from(pin.as_bytes().to_vec()).during("set the key's PIN")?)
        } else {
            None
        };
        let handle = self.load_blob(&path, name.as_str())?;
        if let Some(auth) = auth {
            if let Err(e) = self.ctx.tr_set_auth(handle.into(), auth) {
                let _ = self.ctx.flush_context(handle.into());
                return Err(Failure::Tpm("set the key's PIN", e));
            }
        }
        self.loaded.push((name.clone(), handle));
        Ok(handle)
    }

    /// The attestation key, created on first use and loaded once per connection.
    fn attestation_key(&mut self, store: &TpmKeyStore) -> Result<(KeyHandle, Vec<u8>), Failure> {
        let path = store.config.dir.join(AK_FILE);
        if !path.exists() {
            let template = templates::attestation_key().during("build the AK template")?;
            self.create_blob(&path, template, None, "create the attestation key")?;
        }
        let public = KeyBlob::read(&path)?.bytes(&path, "public")?;
        if let Some(handle) = self.ak {
            return Ok((handle, public));
        }
        let handle = self.load_blob(&path, "attestation key")?;
        self.ak = Some(handle);
        Ok((handle, public))
    }

    fn create_blob(
        &mut self,
        path: &Path,
        template: Public,
        pin: Option<&Zeroizing<String>>,
        operation: &'static str,
    ) -> Result<Public, Failure> {
        let srk = self.srk;
        let auth = pin.map(|p| Auth::try_from(p.as_bytes().to_vec())).transpose().during(operation)?;
        let created =
            with_password(&mut self.ctx, 1, |ctx| ctx.create(srk, template, auth, None, None, None))
                .during(operation)?;
        let public_bytes = created.out_public.marshall().during(operation)?;
        let blob = KeyBlob {
            version: 1,
            private: hex::encode(created.out_private.value()),
            public: hex::encode(public_bytes),
            srk_name: self.srk_name.clone(),
            created_at: unix_seconds(),
            pin: pin.is_some(),
        };
        let json = serde_json::to_vec_pretty(&blob).map_err(|_| Error::Crypto("encoding a key file"))?;
        write_new_private_file(path, &json)?;
        Ok(created.out_public)
    }
}

fn p256_of(public: &Public) -> Result<P256PublicKey, Error> {
    let key = tss_esapi::utils::PublicKey::try_from(public.clone())
        .map_err(|source| Error::Tpm { operation: "read a public key", source })?;
    let tss_esapi::utils::PublicKey::Ecc { x, y } = key else {
        return Err(Error::Crypto("the TPM key is not an ECC key"));
    };
    let pad = |v: &[u8]| {
        let mut out = [0u8; 32];
        if v.len() <= 32 {
            out[32 - v.len()..].copy_from_slice(v);
        }
        out
    };
    P256PublicKey::from_coordinates(&pad(&x), &pad(&y))
        .map_err(|_| Error::Crypto("the TPM returned an invalid P-256 key"))
}

impl TpmKeyStore {
    /// Opens the store: creates `dir` (0700) if needed and connects to the TPM, deriving the SRK.
    pub fn open(config: TpmConfig) -> Result<Self, Error> {
        open_private_dir(&config.dir)?;
        // Read once and kept (zeroized on drop): keys are reloaded after a TPM reset.
        let pin = config.pin.as_ref().map(PinSource::read).transpose()?;
        let store = Self {
            config,
            pin,
            connection: Locked::new("TPM connection", None),
            quotes: Locked::new("quote cache", HashMap::new()),
            public_keys: KeyCache::new("public key cache"),
        };
        store.run(|_, _| Ok(()))?;
        Ok(store)
    }

    fn key_path(&self, name: &KeyName) -> Result<PathBuf, Error> {
        let path = self.config.dir.join(format!("{}.tpmkey", name.as_str()));
        if !path.exists() {
            return Err(Error::KeyNotFound(name.to_string()));
        }
        Ok(path)
    }

    /// Runs `op` on the connection, reconnecting once (a TPM restart or reset drops the
    /// connection and every loaded object) unless the TPM refused an authorisation: retrying
    /// that would spend another dictionary-attack try.
    fn run<T>(&self, op: impl Fn(&mut Connection, &Self) -> Result<T, Failure>) -> Result<T, Error> {
        let mut guard = self.connection.lock()?;
        let mut attempt = 0;
        loop {
            attempt += 1;
            let result = match guard.as_mut() {
                Some(conn) => op(conn, self),
                None => match Connection::open(&self.config.tcti) {
                    Ok(conn) => op(guard.insert(conn), self),
                    Err(e) => Err(e),
                },
            };
            match result {
                Ok(value) => return Ok(value),
                Err(Failure::Tpm(operation, e)) if attempt == 1 && !auth_failure(&e) => {
                    tracing::warn!(operation, error = %e, "TPM operation failed; reconnecting once");
                    *guard = None;
                }
                Err(Failure::Tpm(operation, e)) => return Err(tpm_error(operation, e)),
                Err(Failure::Final(e)) => return Err(e),
            }
        }
    }

    fn certify(&self, name: &KeyName, nonce: &[u8; 32]) -> Result<TpmCertifyEvidence, Error> {
        let ek_certificate = self.ek_certificate()?;
        self.run(|conn, store| {
            let (ak, ak_public) = conn.attestation_key(store)?;
            let key = conn.key(store, name)?;
            let path = store.key_path(name)?;
            let key_public = KeyBlob::read(&path)?.bytes(&path, "public")?;
            let nonce = Data::try_from(nonce.to_vec()).during("certify")?;
            let scheme = SignatureScheme::EcDsa { hash_scheme: HashScheme::new(HashingAlgorithm::Sha256) };
            let (attest, signature) = with_password(&mut conn.ctx, 2, |ctx| {
                ctx.certify(ObjectHandle::from(key), ak, nonce, scheme)
            })
            .during("certify the key")?;
            Ok(TpmCertifyEvidence {
                ak_public,
                key_public,
                attest: attest.marshall().during("certify")?,
                signature: signature.marshall().during("certify")?,
                ek_certificate: ek_certificate.clone(),
            })
        })
    }

    /// A quote bound to the grant and `status_list`, made again when the list changes or the
    /// quote is `period` seconds old.
    fn cached_quote(
        &self,
        grant_id: [u8; 16],
        status_list: [u8; 32],
        now: u64,
        period: u64,
        banks: &[(TpmHash, Vec<u8>)],
    ) -> Result<TpmQuoteEvidence, Error> {
        if let Some(cached) = self.quotes.lock()?.get(&grant_id) {
            if cached.status_list == status_list && now.saturating_sub(cached.made_at) < period {
                return Ok(cached.quote.clone());
            }
        }
        let mut quote = self.quote(&cached_quote_nonce(&grant_id, &status_list), banks)?;
        quote.status_list = Some(status_list);
        let mut cache = self.quotes.lock()?;
        if cache.len() >= CACHED_GRANTS {
            cache.clear();
        }
        cache.insert(grant_id, CachedQuote { status_list, made_at: now, quote: quote.clone() });
        Ok(quote)
    }

    fn quote(&self, nonce: &[u8; 32], banks: &[(TpmHash, Vec<u8>)]) -> Result<TpmQuoteEvidence, Error> {
        self.run(|conn, store| {
            let (ak, _) = conn.attestation_key(store)?;
            let mut builder = PcrSelectionList::builder();
            for (hash, pcrs) in banks {
                let slots: Vec<PcrSlot> =
                    pcrs.iter().filter_map(|&i| PcrSlot::try_from(1u32 << i).ok()).collect();
                builder = builder.with_selection(hash_algorithm(*hash), &slots);
            }
            let selection = builder.build().during("select PCRs")?;
            for _ in 0..QUOTE_ATTEMPTS {
                let data = Data::try_from(nonce.to_vec()).during("quote")?;
                let scheme =
                    SignatureScheme::EcDsa { hash_scheme: HashScheme::new(HashingAlgorithm::Sha256) };
                let (attest, signature) =
                    with_password(&mut conn.ctx, 1, |ctx| ctx.quote(ak, data, scheme, selection.clone()))
                        .during("quote the PCRs")?;
                let pcrs = read_pcrs(&mut conn.ctx, banks)?;
                let attest = attest.marshall().during("quote")?;
                // A PCR extended between the quote and the read: quote again.
                let parsed = TpmAttest::parse(&attest)
                    .map_err(|e| Error::TpmUnexpected { operation: "quote", reason: e.to_string() })?;
                if let Attested::Quote { pcr_digest, .. } = &parsed.attested {
                    if &warrant_attestation::tpm::pcr_digest(TpmHash::Sha256, &pcrs) == pcr_digest {
                        let signature = signature.marshall().during("quote")?;
                        return Ok(TpmQuoteEvidence { attest, signature, pcrs, status_list: None });
                    }
                }
            }
            Err(Error::TpmUnexpected {
                operation: "quote",
                reason: "the PCRs kept changing while quoting".into(),
            }
            .into())
        })
    }

    /// The EK certificate from NV (RSA 2048 index first, then ECC P-256).
    fn ek_certificate(&self) -> Result<Vec<u8>, Error> {
        self.run(|conn, _| {
            for alg in [AsymmetricAlgorithmSelection::Rsa(RsaKeyBits::Rsa2048), AsymmetricAlgorithmSelection::Ecc(EccCurve::NistP256)] {
                if let Ok(cert) = ek::retrieve_ek_pubcert(&mut conn.ctx, alg) {
                    return Ok(cert);
                }
            }
            Err(Error::Unsupported(
                "this TPM has no EK certificate in NV (indices 0x01c00002, 0x01c0000a): it cannot be attested".into(),
            )
            .into())
        })
    }
}

fn read_pcrs(ctx: &mut Context, banks: &[(TpmHash, Vec<u8>)]) -> Result<Vec<PcrValue>, Failure> {
    let mut out = Vec::new();
    for (hash, pcrs) in banks {
        // TPM2_PCR_Read returns at most eight digests per call.
        for chunk in pcrs.chunks(8) {
            let slots: Vec<PcrSlot> =
                chunk.iter().filter_map(|&i| PcrSlot::try_from(1u32 << i).ok()).collect();
            let selection = PcrSelectionList::builder()
                .with_selection(hash_algorithm(*hash), &slots)
                .build()
                .during("select PCRs")?;
            let (_, _, digests) = ctx.pcr_read(selection).during("read PCRs")?;
            if digests.value().len() != chunk.len() {
                return Err(Error::TpmUnexpected {
                    operation: "read PCRs",
                    reason: format!("the TPM has no {} bank for all of {chunk:?}", hash.as_str()),
                }
                .into());
            }
            for (index, digest) in chunk.iter().zip(digests.value()) {
                out.push(PcrValue { hash: *hash, index: *index, value: digest.value().to_vec() });
            }
        }
    }
    Ok(out)
}

impl KeyStore for TpmKeyStore {
    fn backend(&self) -> BackendKind {
        BackendKind::Tpm
    }

    fn create(&self, name: &KeyName) -> Result<KeyInfo, Error> {
        let path = self.config.dir.join(format!("{}.tpmkey", name.as_str()));
        if path.exists() {
            return Err(Error::KeyExists(name.to_string()));
        }
        let public = self.run(|conn, store| {
            let template = templates::device_key().during("build the key template")?;
            conn.create_blob(&path, template, store.pin.as_ref(), "create the key")
        })?;
        Ok(KeyInfo {
            name: name.clone(),
            backend: BackendKind::Tpm,
            public_key: p256_of(&public)?,
            created_at: KeyBlob::read(&path)?.created_at,
            protection: KeyProtection::Hardware,
        })
    }

    fn list(&self) -> Result<Vec<KeyInfo>, Error> {
        let dir = &self.config.dir;
        let entries = std::fs::read_dir(dir).map_err(|source| Error::Io { path: dir.clone(), source })?;
        let mut out = Vec::new();
        for entry in entries {
            let path = entry.map_err(|source| Error::Io { path: dir.clone(), source })?.path();
            let Some(stem) =
                path.file_name().and_then(|n| n.to_str()).and_then(|n| n.strip_suffix(".tpmkey"))
            else {
                continue;
            };
            let Ok(name) = KeyName::new(stem) else { continue };
            out.push(self.info(&name, &path)?);
        }
        out.sort_by(|a, b| a.name.as_str().cmp(b.name.as_str()));
        Ok(out)
    }

    fn public_key(&self, name: &KeyName) -> Result<P256PublicKey, Error> {
        self.public_keys.get_or_load(name, || Ok(self.info(name, &self.key_path(name)?)?.public_key))
    }

    fn sign_digest(&self, name: &KeyName, digest: &[u8; 32]) -> Result<[u8; 64], Error> {
        self.run(|conn, store| {
            let key = conn.key(store, name)?;
            let validation = HashcheckTicket::try_from(TPMT_TK_HASHCHECK {
                tag: TPM2_ST_HASHCHECK,
                hierarchy: TPM2_RH_NULL,
                digest: Default::default(),
            })
            .during("sign")?;
            let digest = Digest::try_from(digest.to_vec()).during("sign")?;
            let signature = with_password(&mut conn.ctx, 1, |ctx| {
                ctx.sign(key, digest, SignatureScheme::Null, validation)
            })
            .during("sign")?;
            let Signature::EcDsa(ecc) = signature else {
                return Err(Error::Crypto("the TPM returned a non-ECDSA signature").into());
            };
            let (r, s) = (ecc.signature_r().value(), ecc.signature_s().value());
            if r.len() > 32 || s.len() > 32 {
                return Err(Error::Crypto("the TPM returned an oversized ECDSA signature").into());
            }
            let mut out = [0u8; 64];
            out[32 - r.len()..32].copy_from_slice(r);
            out[64 - s.len()..].copy_from_slice(s);
            Ok(out)
        })
    }

    fn enrollment_evidence(&self, name: &KeyName, challenge: &[u8; 32]) -> Result<EnrollmentEvidence, Error> {
        Ok(EnrollmentEvidence::TpmCertify(self.certify(name, challenge)?))
    }

    fn warrant_evidence(
        &self,
        _name: &KeyName,
        scope: &WarrantScope,
        binding: &[u8; 32],
    ) -> Result<WarrantEvidence, Error> {
        let quote = match (&self.config.quote_pcrs, self.config.quote_cache_seconds) {
            (None, _) => return Ok(WarrantEvidence::TpmKey),
            (Some(banks), Some(period)) => match scope.status_list {
                Some(list) => self.cached_quote(scope.grant_id, list, scope.now, period, banks)?,
                // Never a predictable nonce: without a list to bind to, nothing could show a
                // reused quote is fresh.
                None => {
                    tracing::info!(
                        grant = %hex::encode(scope.grant_id),
                        "no status list known for the grant: quoting for this warrant alone \
                         (a cached quote is bound to the authority's newest status list)"
                    );
                    self.quote(binding, banks)?
                }
            },
            (Some(banks), None) => self.quote(binding, banks)?,
        };
        Ok(WarrantEvidence::TpmQuote(quote))
    }

    fn delete(&self, name: &KeyName) -> Result<(), Error> {
        let path = self.key_path(name)?;
        self.public_keys.remove(name)?;
        let mut guard = self.connection.lock()?;
        if let Some(conn) = guard.as_mut() {
            if let Some(at) = conn.loaded.iter().position(|(n, _)| n == name) {
                let (_, handle) = conn.loaded.remove(at);
                let _ = conn.ctx.flush_context(handle.into());
            }
        }
        std::fs::remove_file(&path).map_err(|source| Error::Io { path, source })
    }

    /// Key blobs here are warrant's own (wrapped by this TPM's storage key): orphans are
    /// quarantined, `.tmp-` files removed; the attestation key's file is not a key name.
    fn reconcile(&self, recorded: &dyn Fn(&KeyName) -> bool) -> Result<Vec<Reconciled>, Error> {
        reconcile_dir(&self.config.dir, ".tpmkey", recorded)
    }

    fn tpm_identity(&self) -> Result<TpmIdentity, Error> {
        let ek_certificate = self.ek_certificate()?;
        let ak_public = self.run(|conn, store| Ok(conn.attestation_key(store)?.1))?;
        Ok(TpmIdentity { ek_certificate, ak_public })
    }

    fn activate_credential(&self, credential: &Credential) -> Result<Zeroizing<Vec<u8>>, Error> {
        self.run(|conn, store| {
            let (ak, _) = conn.attestation_key(store)?;
            // The EK needs a transient slot.
            conn.flush_keys();
            let ek = ek::create_ek_object_2(
                &mut conn.ctx,
                AsymmetricAlgorithmSelection::Rsa(RsaKeyBits::Rsa2048),
                None,
            )
            .during("load the endorsement key")?;
            let result = activate(conn, ak, ek, credential);
            let _ = conn.ctx.flush_context(ek.into());
            result
        })
    }
}

/// TPM2_ActivateCredential: the AK with a password session, the EK with a policy session that
/// satisfies its PolicySecret(endorsement) policy.
fn activate(
    conn: &mut Connection,
    ak: KeyHandle,
    ek: KeyHandle,
    credential: &Credential,
) -> Result<Zeroizing<Vec<u8>>, Failure> {
    let id_object = IdObject::try_from(credential.id_object.clone()).during("read the credential")?;
    let secret =
        EncryptedSecret::try_from(credential.encrypted_secret.clone()).during("read the credential")?;
    let session = conn
        .ctx
        .start_auth_session(
            None,
            None,
            None,
            SessionType::Policy,
            SymmetricDefinition::AES_128_CFB,
            HashingAlgorithm::Sha256,
        )
        .during("start a policy session")?
        .ok_or(Failure::Final(Error::Crypto("the TPM returned no session")))?;
    let result = (|| {
        let policy = PolicySession::try_from(session).during("start a policy session")?;
        with_password(&mut conn.ctx, 1, |ctx| {
            ctx.policy_secret(
                policy,
                AuthHandle::Endorsement,
                Default::default(),
                Default::default(),
                Default::default(),
                None,
            )
        })
        .during("satisfy the EK policy")?;
        conn.ctx.set_sessions((Some(AuthSession::Password), Some(session), None));
        let digest =
            conn.ctx.activate_credential(ak, ek, id_object, secret).during("activate the credential")?;
        Ok(Zeroizing::new(digest.value().to_vec()))
    })();
    conn.ctx.clear_sessions();
    let _ = conn.ctx.flush_context(SessionHandle::from(session).into());
    result
}

impl TpmKeyStore {
    fn info(&self, name: &KeyName, path: &Path) -> Result<KeyInfo, Error> {
        let blob = KeyBlob::read(path)?;
        let public = Public::unmarshall(&blob.bytes(path, "public")?)
            .map_err(|_| Error::CorruptKeyFile { path: path.into(), reason: "bad public area" })?;
        Ok(KeyInfo {
            name: name.clone(),
            backend: BackendKind::Tpm,
            public_key: p256_of(&public)?,
            created_at: blob.created_at,
            protection: KeyProtection::Hardware,
        })
    }
}
