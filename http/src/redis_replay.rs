//! A replay store shared by a fleet of verifiers, on Redis.
//!
//! Each accepted warrant is one atomic `SET key 1 NX PX ttl`: of two verifiers that see the
//! same warrant at once, Redis lets exactly one set the key. The key is
//! [`ReplayKey::digest`] (issuer, grant id, warrant id and audience), so one Redis serves
//! several services. One server is spoken to: Redis Cluster is not supported yet (a node's
//! `MOVED` answer is an error reply, so a refusal). The key lives
//! for the warrant's remaining life plus the verifier's clock skew, after which the verifier
//! refuses the warrant as expired anyway.
//!
//! Anything but a clear answer is a refusal: a connection that cannot be made in time, a
//! command that times out, an error reply (a `READONLY` replica, `OOM`, a failed `AUTH`), or
//! fewer replicas than required acknowledging the write. The verifier then answers
//! [`Error::ReplayStoreUnavailable`] (503 at a gate), never acceptance.
//!
//! Failover: Redis replicates asynchronously, so a write acknowledged by a primary that fails
//! before a replica has it is lost, and the promoted replica would accept the same warrant
//! once more, for at most the warrant's remaining life. [`RedisReplayStore::min_replicas`]
//! closes that window by requiring `WAIT` to report the write on that many replicas (a warrant
//! is refused when they do not answer in time); short warrant lifetimes bound it otherwise.

use std::sync::{Condvar, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use redis::{Client, Connection, ConnectionLike, RedisError, Value};
use warrant_envelope::verify::{ReplayKey, ReplayStore};
use warrant_envelope::Error;

/// Default time to open a connection to Redis.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_millis(500);
/// Default time for one command's answer.
pub const DEFAULT_COMMAND_TIMEOUT: Duration = Duration::from_millis(250);
/// Default bound on the connections one store holds open at once.
pub const DEFAULT_MAX_CONNECTIONS: usize = 16;
/// Default prefix of the keys this store writes.
pub const DEFAULT_KEY_PREFIX: &str = "warrant:replay:";

/// Why a [`RedisReplayStore`] could not be configured.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RedisConfigError {
    /// The URL is not a Redis URL this build can use.
    #[error("replay store URL {url}: {reason}")]
    Url {
        /// The URL without its credentials.
        url: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A setting is out of range.
    #[error("replay store setting {setting}: {reason}")]
    Setting {
        /// Which setting.
        setting: &'static str,
        /// What is wrong with it.
        reason: &'static str,
    },
}

/// A [`ReplayStore`] on one Redis server (or the primary of a replicated set).
///
/// Blocking: `remember` waits for Redis, at most the connect and command timeouts (and the
/// `WAIT` timeout with [`Self::min_replicas`]). Call the verifier from a thread that may block
/// (in tokio: `spawn_blocking`).
pub struct RedisReplayStore {
    client: Client,
    /// The server, as messages name it (no credentials).
    address: String,
    key_prefix: String,
    connect_timeout: Duration,
    command_timeout: Duration,
    min_replicas: Option<(u32, Duration)>,
    pool: Pool,
}

impl std::fmt::Debug for RedisReplayStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisReplayStore")
            .field("address", &self.address)
            .field("key_prefix", &self.key_prefix)
            .field("connect_timeout", &self.connect_timeout)
            .field("command_timeout", &self.command_timeout)
            .field("min_replicas", &self.min_replicas)
            .finish_non_exhaustive()
    }
}

impl RedisReplayStore {
    /// A store on the Redis server at `url` (`redis://[user:password@]host[:port][/db]` or
    /// `redis+unix:///path/to/socket`). Nothing is connected until the first warrant.
    pub fn new(url: &str) -> Result<Self, RedisConfigError> {
        let address = redact_url(url);
        let client = Client::open(url)
            .map_err(|e| RedisConfigError::Url { url: address.clone(), reason: e.to_string() })?;
        Ok(Self {
            client,
            address,
            key_prefix: DEFAULT_KEY_PREFIX.into(),
            connect_timeout: DEFAULT_CONNECT_TIMEOUT,
            command_timeout: DEFAULT_COMMAND_TIMEOUT,
            min_replicas: None,
            pool: Pool::new(DEFAULT_MAX_CONNECTIONS),
        })
    }

    /// Prefixes every key (default `warrant:replay:`), e.g. to share a database.
    pub fn key_prefix(mut self, prefix: &str) -> Self {
        self.key_prefix = prefix.into();
        self
    }

    /// Time allowed to open a connection (default 500 ms).
    pub fn connect_timeout(mut self, timeout: Duration) -> Result<Self, RedisConfigError> {
        self.connect_timeout = nonzero(timeout, "connect_timeout")?;
        Ok(self)
    }

