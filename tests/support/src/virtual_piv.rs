//! The virtual PIV card (tests/virtual-piv) for the YubiKey tests: one card at a time on
//! vpcd's first reader, so tests in a binary take turns (`lock()`). pcscd with
//! vsmartcard-vpcd must be running (scripts/test starts it) and `WARRANT_VIRTUAL_PIV` name the
//! card's binary (scripts/test builds it).

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// vpcd's first reader.
pub const READER: &str = "Virtual PCD 00 00";
/// The card's serial.
pub const SERIAL: u32 = 12_345_678;

static CARD: Mutex<()> = Mutex::new(());

/// Serialises the tests that use the card.
pub fn lock() -> MutexGuard<'static, ()> {
    CARD.lock().unwrap_or_else(|p| p.into_inner())
}

/// A running virtual card with its state in a directory.
pub struct VirtualCard {
    dir: PathBuf,
    child: Option<Child>,
    extra: Vec<String>,
}

fn binary() -> PathBuf {
    PathBuf::from(std::env::var_os("WARRANT_VIRTUAL_PIV").expect(
        "WARRANT_VIRTUAL_PIV must name the virtual-piv binary, and pcscd with vsmartcard-vpcd must run (scripts/test does both)",
    ))
}

impl VirtualCard {
    /// Inserts a new card (fresh state: PIN 123456, PUK 12345678, default management key).
    pub fn insert(dir: &Path, extra: &[&str]) -> Self {
        let mut card =
            Self { dir: dir.to_owned(), child: None, extra: extra.iter().map(|s| s.to_string()).collect() };
        card.start();
        card
    }

    /// The test CA the card's attestations chain to.
    pub fn ca_pem(&self) -> PathBuf {
        self.dir.join("ca.pem")
    }

    fn start(&mut self) {
        // pcscd sometimes misses a card that connects to vpcd right after another went (it
        // keeps reporting no card); pulling and inserting again brings it, as with real readers.
        for _ in 0..5 {
            std::fs::create_dir_all(&self.dir).unwrap();
            let log = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(self.dir.join("card.log"))
                .unwrap();
            let child = Command::new(binary())
                .arg(&self.dir)
                .args(&self.extra)
                .stdout(Stdio::null())
                .stderr(log)
                .spawn()
                .expect("start virtual-piv");
            self.child = Some(child);
            let deadline = Instant::now() + Duration::from_secs(4);
            while Instant::now() < deadline {
                if present() {
                    return;
                }
                let exited = self.child.as_mut().and_then(|c| c.try_wait().ok().flatten());
                let log = std::fs::read_to_string(self.dir.join("card.log")).unwrap_or_default();
                assert!(exited.is_none(), "the virtual card exited ({exited:?}): {log}");
                std::thread::sleep(Duration::from_millis(50));
            }
            self.remove();
            std::thread::sleep(Duration::from_millis(500));
        }
        let log = std::fs::read_to_string(self.dir.join("card.log")).unwrap_or_default();
        panic!("the virtual card did not appear in pcscd's reader {READER}: {log}");
    }

    /// Pulls the card: its process is killed.
    pub fn remove(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        // Wait until pcscd has seen the card go (vpcd notices the closed connection when it next
        // talks to the card); a new card connecting before that can sit unseen in vpcd's backlog.
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline && present() {
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Puts the same card back.
    pub fn reinsert(&mut self) {
        self.start();
    }

    /// Runs yubico-piv-tool on the card; returns stdout, panicking on failure.
    pub fn piv_tool(&self, args: &[&str]) -> String {
        let out = Command::new("yubico-piv-tool")
            .args(["-r", READER])
            .args(args)
            .output()
            .expect("yubico-piv-tool");
        assert!(out.status.success(), "yubico-piv-tool {args:?}: {}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8_lossy(&out.stdout).into_owned()
    }
}

/// Whether yubico-piv-tool (an independent client) sees the card in the reader.
fn present() -> bool {
    Command::new("yubico-piv-tool")
        .args(["-r", READER, "-a", "status"])
        .output()
        .is_ok_and(|o| o.status.success() && String::from_utf8_lossy(&o.stdout).contains(&SERIAL.to_string()))
}

impl Drop for VirtualCard {
    fn drop(&mut self) {
        self.remove();
    }
}
