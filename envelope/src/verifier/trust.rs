use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use warrant_attestation::P256PublicKey;

use crate::keys::{KeyId, VerifyingKey};
use crate::Error;

/// An authority the verifier trusts: its id (`iss`) and its issuance keys. Several keys
/// allow rotation: grants signed by an older key stay valid while it is listed.
#[derive(Debug, Clone)]
pub struct TrustedAuthority {
    /// The authority's id, as in the `iss` of its grants and status lists.
    pub issuer: String,
    /// Its issuance public keys.
    pub keys: Vec<P256PublicKey>,
}

/// Trusted authority keys by key id.
#[derive(Debug, Default)]
pub(crate) struct TrustStore {
    by_kid: HashMap<KeyId, (Arc<str>, VerifyingKey)>,
    /// The authorities added so far, by issuer id.
    issuers: HashSet<String>,
}

impl TrustStore {
    /// Trusts `authority`'s keys. A key already listed under another authority is refused:
    /// silently taking the last would let a configuration error move a key's grants and lists
    /// to the wrong authority. The same key listed twice under one authority is accepted.
    ///
    /// An issuer id given twice is refused too: two authorities that chose the same id (each
    /// names itself at `authority init`) would be merged into one, and either could then
    /// issue grants and publish lists in the other's name. All of an authority's keys belong
    /// in its one entry.
    pub(crate) fn add(&mut self, authority: &TrustedAuthority) -> Result<(), Error> {
        if !self.issuers.insert(authority.issuer.clone()) {
            return Err(Error::TrustedIssuerRepeated { issuer: authority.issuer.clone() });
        }
        let issuer: Arc<str> = authority.issuer.as_str().into();
        for key in &authority.keys {
            let key = VerifyingKey::new(key.clone())?;
            if let Some((first, _)) = self.by_kid.get(key.kid()) {
                if *first != issuer {
                    return Err(Error::TrustedKeyConflict {
                        kid: hex::encode(key.kid()),
                        first: first.to_string(),
                        second: authority.issuer.clone(),
                    });
                }
            }
            self.by_kid.insert(*key.kid(), (issuer.clone(), key));
        }
        Ok(())
    }

    /// The issuer and key for `kid`, if trusted.
    pub(crate) fn get(&self, kid: &KeyId) -> Option<(&str, &VerifyingKey)> {
        self.by_kid.get(kid).map(|(issuer, key)| (&**issuer, key))
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.by_kid.is_empty()
    }
}