    /// Time allowed for each command's answer (default 250 ms).
    pub fn command_timeout(mut self, timeout: Duration) -> Result<Self, RedisConfigError> {
        self.command_timeout = nonzero(timeout, "command_timeout")?;
        Ok(self)
    }

    /// At most `max` connections open at once (default 16); a warrant that finds them all
    /// busy for longer than the command timeout is refused as unavailable.
    pub fn max_connections(mut self, max: usize) -> Result<Self, RedisConfigError> {
        if max == 0 {
            return Err(RedisConfigError::Setting {
                setting: "max_connections",
                reason: "must be at least 1",
            });
        }
        self.pool = Pool::new(max);
        Ok(self)
    }

    /// Requires each write to reach `replicas` replicas within `timeout` (`WAIT`) before a
    /// warrant is accepted; a write they do not acknowledge in time refuses the warrant (its
    /// id stays recorded on the primary). Closes the failover window described in the module
    /// documentation.
    pub fn min_replicas(mut self, replicas: u32, timeout: Duration) -> Result<Self, RedisConfigError> {
        if replicas == 0 {
            return Err(RedisConfigError::Setting { setting: "min_replicas", reason: "must be at least 1" });
        }
        self.min_replicas = Some((replicas, nonzero(timeout, "min_replicas timeout")?));
        Ok(self)
    }

    /// The server, without credentials.
    pub fn address(&self) -> &str {
        &self.address
    }

    fn unavailable(&self, what: &str, error: &RedisError) -> Error {
        let why = if error.is_timeout() {
            "no answer in time".to_string()
        } else if error.is_connection_refusal() {
            "connection refused".to_string()
        } else {
            error.to_string()
        };
        Error::ReplayStoreUnavailable { reason: format!("Redis at {}: {what}: {why}", self.address) }
    }

    fn connect(&self) -> Result<Connection, Error> {
        let connection = self
            .client
            .get_connection_with_timeout(self.connect_timeout)
            .map_err(|e| self.unavailable("connecting", &e))?;
        connection
            .set_read_timeout(Some(self.command_timeout))
            .and_then(|()| connection.set_write_timeout(Some(self.command_timeout)))
            .map_err(|e| self.unavailable("setting timeouts", &e))?;
        Ok(connection)
    }

    /// `SET key 1 NX PX ttl`, then `WAIT` when replicas are required. Ok(true): recorded now.
    fn set_once(&self, connection: &mut Connection, key: &[u8], ttl: Duration) -> Result<bool, Error> {
        let reply: Value = redis::cmd("SET")
            .arg(key)
            .arg(1)
            .arg("NX")
            .arg("PX")
            .arg(u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX))
            .query(connection)
            .map_err(|e| self.unavailable("SET NX", &e))?;
        let recorded = match reply {
            Value::Okay => true,
            Value::Nil => false,
            other => {
                return Err(Error::ReplayStoreUnavailable {
                    reason: format!("Redis at {}: unexpected answer to SET NX: {other:?}", self.address),
                })
            }
        };
        if let (true, Some((replicas, timeout))) = (recorded, self.min_replicas) {
            // WAIT answers after up to its own timeout: read for that long, then as before.
            connection
                .set_read_timeout(Some(timeout.saturating_add(self.command_timeout)))
                .map_err(|e| self.unavailable("setting timeouts", &e))?;
            let acknowledged: u64 = redis::cmd("WAIT")
                .arg(replicas)
                .arg(u64::try_from(timeout.as_millis()).unwrap_or(u64::MAX))
                .query(connection)
                .map_err(|e| self.unavailable("WAIT", &e))?;
            connection
                .set_read_timeout(Some(self.command_timeout))
                .map_err(|e| self.unavailable("setting timeouts", &e))?;
            if acknowledged < u64::from(replicas) {
                return Err(Error::ReplayStoreUnavailable {
                    reason: format!(
                        "Redis at {}: the write reached {acknowledged} of {replicas} required replicas in {} ms",
                        self.address,
                        timeout.as_millis()
                    ),
                });
            }
        }
        Ok(recorded)
    }
}

