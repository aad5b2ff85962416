//! The daemon's keys: one key store (the backend) plus the metadata warrant keeps about each key
//! in the state database, above all its purpose. Issuance keys sign grants and status lists
//! only; device keys sign enrollment requests and warrants only.

use std::collections::BTreeMap;
use std::sync::RwLock;

use rusqlite::{params, Connection};
use warrant_hsm_backends::{KeyInfo, KeyName, KeyStore, Reconciled};

use crate::database::sql;
use crate::key_signer::KeySigner;
use crate::locks;
use crate::Error;

/// What a key is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyPurpose {
    /// Signs enrollment requests and warrants.
    Device,
    /// Signs grants and status lists (the authority's keys).
    Issuance,
}

impl KeyPurpose {
    /// Its name in the database and the API.
    pub fn as_str(self) -> &'static str {
        match self {
            KeyPurpose::Device => "device",
            KeyPurpose::Issuance => "issuance",
        }
    }

    fn parse(s: &str) -> Option<Self> {
        match s {
            "device" => Some(KeyPurpose::Device),
            "issuance" => Some(KeyPurpose::Issuance),
            _ => None,
        }
    }
}

/// A key store and the purposes of its keys.
pub struct Keyring {
    store: Box<dyn KeyStore>,
    purposes: RwLock<BTreeMap<KeyName, KeyPurpose>>,
}

impl Keyring {
    /// Wraps `store`, reading key purposes from the database.
    pub fn open(store: Box<dyn KeyStore>, conn: &Connection) -> Result<Self, Error> {
        let mut purposes = BTreeMap::new();
        let mut stmt = conn.prepare("SELECT name, purpose FROM keys").map_err(sql)?;
        let rows =
            stmt.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?))).map_err(sql)?;
        for row in rows {
            let (name, purpose) = row.map_err(sql)?;
            let purpose = KeyPurpose::parse(&purpose).ok_or_else(|| Error::Database {
                path: crate::database::FILE_NAME.into(),
                reason: format!("key {name:?} has unknown purpose {purpose:?}"),
            })?;
            purposes.insert(KeyName::new(&name)?, purpose);
        }
        drop(stmt);
        Ok(Self { store, purposes: RwLock::new(purposes) })
    }

    /// The key store.
    pub fn store(&self) -> &dyn KeyStore {
        self.store.as_ref()
    }

    /// Creates a key for `purpose`: in the store first, then its record; if the record cannot
    /// be written the key is deleted again.
    pub fn create(&self, conn: &Connection, name: &KeyName, purpose: KeyPurpose) -> Result<KeyInfo, Error> {
        if self.purpose(name).is_some() {
            return Err(Error::Conflict(format!("a key named {name:?} exists already")));
        }
        let info = self.store.create(name)?;
        let recorded = conn.execute(
            "INSERT INTO keys (name, purpose, backend, created_at) VALUES (?1, ?2, ?3, ?4)",
            params![name.as_str(), purpose.as_str(), info.backend.as_str(), info.created_at as i64],
        );
        if let Err(e) = recorded {
            let _ = self.store.delete(name);
            return Err(sql(e));
        }
        locks::write(&self.purposes).insert(name.clone(), purpose);
        Ok(info)
    }

    /// Deletes the device key `name`: its record first, then the key, so a crash between the
    /// two leaves an unlisted key file rather than a record without a key. Issuance keys stay:
    /// verifiers may still need them.
    pub fn delete(&self, conn: &Connection, name: &KeyName) -> Result<(), Error> {
        match self.purpose(name) {
            None => return Err(Error::NotFound(format!("no key named {:?}", name.as_str()))),
            Some(KeyPurpose::Issuance) => {
                return Err(Error::Usage(format!(
                    "{:?} is an issuance key; the authority keeps those",
                    name.as_str()
                )))
            }
            Some(KeyPurpose::Device) => {}
        }
        conn.execute("DELETE FROM keys WHERE name = ?1", [name.as_str()]).map_err(sql)?;
        locks::write(&self.purposes).remove(name);
        self.store.delete(name)?;
        Ok(())
    }

    /// Takes an existing key of the backend, named by `reference` (a PKCS#11 URI), into the
    /// ring for `purpose`.
    pub fn adopt(&self, conn: &Connection, reference: &str, purpose: KeyPurpose) -> Result<KeyInfo, Error> {
        let info = self.store.existing(reference)?;
        if self.purpose(&info.name).is_some() {
            return Err(Error::Conflict(format!("the key {:?} is in use already", info.name.as_str())));
        }
        conn.execute(
            "INSERT INTO keys (name, purpose, backend, created_at) VALUES (?1, ?2, ?3, ?4)",
            params![info.name.as_str(), purpose.as_str(), info.backend.as_str(), info.created_at as i64],
        )
        .map_err(sql)?;
        locks::write(&self.purposes).insert(info.name.clone(), purpose);
        Ok(info)
    }

    /// At start-up: quarantines the store's key files that no record names and removes
    /// partly written ones, which a crash between a key's file and its record leaves (see
    /// [`KeyStore::reconcile`]; stores with keys warrant may not have made do nothing).
    pub fn reconcile(&self) -> Result<Vec<Reconciled>, Error> {
        let purposes = locks::read(&self.purposes);
        Ok(self.store.reconcile(&|name| purposes.contains_key(name))?)
    }

    /// The purpose of `name`, if it is a key of this ring.
    pub fn purpose(&self, name: &KeyName) -> Option<KeyPurpose> {
        locks::read(&self.purposes).get(name).copied()
    }

    /// Every key with its purpose, by name.
    pub fn list(&self) -> Result<Vec<(KeyInfo, KeyPurpose)>, Error> {
        let purposes = locks::read(&self.purposes).clone();
        let mut out = Vec::new();
        for info in self.store.list()? {
            if let Some(purpose) = purposes.get(&info.name) {
                out.push((info, *purpose));
            }
        }
        Ok(out)
    }

    /// A signer for key `name`, which must exist and have `purpose`.
    pub fn signer(&self, name: &str, purpose: KeyPurpose) -> Result<KeySigner<'_>, Error> {
        let name = KeyName::new(name)?;
        match self.purpose(&name) {
            None => Err(Error::NotFound(format!("no key named {:?}", name.as_str()))),
            Some(p) if p != purpose => Err(Error::Usage(format!(
                "key {:?} is a {} key; this operation needs a {} key",
                name.as_str(),
                p.as_str(),
                purpose.as_str()
            ))),
            Some(_) => Ok(KeySigner::new(self.store.as_ref(), name)?),
        }
    }
}
