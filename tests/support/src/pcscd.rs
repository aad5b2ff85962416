//! A private pcscd, for tests that stop pcscd without stopping the one every other test (and
//! every other program on the machine) uses. pcscd 1.9 puts its socket and pid file in
//! /run/pcscd, a path built in, and refuses to start while another's pid file is there; so it
//! runs in a mount namespace of its own (root only) where a test's directory is mounted on
//! /run/pcscd: its socket is `socket()` for everyone else, and clients reach it with
//! `PCSCLITE_CSOCK_NAME`. It reads no reader configuration (vpcd's belongs to the shared
//! pcscd), so it has no reader; USB readers it would see through hotplug are not claimed from
//! the shared one (it cannot open a device the other holds).

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A running private pcscd.
pub struct PrivatePcscd {
    dir: PathBuf,
    child: Option<Child>,
}

impl PrivatePcscd {
    /// Starts one with its files in `dir`; `None` (and a message) when not root, as only root
    /// can make the mount namespace.
    pub fn start(dir: &Path) -> Option<Self> {
        if !is_root() {
            eprintln!("skipped: a private pcscd needs a mount namespace, which needs root (CI runs as root)");
            return None;
        }
        let (run, readers) = (dir.join("run"), dir.join("reader.conf.d"));
        std::fs::create_dir_all(&run).unwrap();
        std::fs::create_dir_all(&readers).unwrap();
        let script = "mount --bind \"$1\" /run/pcscd && exec pcscd --foreground -c \"$2\"";
        let child = Command::new("unshare")
            .args(["--mount", "--propagation", "private", "sh", "-c", script, "sh"])
            .arg(&run)
            .arg(&readers)
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(dir.join("pcscd.log")).unwrap())
            .spawn()
            .expect("unshare (util-linux) and pcscd");
        let mut pcscd = Self { dir: dir.to_owned(), child: Some(child) };
        let deadline = Instant::now() + Duration::from_secs(10);
        while !pcscd.socket().exists() {
            let exited = pcscd.child.as_mut().and_then(|c| c.try_wait().unwrap());
            let log = std::fs::read_to_string(dir.join("pcscd.log")).unwrap_or_default();
            assert!(
                exited.is_none() && Instant::now() < deadline,
                "the private pcscd did not start ({exited:?}): {log}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        Some(pcscd)
    }

    /// Its socket, for `PCSCLITE_CSOCK_NAME`.
    pub fn socket(&self) -> PathBuf {
        self.dir.join("run/pcscd.comm")
    }

    /// Stops it as systemd does (SIGTERM): it removes its socket and exits.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = Command::new("kill").args(["-TERM", &child.id().to_string()]).status();
            let deadline = Instant::now() + Duration::from_secs(10);
            while child.try_wait().unwrap().is_none() {
                if Instant::now() > deadline {
                    let _ = child.kill();
                    let _ = child.wait();
                    break;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
        }
    }
}

fn is_root() -> bool {
    // The effective uid of this process, without a libc dependency: /proc/self/status's Uid line.
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines().find(|l| l.starts_with("Uid:")).map(|l| l.split_whitespace().nth(2) == Some("0"))
        })
        .unwrap_or(false)
}

impl Drop for PrivatePcscd {
    fn drop(&mut self) {
        self.stop();
    }
}
