//! Who is calling: SO_PEERCRED's uid, gid and pid, the process's supplementary groups and
//! executable from /proc, and its start time, read again after the request is handled so that
//! an answer never goes to a process that reused the pid of the one that asked.

use std::path::PathBuf;

use tokio::net::UnixStream;

use crate::Error;

/// The process on the other end of a connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    /// User id.
    pub uid: u32,
    /// Primary group id.
    pub gid: u32,
    /// Primary and supplementary group ids.
    pub gids: Vec<u32>,
    /// Process id.
    pub pid: u32,
    /// The process's start time (clock ticks since boot), from /proc.
    start_time: u64,
    /// The executable, when /proc lets us read it.
    pub exe: Option<PathBuf>,
}

impl Caller {
    /// Identifies the peer of `stream`.
    pub fn of(stream: &UnixStream) -> Result<Self, Error> {
        let cred = stream.peer_cred().map_err(|e| Error::Caller(format!("SO_PEERCRED failed: {e}")))?;
        let pid = cred
            .pid()
            .and_then(|p| u32::try_from(p).ok())
            .filter(|p| *p > 0)
            .ok_or_else(|| Error::Caller("the kernel reported no pid for the peer".into()))?;
        let start_time = start_time(pid)?;
        let mut gids = supplementary_groups(pid)?;
        if !gids.contains(&cred.gid()) {
            gids.insert(0, cred.gid());
        }
        let exe = std::fs::read_link(format!("/proc/{pid}/exe")).ok();
        Ok(Self { uid: cred.uid(), gid: cred.gid(), gids, pid, start_time, exe })
    }

    /// Checks that the process that connected is still the one with this pid.
    pub fn still_the_same_process(&self) -> Result<(), Error> {
        match start_time(self.pid) {
            Ok(t) if t == self.start_time => Ok(()),
            Ok(_) => Err(Error::Caller(format!(
                "pid {} now belongs to another process; the answer is withheld",
                self.pid
            ))),
            Err(_) => Err(Error::Caller(format!("process {} exited before its answer", self.pid))),
        }
    }

    /// A caller for unit tests of the rules.
    #[cfg(test)]
    pub fn for_tests(uid: u32, gids: Vec<u32>) -> Self {
        Self { uid, gid: gids.first().copied().unwrap_or(uid), gids, pid: 1, start_time: 0, exe: None }
    }
}

/// Field 22 of /proc/PID/stat, counted after the command name (which may hold spaces and
/// parentheses, hence the last `)`).
fn start_time(pid: u32) -> Result<u64, Error> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .map_err(|e| Error::Caller(format!("reading /proc/{pid}/stat: {e}")))?;
    parse_start_time(&stat).ok_or_else(|| Error::Caller(format!("/proc/{pid}/stat has no start time")))
}

fn parse_start_time(stat: &str) -> Option<u64> {
    let after_comm = &stat[stat.rfind(')')? + 1..];
    // Fields from 3 (state) on; starttime is field 22.
    after_comm.split_whitespace().nth(22 - 3)?.parse().ok()
}

fn supplementary_groups(pid: u32) -> Result<Vec<u32>, Error> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .map_err(|e| Error::Caller(format!("reading /proc/{pid}/status: {e}")))?;
    let line = status
        .lines()
        .find_map(|l| l.strip_prefix("Groups:"))
        .ok_or_else(|| Error::Caller(format!("/proc/{pid}/status has no Groups line")))?;
    line.split_whitespace()
        .map(|g| g.parse().map_err(|_| Error::Caller(format!("/proc/{pid}/status: bad group {g:?}"))))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn start_time_is_read_after_a_hostile_command_name() {
        let stat = "42 (evil) 1 2 3) S 1 42 42 0 -1 4194560 100 0 0 0 1 2 0 0 20 0 1 0 987654 1000 10";
        assert_eq!(parse_start_time(stat), Some(987654));
        assert_eq!(parse_start_time("42 (x) S 1"), None);
        assert_eq!(parse_start_time("no parenthesis"), None);
    }

    #[tokio::test]
    async fn the_peer_of_a_socket_pair_is_this_process() {
        let (a, _b) = UnixStream::pair().unwrap();
        let caller = Caller::of(&a).unwrap();
        assert_eq!(caller.pid, std::process::id());
        assert_eq!(caller.uid, nix::unistd::getuid().as_raw());
        assert!(caller.gids.contains(&nix::unistd::getgid().as_raw()));
        assert_eq!(caller.exe, std::env::current_exe().ok());
        caller.still_the_same_process().unwrap();
        let mut moved = caller.clone();
        moved.start_time += 1;
        let err = moved.still_the_same_process().unwrap_err();
        assert!(err.to_string().contains("now belongs to another process"), "{err}");
    }
}
