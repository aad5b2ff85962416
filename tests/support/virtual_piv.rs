//! The virtual PIV card (tests/virtual-piv) for the YubiKey tests: one card at a time on
//! vpcd's first reader, so tests in a binary take turns (`lock()`). pcscd with
//! vsmartcard-vpcd must be running (scripts/test starts it) and `WARRANT_VIRTUAL_PIV` name the
//! card's binary (scripts/test builds it).

#![allow(dead_code)] // Each test crate uses part of it.

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
        let child = Command::new(binary())
            .arg(&self.dir)
            .args(&self.extra)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start virtual-piv");
        self.child = Some(child);
        // Present once yubico-piv-tool (an independent client) sees it.
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let ok = Command::new("yubico-piv-tool").args(["-r", READER, "-a", "status"]).output().is_ok_and(
                |o| o.status.success() && String::from_utf8_lossy(&o.stdout).contains(&SERIAL.to_string()),
            );
            if ok {
                return;
            }
            assert!(Instant::now() < deadline, "the virtual card did not appear in pcscd's reader {READER}");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Pulls the card: its process is killed.
    pub fn remove(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        // pcscd notices the card gone when vpcd's connection closes.
        std::thread::sleep(Duration::from_millis(300));
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

impl Drop for VirtualCard {
    fn drop(&mut self) {
        self.remove();
    }
}
