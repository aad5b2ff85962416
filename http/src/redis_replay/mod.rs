//! A replay store shared by a fleet of verifiers, on Redis or a Redis Cluster.
//!
//! Each accepted warrant is one atomic `SET key 1 NX PX ttl`: of two verifiers that see the
//! same warrant at once, Redis lets exactly one set the key. The key is
//! [`ReplayKey::digest`] (issuer, grant id, warrant id and audience), so one Redis serves
//! several services. The key lives for the warrant's remaining life plus the verifier's clock
//! skew, after which the verifier refuses the warrant as expired anyway.
//!
//! Anything but a clear answer is a refusal: a connection that cannot be made in time, a
//! command that times out, an error reply (a `READONLY` replica, `OOM`, a failed `AUTH`,
//! `CLUSTERDOWN`), or fewer replicas than required acknowledging the write. The verifier then
//! answers [`Error::ReplayStoreUnavailable`] (503 at a gate), never acceptance.
//!
//! **Redis Cluster** (`redis+cluster://host:port,host:port`): the store reads the slot map
//! from the first given node that answers and sends each `SET` to the primary that owns its
//! key's slot, following `MOVED` (a slot that moved: the map is read again) and `ASK` (a slot
//! being migrated) a few times before refusing. Each warrant is one key and one single-key
//! command, so keys need no hash tags and spread over the whole cluster; a node that is down
//! refuses the warrants whose keys it owns, and the others are still served.
//!
//! Failover: Redis replicates asynchronously, so a write acknowledged by a primary that fails
//! before a replica has it is lost, and the promoted replica would accept the same warrant
//! once more, for at most the warrant's remaining life. [`RedisReplayStore::min_replicas`]
//! closes that window on one server by requiring `WAIT` to report the write on that many
//! replicas (a warrant is refused when they do not answer in time); short warrant lifetimes
//! bound it otherwise, and on a cluster, where `WAIT` is not offered (see there).

mod pool;
mod target;

use std::time::Duration;

use redis::{RedisError, Value};
use warrant_envelope::verify::{ReplayKey, ReplayStore};
use warrant_envelope::Error;

use pool::Pool;
use target::{Link, Target};

/// Default time to open a connection to Redis.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_millis(500);
/// Default time for one command's answer.
pub const DEFAULT_COMMAND_TIMEOUT: Duration = Duration::from_millis(250);
/// Default bound on the connections one store holds open at once (on a cluster: cluster
/// connections, each with one connection to every primary).
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

/// A [`ReplayStore`] on one Redis server (or the primary of a replicated set), or on a Redis
/// Cluster.
///
/// Blocking: `remember` waits for Redis, at most the connect and command timeouts (and the
/// `WAIT` timeout with [`Self::min_replicas`]; on a cluster, once more for each redirection or
/// retry, three at most). Call the verifier from a thread that may block (in tokio:
/// `spawn_blocking`).
pub struct RedisReplayStore {
    target: Target,
    /// The server or the cluster's nodes, as messages name them (no credentials).
    address: String,
    key_prefix: String,
    connect_timeout: Duration,
    command_timeout: Duration,
    min_replicas: Option<(u32, Duration)>,
    pool: Pool<Link>,
}

impl std::fmt::Debug for RedisReplayStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisReplayStore")
            .field("address", &self.address)
            .field("cluster", &self.target.is_cluster())
            .field("key_prefix", &self.key_prefix)
            .field("connect_timeout", &self.connect_timeout)
            .field("command_timeout", &self.command_timeout)
            .field("min_replicas", &self.min_replicas)
            .finish_non_exhaustive()
    }
}

