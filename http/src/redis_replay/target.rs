//! Where the store's Redis is (one server, or a Redis Cluster) and connections to it.

use std::time::Duration;

use redis::cluster::{ClusterClient, ClusterConnection, Connect};
use redis::{Client, Cmd, Connection, ConnectionLike, IntoConnectionInfo, RedisResult, Value};

/// The scheme of a Redis Cluster URL: `redis+cluster://[[user]:password@]host:port[,host:port…]`.
pub(super) const CLUSTER_SCHEME: &str = "redis+cluster://";

/// Times the cluster client tries a command again after a redirection or an error before the
/// warrant is refused: a slot that moved (`MOVED`, then a refreshed slot map), a slot being
/// migrated (`ASK`), and one more; each try is bounded by the connect and command timeouts.
const CLUSTER_RETRIES: u32 = 3;
/// Bounds, ms, of the cluster client's wait before trying again after `TRYAGAIN`,
/// `CLUSTERDOWN` or a `READONLY` node (its defaults wait up to 11 minutes in all).
const CLUSTER_RETRY_WAIT_MS: (u64, u64) = (5, 100);

/// One Redis server, or the nodes a cluster client starts from.
pub(super) enum Target {
    Server(Client),
    Cluster {
        /// `redis://` URLs of the given nodes, credentials included: never shown.
        nodes: Vec<String>,
        client: ClusterClient,
    },
}

impl Target {
    /// The target `url` names, with the timeouts a cluster client is built with.
    pub(super) fn parse(
        url: &str,
        connect_timeout: Duration,
        command_timeout: Duration,
    ) -> Result<Self, String> {
        if url.starts_with(CLUSTER_SCHEME) {
            let nodes = cluster_nodes(url)?;
            let client = cluster_client(&nodes, connect_timeout, command_timeout)?;
            Ok(Self::Cluster { nodes, client })
        } else {
            Client::open(url).map(Self::Server).map_err(|e| e.to_string())
        }
    }

    pub(super) fn is_cluster(&self) -> bool {
        matches!(self, Self::Cluster { .. })
    }

    /// Applies new timeouts (a cluster client takes them when it is built).
    pub(super) fn set_timeouts(
        &mut self,
        connect_timeout: Duration,
        command_timeout: Duration,
    ) -> Result<(), String> {
        if let Self::Cluster { nodes, client } = self {
            *client = cluster_client(nodes, connect_timeout, command_timeout)?;
        }
        Ok(())
    }

    /// A new connection: to the server, or a cluster connection (which connects to the nodes
    /// of the slot map it reads from the first given node that answers).
    pub(super) fn connect(&self, connect_timeout: Duration, command_timeout: Duration) -> RedisResult<Link> {
        match self {
            Self::Server(client) => {
                let connection = client.get_connection_with_timeout(connect_timeout)?;
                connection.set_read_timeout(Some(command_timeout))?;
                connection.set_write_timeout(Some(command_timeout))?;
                Ok(Link::Server(connection))
            }
            Self::Cluster { client, .. } => {
                // The read timeout is the client's response timeout, set when it was built.
                let connection = client.get_generic_connection::<NodeConnection>()?;
                connection.set_write_timeout(Some(command_timeout))?;
                Ok(Link::Cluster(Box::new(connection)))
            }
        }
    }
}

fn cluster_client(
    nodes: &[String],
    connect_timeout: Duration,
    command_timeout: Duration,
) -> Result<ClusterClient, String> {
    ClusterClient::builder(nodes.iter().map(String::as_str))
        .connection_timeout(connect_timeout)
        .response_timeout(command_timeout)
        .retries(CLUSTER_RETRIES)
        .min_retry_wait(CLUSTER_RETRY_WAIT_MS.0)
        .max_retry_wait(CLUSTER_RETRY_WAIT_MS.1)
        .build()
        .map_err(|e| e.to_string())
}

/// The nodes of `redis+cluster://[[user]:password@]host:port[,host:port…]` as `redis://` URLs,
/// each with the credentials. A cluster has one database: a path other than `/0` is refused.
fn cluster_nodes(url: &str) -> Result<Vec<String>, String> {
    let rest = url.strip_prefix(CLUSTER_SCHEME).ok_or("not a redis+cluster:// URL")?;
    let (userinfo, hosts) = match rest.rsplit_once('@') {
        Some((userinfo, hosts)) => (Some(userinfo), hosts),
        None => (None, rest),
    };
    let hosts = hosts.strip_suffix("/0").or_else(|| hosts.strip_suffix('/')).unwrap_or(hosts);
    if hosts.contains(['/', '?', '#']) {
        return Err("a Redis Cluster has one database (0): no other path or a query".into());
    }
    let nodes: Vec<String> = hosts
        .split(',')
        .map(|host| match (host.is_empty(), userinfo) {
            (true, _) => Err("an empty node in the list".to_string()),
            (false, Some(userinfo)) => Ok(format!("redis://{userinfo}@{host}")),
            (false, None) => Ok(format!("redis://{host}")),
        })
        .collect::<Result<_, _>>()?;
    for node in &nodes {
        node.as_str().into_connection_info().map_err(|e| format!("node {}: {e}", super::redact_url(node)))?;
    }
    Ok(nodes)
}

