use warrant_attestation::tpm::Credential;
use warrant_attestation::{BackendKind, EnrollmentEvidence, P256PublicKey, WarrantEvidence};
use zeroize::Zeroizing;

use crate::{Error, KeyName, Reconciled};

/// How a stored key's private part is protected at rest.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyProtection {
    /// By file permissions only.
    FilePermissions,
    /// Sealed with a passphrase (Argon2id + XChaCha20-Poly1305).
    Passphrase,
    /// Held by hardware; never leaves it.
    Hardware,
}

impl KeyProtection {
    /// A short name for display.
    pub fn as_str(self) -> &'static str {
        match self {
            KeyProtection::FilePermissions => "file-permissions",
            KeyProtection::Passphrase => "passphrase",
            KeyProtection::Hardware => "hardware",
        }
    }
}

/// What a key store says about one key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyInfo {
    /// Its name in the store.
    pub name: KeyName,
    /// The backend holding it.
    pub backend: BackendKind,
    /// Its public key.
    pub public_key: P256PublicKey,
    /// Creation time, seconds since the epoch.
    pub created_at: u64,
    /// How the private part is protected.
    pub protection: KeyProtection,
}

/// The warrant that evidence is made for, as far as a store that reuses evidence across
/// warrants (a cached TPM quote) needs to know it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WarrantScope {
    /// The id of the grant the warrant is made under.
    pub grant_id: [u8; 16],
    /// The time the warrant is issued at, seconds since the epoch.
    pub now: u64,
    /// The signed-content digest of the newest status list the device knows for the grant's
    /// (issuer, status URI), if any: reused evidence is bound to this list, which the device
    /// could not know before the authority issued it. Without one, evidence is made for this
    /// warrant alone.
    pub status_list: Option<[u8; 32]>,
}

/// What a TPM shows an authority before enrollment: its EK certificate and its attestation key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TpmIdentity {
    /// The EK certificate, DER.
    pub ek_certificate: Vec<u8>,
    /// The attestation key's TPMT_PUBLIC.
    pub ak_public: Vec<u8>,
}

/// A store of P-256 signing keys. Implemented by each backend (software, TPM, PKCS#11,
/// YubiKey); the rest of warrant uses keys only through this trait.
pub trait KeyStore: Send + Sync {
    /// The backend this store uses.
    fn backend(&self) -> BackendKind;

    /// Creates a new key (inside the hardware, for hardware backends).
    fn create(&self, name: &KeyName) -> Result<KeyInfo, Error>;

    /// All keys in the store, by name.
    fn list(&self) -> Result<Vec<KeyInfo>, Error>;

    /// The public key of `name`.
    fn public_key(&self, name: &KeyName) -> Result<P256PublicKey, Error>;

    /// Signs a SHA-256 digest with ECDSA P-256; returns raw `r || s`.
    fn sign_digest(&self, name: &KeyName, digest: &[u8; 32]) -> Result<[u8; 64], Error>;

    /// Evidence about where `name` lives, for an enrollment request: bound to the authority's
    /// `challenge` where the backend can bind it (a TPM certifies the key over it).
    fn enrollment_evidence(&self, name: &KeyName, challenge: &[u8; 32]) -> Result<EnrollmentEvidence, Error>;

    /// Evidence about where `name` lives, for a warrant under `scope`: bound to the warrant's
    /// evidence `binding` (the digest of the operation) where the backend can bind it (a TPM
    /// quotes its PCRs over it, or over the grant and a status list when it reuses quotes).
    fn warrant_evidence(
        &self,
        name: &KeyName,
        scope: &WarrantScope,
        binding: &[u8; 32],
    ) -> Result<WarrantEvidence, Error>;

    /// Deletes `name`.
    fn delete(&self, name: &KeyName) -> Result<(), Error>;

    /// At start-up, puts aside what a crash left behind: key files whose name `recorded` does
    /// not know are quarantined, partly written files removed. Only stores whose every key is
    /// warrant's own do anything; the keys of a PKCS#11 token or YubiKey slots are never
    /// touched (warrant cannot tell its own crash's leftovers from keys made elsewhere).
    fn reconcile(&self, recorded: &dyn Fn(&KeyName) -> bool) -> Result<Vec<Reconciled>, Error> {
        let _ = recorded;
        Ok(Vec::new())
    }

    /// A key that already exists in the backend, named by a backend-specific reference (for
    /// PKCS#11, an RFC 7512 URI), so it can be used without being created here.
    fn existing(&self, reference: &str) -> Result<KeyInfo, Error> {
        Err(Error::Unsupported(format!(
            "the {} backend cannot use existing keys by reference ({reference:?})",
            self.backend().as_str()
        )))
    }

    /// The TPM's EK certificate and attestation key, for an authority to make a credential.
    fn tpm_identity(&self) -> Result<TpmIdentity, Error> {
        Err(Error::Unsupported(format!("the {} backend has no TPM identity", self.backend().as_str())))
    }

    /// Recovers the secret an authority protected with TPM2_MakeCredential for this TPM's
    /// EK and AK (TPM2_ActivateCredential).
    fn activate_credential(&self, _credential: &Credential) -> Result<Zeroizing<Vec<u8>>, Error> {
        Err(Error::Unsupported(format!(
            "the {} backend cannot activate TPM credentials",
            self.backend().as_str()
        )))
    }
}
