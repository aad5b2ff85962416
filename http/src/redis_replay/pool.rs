//! Idle connections to Redis, and a bound on how many exist at once.

use std::sync::{Condvar, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

/// At most `max` connections of type `C` handed out or idle at once.
pub(super) struct Pool<C> {
    pub(super) max: usize,
    state: Mutex<PoolState<C>>,
    freed: Condvar,
}

struct PoolState<C> {
    idle: Vec<C>,
    /// Connections handed out (idle ones not counted).
    in_use: usize,
}

impl<C> Pool<C> {
    pub(super) fn new(max: usize) -> Self {
        Self { max, state: Mutex::new(PoolState { idle: Vec::new(), in_use: 0 }), freed: Condvar::new() }
    }

    fn lock(&self) -> MutexGuard<'_, PoolState<C>> {
        // Two counters and a list, each updated in one statement: consistent after a panic.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Drops every idle connection.
    pub(super) fn forget_idle(&self) {
        self.lock().idle.clear();
    }

    /// A place for one connection, waiting at most `timeout` for one to be free.
    pub(super) fn acquire(&self, timeout: Duration) -> Option<Slot<'_, C>> {
        let deadline = Instant::now() + timeout;
        let mut state = self.lock();
        while state.in_use >= self.max {
            let left = deadline.checked_duration_since(Instant::now())?;
            state = self.freed.wait_timeout(state, left).unwrap_or_else(PoisonError::into_inner).0;
        }
        state.in_use += 1;
        Some(Slot { pool: self })
    }
}

/// One acquired place in the pool; dropping it frees the place.
pub(super) struct Slot<'a, C> {
    pool: &'a Pool<C>,
}

impl<C> Slot<'_, C> {
    /// An idle connection, if the pool holds one.
    pub(super) fn take_idle(&self) -> Option<C> {
        self.pool.lock().idle.pop()
    }

    /// Frees the place and keeps `connection` for the next caller.
    pub(super) fn release(self, connection: C) {
        self.pool.lock().idle.push(connection);
    }
}

impl<C> Drop for Slot<'_, C> {
    fn drop(&mut self) {
        self.pool.lock().in_use -= 1;
        self.pool.freed.notify_one();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_full_pool_refuses_after_the_timeout() {
        let pool = Pool::<()>::new(1);
        let held = pool.acquire(Duration::from_millis(10)).unwrap();
        assert!(pool.acquire(Duration::from_millis(10)).is_none());
        drop(held);
        assert!(pool.acquire(Duration::from_millis(10)).is_some());
    }

    #[test]
    fn a_released_connection_is_handed_out_again_and_forgetting_drops_it() {
        let pool = Pool::new(2);
        let slot = pool.acquire(Duration::from_millis(10)).unwrap();
        assert!(slot.take_idle().is_none());
        slot.release(7u8);
        let slot = pool.acquire(Duration::from_millis(10)).unwrap();
        assert_eq!(slot.take_idle(), Some(7));
        slot.release(8);
        pool.forget_idle();
        assert!(pool.acquire(Duration::from_millis(10)).unwrap().take_idle().is_none());
    }
}
