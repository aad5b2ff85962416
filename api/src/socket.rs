//! Where warrantd listens by default: what the daemon binds and its clients try.

use std::path::PathBuf;

/// The system daemon's socket.
pub const SYSTEM: &str = "/run/warrant/agent.sock";

/// The user daemon's socket, `$XDG_RUNTIME_DIR/warrant/agent.sock` (None without
/// `$XDG_RUNTIME_DIR` or with it empty).
pub fn user() -> Option<PathBuf> {
    std::env::var_os("XDG_RUNTIME_DIR")
        .map(PathBuf::from)
        // The XDG Base Directory specification: a relative value is to be ignored.
        .filter(|dir| dir.is_absolute())
        .map(|dir| dir.join("warrant/agent.sock"))
}
