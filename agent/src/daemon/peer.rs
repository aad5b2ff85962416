//! Who is calling: SO_PEERCRED's uid, gid and pid, the process's supplementary groups and
//! executable from /proc, and a handle on the process itself, checked again after each request
//! is handled so that an answer never goes to a process that reused the pid of the one that
//! asked. The handle is a pidfd (it names one process, never a reused pid, and polls readable
//! once that process exits). Linux 6.5+ hands out the connecting process's own pidfd
//! (SO_PEERPIDFD), so a caller that exits between its `connect()` and the daemon's `accept()`
//! is noticed even when its pid is reused meanwhile; older kernels get a pidfd opened by pid
//! at accept (pidfd_open), and before 5.3 the process start time from /proc is read before
//! and after instead.

use std::os::fd::OwnedFd;
use std::path::PathBuf;
use std::sync::Arc;

use nix::sys::socket::{getsockopt, sockopt::PeerPidfd};
use rustix::event::{poll, PollFd, PollFlags, Timespec};
use rustix::io::Errno;
use rustix::process::{pidfd_open, Pid, PidfdFlags};
use tokio::net::UnixStream;

use crate::Error;

/// The process on the other end of a connection.
#[derive(Debug, Clone)]
pub struct Caller {
    /// User id.
    pub uid: u32,
    /// Primary group id.
    pub gid: u32,
    /// Primary and supplementary group ids.
    pub gids: Vec<u32>,
    /// Process id.
    pub pid: u32,
    process: ProcessHandle,
    /// The executable, when /proc lets us read it.
    pub exe: Option<PathBuf>,
}

/// One process, as opposed to whichever process holds its pid later.
#[derive(Debug, Clone)]
struct ProcessHandle {
    pid: u32,
    pidfd: Option<Arc<OwnedFd>>,
    /// Clock ticks since boot, from /proc: the check where there is no pidfd.
    start_time: u64,
}

impl ProcessHandle {
    /// The process that connected `stream`: its own pidfd where the kernel hands it out
    /// (SO_PEERPIDFD, Linux 6.5+), else one opened by pid ([`ProcessHandle::open`]).
    fn of_peer(stream: &UnixStream, pid: u32) -> Result<Self, Error> {
        match getsockopt(stream, PeerPidfd) {
            Ok(fd) => Ok(Self { pid, pidfd: Some(Arc::new(fd)), start_time: start_time(pid)? }),
            // Before 6.16, no pidfd is handed out for a peer that has exited.
            Err(nix::errno::Errno::ESRCH | nix::errno::Errno::EINVAL) => {
                Err(Error::Caller(format!("process {pid} exited before it could be identified")))
            }
            Err(e) if SHORTAGE.iter().any(|s| s.raw_os_error() == e as i32) => {
                Err(Error::Unavailable(format!("SO_PEERPIDFD for process {pid}: {e}")))
            }
            // ENOPROTOOPT: a kernel before 6.5.
            Err(_) => Self::open(pid),
        }
    }

    /// A pidfd opened by pid at accept: the process holding `pid` now, which is the one that
    /// connected unless that one exited and its pid was reused in between.
    fn open(pid: u32) -> Result<Self, Error> {
        let exited = || Error::Caller(format!("process {pid} exited before it could be identified"));
        let raw = Pid::from_raw(i32::try_from(pid).map_err(|_| exited())?).ok_or_else(exited)?;
        let pidfd = match pidfd_open(raw, PidfdFlags::empty()) {
            Ok(fd) => Some(Arc::new(fd)),
            Err(Errno::SRCH) => return Err(exited()),
            Err(e) if SHORTAGE.contains(&e) => {
                return Err(Error::Unavailable(format!("opening a pidfd for process {pid}: {e}")))
            }
            // Kernels before 5.3: fall back to the start time.
            Err(_) => None,
        };
        Ok(Self { pid, pidfd, start_time: start_time(pid)? })
    }

    fn still_running(&self) -> Result<(), Error> {
        let gone = || Error::Caller(format!("process {} exited before its answer; it is withheld", self.pid));
        if let Some(fd) = &self.pidfd {
            let mut fds = [PollFd::new(fd.as_ref(), PollFlags::IN)];
            return match poll(&mut fds, Some(&Timespec { tv_sec: 0, tv_nsec: 0 })) {
                Ok(0) => Ok(()),
                Ok(_) => Err(gone()),
                Err(e) => Err(Error::Caller(format!("polling process {}: {e}", self.pid))),
            };
        }
        match start_time(self.pid) {
            Ok(t) if t == self.start_time => Ok(()),
            Ok(_) => Err(Error::Caller(format!(
                "pid {} now belongs to another process; the answer is withheld",
                self.pid
            ))),
            Err(_) => Err(gone()),
        }
    }
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
        let process = ProcessHandle::of_peer(stream, pid)?;
        let mut gids = supplementary_groups(pid)?;
        if !gids.contains(&cred.gid()) {
            gids.insert(0, cred.gid());
        }
        let exe = std::fs::read_link(format!("/proc/{pid}/exe")).ok();
        // /proc is read by pid: what was read is the caller's only if it still runs now (a pid
        // is reused only after its process has exited).
        process
            .still_running()
            .map_err(|_| Error::Caller(format!("process {pid} exited before it could be identified")))?;
        Ok(Self { uid: cred.uid(), gid: cred.gid(), gids, pid, process, exe })
    }

    /// Checks that the process that connected is still running, so still the owner of its pid.
    pub fn still_the_same_process(&self) -> Result<(), Error> {
        self.process.still_running()
    }

    /// A caller for unit tests of the rules.
    #[cfg(test)]
    pub fn for_tests(uid: u32, gids: Vec<u32>) -> Self {
        let process = ProcessHandle { pid: 1, pidfd: None, start_time: 0 };
        Self { uid, gid: gids.first().copied().unwrap_or(uid), gids, pid: 1, process, exe: None }
    }
}

