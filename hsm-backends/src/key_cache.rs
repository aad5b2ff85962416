//! What a store remembers about its keys between requests (public keys, slots, evidence,
//! handles): a signing daemon asks for them on every request, and the disk, token or card
//! need not answer each time. Entries are dropped when their key is deleted or the store
//! reconnects.

use std::collections::HashMap;

use crate::sync::Locked;
use crate::{Error, KeyName};

/// Values of type `V` by key name.
#[derive(Debug)]
pub(crate) struct KeyCache<V> {
    entries: Locked<HashMap<KeyName, V>>,
}

impl<V: Clone> KeyCache<V> {
    /// An empty cache, called `what` in errors (e.g. "public key cache").
    pub(crate) fn new(what: &'static str) -> Self {
        Self { entries: Locked::new(what, HashMap::new()) }
    }

    /// The cached value of `name`, if any.
    pub(crate) fn get(&self, name: &KeyName) -> Result<Option<V>, Error> {
        Ok(self.entries.lock()?.get(name).cloned())
    }

    /// The cached value of `name`, else what `load` finds (then cached). The lock is not held
    /// while `load` runs: it may take a device round trip.
    pub(crate) fn get_or_load(
        &self,
        name: &KeyName,
        load: impl FnOnce() -> Result<V, Error>,
    ) -> Result<V, Error> {
        if let Some(value) = self.get(name)? {
            return Ok(value);
        }
        let value = load()?;
        self.insert(name, value.clone())?;
        Ok(value)
    }

    /// Remembers `value` for `name`.
    pub(crate) fn insert(&self, name: &KeyName, value: V) -> Result<(), Error> {
        self.entries.lock()?.insert(name.clone(), value);
        Ok(())
    }

    /// Forgets `name`.
    pub(crate) fn remove(&self, name: &KeyName) -> Result<(), Error> {
        self.entries.lock()?.remove(name);
        Ok(())
    }

    /// Forgets every key.
    pub(crate) fn clear(&self) -> Result<(), Error> {
        self.entries.lock()?.clear();
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_value_is_loaded_once_and_forgotten_on_remove() {
        let cache = KeyCache::new("test cache");
        let name = KeyName::new("k").unwrap();
        let loads = std::cell::Cell::new(0);
        let load = || {
            loads.set(loads.get() + 1);
            Ok(7)
        };
        assert_eq!(cache.get_or_load(&name, load).unwrap(), 7);
        assert_eq!(cache.get_or_load(&name, load).unwrap(), 7);
        assert_eq!(loads.get(), 1);
        cache.remove(&name).unwrap();
        assert_eq!(cache.get(&name).unwrap(), None);
        let failing = || Err(Error::KeyNotFound("k".into()));
        assert!(matches!(cache.get_or_load(&name, failing), Err(Error::KeyNotFound(_))));
        assert_eq!(cache.get(&name).unwrap(), None, "a failed load caches nothing");
    }
}
