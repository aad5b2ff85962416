//! Taking the daemon's locks. A lock is poisoned when a thread panicked while holding it; the
//! workspace's lints forbid panics, so that is a bug, and every critical section here leaves
//! its data valid at each step (counters and maps updated in one statement, database
//! transactions rolled back when dropped). The data behind a poisoned lock is therefore as
//! valid as before, and the daemon goes on using it: refusing every later request would turn
//! one bug into an outage without closing anything that is not closed already. This is the
//! one place that decides it.

use std::sync::{Mutex, MutexGuard, PoisonError, RwLock, RwLockReadGuard, RwLockWriteGuard};

/// Locks `mutex`.
pub(crate) fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Locks `lock` for reading.
pub(crate) fn read<T>(lock: &RwLock<T>) -> RwLockReadGuard<'_, T> {
    lock.read().unwrap_or_else(PoisonError::into_inner)
}

/// Locks `lock` for writing.
pub(crate) fn write<T>(lock: &RwLock<T>) -> RwLockWriteGuard<'_, T> {
    lock.write().unwrap_or_else(PoisonError::into_inner)
}