/// Field 22 of /proc/PID/stat, counted after the command name (which may hold spaces and
/// parentheses, hence the last `)`).
fn start_time(pid: u32) -> Result<u64, Error> {
    let stat = read_proc(pid, "stat")?;
    parse_start_time(&stat).ok_or_else(|| Error::Caller(format!("/proc/{pid}/stat has no start time")))
}

fn parse_start_time(stat: &str) -> Option<u64> {
    let after_comm = &stat[stat.rfind(')')? + 1..];
    // Fields from 3 (state) on; starttime is field 22.
    after_comm.split_whitespace().nth(22 - 3)?.parse().ok()
}

/// Errors that mean the daemon is short of a resource, not that the caller is unknown.
const SHORTAGE: [Errno; 3] = [Errno::MFILE, Errno::NFILE, Errno::NOMEM];

/// Reads /proc/PID/`file`. Running out of descriptors or memory is the daemon's shortage, not
/// a failure to identify the caller: it is answered 503, never as an identity refusal.
fn read_proc(pid: u32, file: &str) -> Result<String, Error> {
    std::fs::read_to_string(format!("/proc/{pid}/{file}")).map_err(|e| {
        let message = format!("reading /proc/{pid}/{file}: {e}");
        match Errno::from_io_error(&e) {
            Some(errno) if SHORTAGE.contains(&errno) => Error::Unavailable(message),
            _ => Error::Caller(message),
        }
    })
}

fn supplementary_groups(pid: u32) -> Result<Vec<u32>, Error> {
    let status = read_proc(pid, "status")?;
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
    }

    /// Runs `sleep 30` with pid `pid` (free, since its process exited), by setting the pid
    /// namespace's last pid (root only); `None` if another process took it first.
    fn take_pid(pid: u32) -> Option<std::process::Child> {
        std::fs::write("/proc/sys/kernel/ns_last_pid", (pid - 1).to_string()).ok()?;
        let mut child = std::process::Command::new("sleep").arg("30").spawn().ok()?;
        if child.id() == pid {
            return Some(child);
        }
        let _ = child.kill();
        let _ = child.wait();
        None
    }

    /// A caller that connects and exits before the daemon accepts, its pid then taken by
    /// another process: with SO_PEERPIDFD (this kernel) the pidfd is the connecting
    /// process's, so the caller is refused as exited; a pidfd opened by pid (the fallback for
    /// kernels before 6.5) would name the newcomer.
    #[tokio::test]
    async fn a_pid_reused_between_connect_and_accept_is_not_taken_for_the_caller() {
        if !nix::unistd::geteuid().is_root() {
            eprintln!("skipped: reusing a pid on purpose (ns_last_pid) needs root");
            return;
        }
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s");
        let listener = std::os::unix::net::UnixListener::bind(&path).unwrap();
        let connect = "import socket, sys; socket.socket(socket.AF_UNIX).connect(sys.argv[1])";
        let mut tries = 0;
        let (stream, newcomer, pid) = loop {
            tries += 1;
            assert!(tries <= 20, "the exited caller's pid was taken by others 20 times");
            let mut caller =
                std::process::Command::new("python3").args(["-c", connect]).arg(&path).spawn().unwrap();
            let pid = caller.id();
            assert!(caller.wait().unwrap().success());
            let (stream, _) = listener.accept().unwrap();
            if let Some(newcomer) = take_pid(pid) {
                break (stream, newcomer, pid);
            }
        };
        let mut newcomer = newcomer;
        stream.set_nonblocking(true).unwrap();
        let stream = UnixStream::from_std(stream).unwrap();
        let err = Caller::of(&stream).unwrap_err();
        assert!(
            err.to_string().contains(&format!("process {pid} exited before it could be identified")),
            "{err}"
        );
        // The gap SO_PEERPIDFD closes: by pid, the newcomer passes for the caller.
        let by_pid = ProcessHandle::open(pid).unwrap();
        by_pid.still_running().unwrap();
        assert_eq!(std::fs::read_link(format!("/proc/{pid}/exe")).unwrap().file_name().unwrap(), "sleep");
        newcomer.kill().unwrap();
        newcomer.wait().unwrap();
    }

    #[test]
    fn an_exited_process_is_noticed_by_pidfd_and_by_start_time() {
        let mut child = std::process::Command::new("sleep").arg("30").spawn().unwrap();
        let handle = ProcessHandle::open(child.id()).unwrap();
        assert!(handle.pidfd.is_some(), "this kernel has pidfd_open");
        let by_start_time = ProcessHandle { pidfd: None, ..handle.clone() };
        handle.still_running().unwrap();
        by_start_time.still_running().unwrap();
        child.kill().unwrap();
        child.wait().unwrap();
        let err = handle.still_running().unwrap_err();
        assert!(err.to_string().contains("exited before its answer"), "{err}");
        assert!(by_start_time.still_running().is_err());
        // A pid taken by another process: its start time differs.
        let reused = ProcessHandle { pid: std::process::id(), pidfd: None, start_time: 0 };
        let err = reused.still_running().unwrap_err();
        assert!(err.to_string().contains("now belongs to another process"), "{err}");
    }
}
