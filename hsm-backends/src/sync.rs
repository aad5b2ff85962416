//! Locks, and what a poisoned one means: a thread panicked while holding it, so what it guards
//! may be half-changed. Every lock in this crate is taken through [`Locked`], which refuses
//! such a lock with [`Error::LockPoisoned`] instead of using or silently repairing its content.

use std::sync::{Mutex, MutexGuard};

use crate::Error;

/// A value behind a mutex, named for the error a poisoned lock gives.
#[derive(Debug)]
pub(crate) struct Locked<T> {
    what: &'static str,
    value: Mutex<T>,
}

impl<T> Locked<T> {
    /// `value`, called `what` in errors (e.g. "PKCS#11 session pool").
    pub(crate) fn new(what: &'static str, value: T) -> Self {
        Self { what, value: Mutex::new(value) }
    }

    /// The value, while the guard lives.
    pub(crate) fn lock(&self) -> Result<MutexGuard<'_, T>, Error> {
        self.value.lock().map_err(|_| Error::LockPoisoned(self.what))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_poisoned_lock_is_refused_not_repaired() {
        let locked = std::sync::Arc::new(Locked::new("test value", 1));
        let clone = locked.clone();
        let _ = std::thread::spawn(move || {
            let _guard = clone.lock().unwrap();
            panic!("while holding the lock");
        })
        .join();
        let err = locked.lock().unwrap_err();
        assert!(matches!(err, Error::LockPoisoned("test value")), "{err}");
        assert!(err.to_string().contains("restart the process"), "{err}");
    }
}