/// A connection the store holds: to the server, or a cluster connection (one connection per
/// node, and the slot map).
pub(super) enum Link {
    Server(Connection),
    Cluster(Box<ClusterConnection<NodeConnection>>),
}

impl Link {
    pub(super) fn connection(&mut self) -> &mut dyn ConnectionLike {
        match self {
            Self::Server(connection) => connection,
            Self::Cluster(connection) => connection.as_mut(),
        }
    }

    pub(super) fn set_read_timeout(&self, timeout: Duration) -> RedisResult<()> {
        match self {
            Self::Server(connection) => connection.set_read_timeout(Some(timeout)),
            Self::Cluster(connection) => connection.set_read_timeout(Some(timeout)),
        }
    }

    pub(super) fn is_open(&self) -> bool {
        match self {
            Self::Server(connection) => connection.is_open(),
            Self::Cluster(connection) => connection.is_open(),
        }
    }
}

/// A connection to one cluster node that has timeouts from the start.
///
/// redis's cluster client sends `PING` on each new node connection before it sets the response
/// timeout on it, so a node that accepts connections and never answers (stopped, hung) would
/// hold the caller forever: here the connect timeout bounds that `PING` as well.
pub(super) struct NodeConnection(Connection);

impl Connect for NodeConnection {
    fn connect<T: IntoConnectionInfo>(info: T, timeout: Option<Duration>) -> RedisResult<Self> {
        let connection = <Connection as Connect>::connect(info, timeout)?;
        connection.set_read_timeout(timeout)?;
        connection.set_write_timeout(timeout)?;
        Ok(Self(connection))
    }

    fn send_packed_command(&mut self, cmd: &[u8]) -> RedisResult<()> {
        self.0.send_packed_command(cmd)
    }

    fn set_write_timeout(&self, dur: Option<Duration>) -> RedisResult<()> {
        self.0.set_write_timeout(dur)
    }

    fn set_read_timeout(&self, dur: Option<Duration>) -> RedisResult<()> {
        self.0.set_read_timeout(dur)
    }

    fn recv_response(&mut self) -> RedisResult<Value> {
        self.0.recv_response()
    }
}

impl ConnectionLike for NodeConnection {
    fn req_packed_command(&mut self, cmd: &[u8]) -> RedisResult<Value> {
        self.0.req_packed_command(cmd)
    }

    fn req_packed_commands(&mut self, cmd: &[u8], offset: usize, count: usize) -> RedisResult<Vec<Value>> {
        self.0.req_packed_commands(cmd, offset, count)
    }

    fn req_command(&mut self, cmd: &Cmd) -> RedisResult<Value> {
        self.0.req_command(cmd)
    }

    fn get_db(&self) -> i64 {
        self.0.get_db()
    }

    fn check_connection(&mut self) -> bool {
        self.0.check_connection()
    }

    fn is_open(&self) -> bool {
        self.0.is_open()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cluster_url_names_each_node_with_the_credentials() {
        assert_eq!(
            cluster_nodes("redis+cluster://:pw@10.0.0.1:7000,10.0.0.2:7001").unwrap(),
            ["redis://:pw@10.0.0.1:7000", "redis://:pw@10.0.0.2:7001"]
        );
        assert_eq!(cluster_nodes("redis+cluster://h:7000/0").unwrap(), ["redis://h:7000"]);
        assert_eq!(cluster_nodes("redis+cluster://app:pw@h:7000/").unwrap(), ["redis://app:pw@h:7000"]);
    }

    #[test]
    fn a_cluster_url_with_a_database_an_empty_node_or_a_bad_port_is_refused() {
        for (url, needle) in [
            ("redis+cluster://h:7000/2", "one database"),
            ("redis+cluster://h:7000?db=1", "one database"),
            ("redis+cluster://h:7000,,h:7001", "empty node"),
            ("redis+cluster://", "empty node"),
            ("redis+cluster://:s3cret@h:notaport", "node redis://:***@h:notaport"),
        ] {
            let err = cluster_nodes(url).unwrap_err();
            assert!(err.contains(needle), "{url}: {err}");
            assert!(!err.contains("s3cret"), "{err}");
        }
    }
}