impl RedisReplayStore {
    /// A store on the Redis server at `url` (`redis://[user:password@]host[:port][/db]` or
    /// `redis+unix:///path/to/socket`), or on the Redis Cluster whose nodes `url` lists
    /// (`redis+cluster://[user:password@]host:port[,host:port…]`: one node is enough, more
    /// are tried in turn when the first does not answer; the credentials are every node's).
    /// Nothing is connected until the first warrant.
    pub fn new(url: &str) -> Result<Self, RedisConfigError> {
        let address = redact_url(url);
        let target = Target::parse(url, DEFAULT_CONNECT_TIMEOUT, DEFAULT_COMMAND_TIMEOUT)
            .map_err(|reason| RedisConfigError::Url { url: address.clone(), reason })?;
        Ok(Self {
            target,
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

    /// Time allowed to open a connection (default 500 ms; on a cluster, to each node).
    pub fn connect_timeout(mut self, timeout: Duration) -> Result<Self, RedisConfigError> {
        self.connect_timeout = nonzero(timeout, "connect_timeout")?;
        self.apply_timeouts()?;
        Ok(self)
    }

    /// Time allowed for each command's answer (default 250 ms).
    pub fn command_timeout(mut self, timeout: Duration) -> Result<Self, RedisConfigError> {
        self.command_timeout = nonzero(timeout, "command_timeout")?;
        self.apply_timeouts()?;
        Ok(self)
    }

    fn apply_timeouts(&mut self) -> Result<(), RedisConfigError> {
        self.target
            .set_timeouts(self.connect_timeout, self.command_timeout)
            .map_err(|reason| RedisConfigError::Url { url: self.address.clone(), reason })
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
    ///
    /// Refused on a Redis Cluster: `WAIT` must go to the node that took the write, and the
    /// cluster client does not say which node that was after an `ASK` redirection (a slot
    /// being migrated), so a `WAIT` there could count another node's replicas.
    pub fn min_replicas(mut self, replicas: u32, timeout: Duration) -> Result<Self, RedisConfigError> {
        if self.target.is_cluster() {
            return Err(RedisConfigError::Setting {
                setting: "min_replicas",
                reason: "not supported on a Redis Cluster (WAIT could reach another node than the write \
                         after a slot migration's ASK); bound the failover window with short warrant lifetimes",
            });
        }
        if replicas == 0 {
            return Err(RedisConfigError::Setting { setting: "min_replicas", reason: "must be at least 1" });
        }
        self.min_replicas = Some((replicas, nonzero(timeout, "min_replicas timeout")?));
        Ok(self)
    }

    /// The server, or the cluster's given nodes, without credentials.
    pub fn address(&self) -> &str {
        &self.address
    }

    /// Whether this store is on a Redis Cluster.
    pub fn is_cluster(&self) -> bool {
        self.target.is_cluster()
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

    fn connect(&self) -> Result<Link, Error> {
        self.target
            .connect(self.connect_timeout, self.command_timeout)
            .map_err(|e| self.unavailable("connecting", &e))
    }

    /// `SET key 1 NX PX ttl`, then `WAIT` when replicas are required. Ok(true): recorded now.
    fn set_once(&self, link: &mut Link, key: &[u8], ttl: Duration) -> Result<bool, Error> {
        let reply: Value = redis::cmd("SET")
            .arg(key)
            .arg(1)
            .arg("NX")
            .arg("PX")
            .arg(u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX))
            .query(link.connection())
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
            link.set_read_timeout(timeout.saturating_add(self.command_timeout))
                .map_err(|e| self.unavailable("setting timeouts", &e))?;
            let acknowledged: u64 = redis::cmd("WAIT")
                .arg(replicas)
                .arg(u64::try_from(timeout.as_millis()).unwrap_or(u64::MAX))
                .query(link.connection())
                .map_err(|e| self.unavailable("WAIT", &e))?;
            link.set_read_timeout(self.command_timeout)
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
        let (mut link, pooled) = match slot.take_idle() {
            Some(link) => (link, true),
            None => (self.connect()?, false),
        };
        let recorded = match self.set_once(&mut link, &redis_key, ttl) {
            Ok(recorded) => recorded,
            // An idle connection that Redis (restarted, failed over) no longer has: so are the
            // other idle ones. One try on a new connection; if the first SET did reach Redis
            // and only its answer was lost, the retry finds the key and refuses the warrant as
            // a replay, which fails closed. (A cluster connection reconnects to a node by
            // itself; it is open while its node connections are.)
            Err(_) if pooled && !link.is_open() => {
                self.pool.forget_idle();
                let mut fresh = self.connect()?;
                let recorded = self.set_once(&mut fresh, &redis_key, ttl)?;
                link = fresh;
                recorded
            }
            Err(e) => return Err(e),
        };
        // Only a connection that answered goes back: one that failed may hold half a reply.
        slot.release(link);
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_never_appear_in_the_address() {
        assert_eq!(redact_url("redis://:s3cret@10.0.0.1:6379/2"), "redis://:***@10.0.0.1:6379/2");
        assert_eq!(redact_url("redis://app:s3cret@host"), "redis://app:***@host");
        assert_eq!(redact_url("redis://host:6379"), "redis://host:6379");
        assert_eq!(redact_url("redis+unix:///run/redis.sock"), "redis+unix:///run/redis.sock");
        assert_eq!(
            redact_url("redis+cluster://:s3cret@h1:7000,h2:7001"),
            "redis+cluster://:***@h1:7000,h2:7001"
        );
        let store = RedisReplayStore::new("redis://:s3cret@127.0.0.1:1/0").unwrap();
        assert!(!format!("{store:?}").contains("s3cret"));
        let store = RedisReplayStore::new("redis+cluster://:s3cret@127.0.0.1:1,127.0.0.1:2").unwrap();
        assert!(!format!("{store:?}").contains("s3cret"));
        assert_eq!(store.address(), "redis+cluster://:***@127.0.0.1:1,127.0.0.1:2");
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
    fn waiting_for_replicas_is_refused_on_a_cluster() {
        let store = RedisReplayStore::new("redis+cluster://127.0.0.1:1").unwrap();
        assert!(store.is_cluster());
        let err = store.min_replicas(1, Duration::from_secs(1)).unwrap_err();
        assert!(matches!(err, RedisConfigError::Setting { setting: "min_replicas", .. }));
        assert!(err.to_string().contains("not supported on a Redis Cluster"), "{err}");
        // The timeouts rebuild the cluster client; a bad node list is refused at the URL.
        let store = RedisReplayStore::new("redis+cluster://127.0.0.1:1").unwrap();
        assert!(store.connect_timeout(Duration::from_millis(50)).is_ok());
        assert!(matches!(RedisReplayStore::new("redis+cluster://h:1/3"), Err(RedisConfigError::Url { .. })));
    }
}