impl ReplayStore for RedisReplayStore {
    fn remember(&self, key: &ReplayKey, forget_after: u64, now: u64) -> Result<(), Error> {
        let mut redis_key = Vec::with_capacity(self.key_prefix.len() + 64);
        redis_key.extend_from_slice(self.key_prefix.as_bytes());
        redis_key.extend_from_slice(hex::encode(key.digest()).as_bytes());
        // At least one second: a key that expired at once would not stop anything.
        let ttl = Duration::from_secs(forget_after.saturating_sub(now).max(1));

        let slot = self.pool.acquire(self.command_timeout).ok_or_else(|| Error::ReplayStoreUnavailable {
            reason: format!(
                "Redis at {}: all {} connections busy for {} ms",
                self.address,
                self.pool.max,
                self.command_timeout.as_millis()
            ),
        })?;
        let (mut connection, pooled) = match slot.take_idle() {
            Some(connection) => (connection, true),
            None => (self.connect()?, false),
        };
        let recorded = match self.set_once(&mut connection, &redis_key, ttl) {
            Ok(recorded) => recorded,
            // An idle connection that Redis (restarted, failed over) no longer has: so are the
            // other idle ones. One try on a new connection; if the first SET did reach Redis
            // and only its answer was lost, the retry finds the key and refuses the warrant as
            // a replay, which fails closed.
            Err(_) if pooled && !connection.is_open() => {
                self.pool.forget_idle();
                let mut fresh = self.connect()?;
                let recorded = self.set_once(&mut fresh, &redis_key, ttl)?;
                connection = fresh;
                recorded
            }
            Err(e) => return Err(e),
        };
        // Only a connection that answered goes back: one that failed may hold half a reply.
        slot.release(connection);
        if recorded {
            Ok(())
        } else {
            Err(key.replayed())
        }
    }
}

fn nonzero(timeout: Duration, setting: &'static str) -> Result<Duration, RedisConfigError> {
    if timeout.is_zero() {
        return Err(RedisConfigError::Setting { setting, reason: "must be more than zero" });
    }
    Ok(timeout)
}

/// `url` without a password: `redis://user:secret@host` -> `redis://user:***@host`.
fn redact_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return "(not a URL)".into();
    };
    let (authority, path) = match rest.find('/') {
        Some(i) => rest.split_at(i),
        None => (rest, ""),
    };
    match authority.rsplit_once('@') {
        Some((userinfo, host)) => {
            let user = userinfo.split_once(':').map_or(userinfo, |(user, _)| user);
            format!("{scheme}://{user}:***@{host}{path}")
        }
        None => url.into(),
    }
}

/// Idle connections, and a bound on how many exist at once.
struct Pool {
    max: usize,
    state: Mutex<PoolState>,
    freed: Condvar,
}

struct PoolState {
    idle: Vec<Connection>,
    /// Connections handed out (idle ones not counted).
    in_use: usize,
}

impl Pool {
    fn new(max: usize) -> Self {
        Self { max, state: Mutex::new(PoolState { idle: Vec::new(), in_use: 0 }), freed: Condvar::new() }
    }

    fn lock(&self) -> MutexGuard<'_, PoolState> {
        // Two counters and a list, each updated in one statement: consistent after a panic.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Drops every idle connection.
    fn forget_idle(&self) {
        self.lock().idle.clear();
    }

    /// A place for one connection, waiting at most `timeout` for one to be free.
    fn acquire(&self, timeout: Duration) -> Option<Slot<'_>> {
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
struct Slot<'a> {
    pool: &'a Pool,
}

impl Slot<'_> {
    fn take_idle(&self) -> Option<Connection> {
        self.pool.lock().idle.pop()
    }

    fn release(self, connection: Connection) {
        self.pool.lock().idle.push(connection);
    }
}

impl Drop for Slot<'_> {
    fn drop(&mut self) {
        self.pool.lock().in_use -= 1;
        self.pool.freed.notify_one();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_never_appear_in_the_address() {
        assert_eq!(redact_url("redis://:s3cret@10.0.0.1:6379/2"), "redis://:***@10.0.0.1:6379/2");
        assert_eq!(redact_url("redis://app:s3cret@host"), "redis://app:***@host");
        assert_eq!(redact_url("redis://host:6379"), "redis://host:6379");
        assert_eq!(redact_url("redis+unix:///run/redis.sock"), "redis+unix:///run/redis.sock");
        let store = RedisReplayStore::new("redis://:s3cret@127.0.0.1:1/0").unwrap();
        assert!(!format!("{store:?}").contains("s3cret"));
    }

    #[test]
    fn bad_urls_and_settings_are_refused() {
        assert!(matches!(RedisReplayStore::new("http://host"), Err(RedisConfigError::Url { .. })));
        let store = RedisReplayStore::new("redis://127.0.0.1:1").unwrap();
        assert!(matches!(
            store.max_connections(0),
            Err(RedisConfigError::Setting { setting: "max_connections", .. })
        ));
        let store = RedisReplayStore::new("redis://127.0.0.1:1").unwrap();
        assert!(matches!(store.command_timeout(Duration::ZERO), Err(RedisConfigError::Setting { .. })));
    }

    #[test]
    fn a_full_pool_refuses_after_the_timeout() {
        let pool = Pool::new(1);
        let held = pool.acquire(Duration::from_millis(10)).unwrap();
        assert!(pool.acquire(Duration::from_millis(10)).is_none());
        drop(held);
        assert!(pool.acquire(Duration::from_millis(10)).is_some());
    }
}
