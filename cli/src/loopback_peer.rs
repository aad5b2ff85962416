//! Who is on the other end of a loopback TCP connection: the uid that owns the client's
//! socket, read from the kernel's socket tables (/proc/net/tcp, /proc/net/tcp6).
//!
//! `warrant proxy` and `warrant exec` sign with the user's key for whoever connects. A Unix
//! socket would tell the peer's uid (SO_PEERCRED), but the tools they serve take an HTTP base
//! URL; on loopback every local user can connect. The kernel lists each TCP socket with its
//! owner's uid, and a loopback connection's client end is one of them: the entry whose local
//! address is the connection's peer and whose remote address is the proxy's end.

use std::net::{IpAddr, SocketAddr};

/// The uid owning the client end of the loopback connection `local` <- `peer`; `None` when
/// no socket of this machine matches (the connection is gone, or not from this machine's
/// network namespace).
pub(crate) fn peer_uid(local: SocketAddr, peer: SocketAddr) -> std::io::Result<Option<u32>> {
    let table = match peer.ip() {
        IpAddr::V4(_) => "/proc/net/tcp",
        IpAddr::V6(_) => "/proc/net/tcp6",
    };
    let text = std::fs::read_to_string(table)?;
    Ok(find_owner(&text, &kernel_form(peer), &kernel_form(local)))
}

/// The uid of the entry of a /proc/net/tcp table whose local address is `client` and remote
/// address is `server`.
fn find_owner(table: &str, client: &str, server: &str) -> Option<u32> {
    // "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid ..."
    table.lines().skip(1).find_map(|line| {
        let fields: Vec<&str> = line.split_whitespace().collect();
        let (local, remote, uid) = (fields.get(1)?, fields.get(2)?, fields.get(7)?);
        (local.eq_ignore_ascii_case(client) && remote.eq_ignore_ascii_case(server))
            .then(|| uid.parse().ok())
            .flatten()
    })
}

/// An address as the kernel prints it there: each 32-bit word of the address in the host's
/// byte order as 8 hex digits, a colon, the port as 4 hex digits.
fn kernel_form(addr: SocketAddr) -> String {
    let words: String = match addr.ip() {
        IpAddr::V4(ip) => format!("{:08X}", u32::from_ne_bytes(ip.octets())),
        IpAddr::V6(ip) => ip
            .octets()
            .chunks_exact(4)
            .map(|word| format!("{:08X}", u32::from_ne_bytes([word[0], word[1], word[2], word[3]])))
            .collect(),
    };
    format!("{words}:{:04X}", addr.port())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_client_end_of_a_loopback_connection_is_this_process_user() {
        for bind in ["127.0.0.1:0", "[::1]:0"] {
            let Ok(listener) = std::net::TcpListener::bind(bind) else { continue }; // no IPv6 here
            let server = listener.local_addr().unwrap();
            let client = std::net::TcpStream::connect(server).unwrap();
            let (_accepted, peer) = listener.accept().unwrap();
            assert_eq!(peer, client.local_addr().unwrap());
            let uid = peer_uid(server, peer).unwrap();
            assert_eq!(uid, Some(rustix::process::geteuid().as_raw()), "{bind}");
            // A peer that is not connected to this server is nobody.
            let elsewhere = SocketAddr::new(peer.ip(), 1);
            assert_eq!(peer_uid(server, elsewhere).unwrap(), None);
        }
    }

    #[test]
    fn entries_are_matched_on_both_ends() {
        let table = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n\
            0: 0100007F:1F90 0100007F:C350 01 00000000:00000000 00:00000000 00000000  1000        0 1 1\n\
            1: 0100007F:C350 0100007F:1F90 01 00000000:00000000 00:00000000 00000000  4242        0 2 1\n";
        assert_eq!(find_owner(table, "0100007F:C350", "0100007F:1F90"), Some(4242));
        assert_eq!(find_owner(table, "0100007F:C351", "0100007F:1F90"), None);
    }
}
