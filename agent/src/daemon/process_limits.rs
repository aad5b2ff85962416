//! Limits the daemon sets on its own process at start: no core dumps and no ptrace by its own
//! uid (a core or a debugger would read software key material, PINs and passphrases out of its
//! memory), and as many file descriptors as the hard limit allows (each connection holds two:
//! the socket and the caller's pidfd).

use nix::sys::resource::{getrlimit, setrlimit, Resource};

use crate::Error;

/// Descriptors kept for everything but connections: the database, the audit file, the listener,
/// key files, tokens, the TPM, the runtime.
const RESERVED_DESCRIPTORS: u64 = 64;

/// Descriptors each connection holds: its socket and the caller's pidfd.
const DESCRIPTORS_PER_CONNECTION: u64 = 2;

/// Makes the process undumpable (no core file, no ptrace attach or /proc/PID/mem read by
/// the same uid) with a zero core size, and raises the descriptor limit to its hard limit.
/// Returns how many connections the descriptors allow.
pub fn apply() -> Result<usize, Error> {
    let failed = |what: &str, e: nix::Error| Error::Config(format!("{what}: {e}"));
    nix::sys::prctl::set_dumpable(false).map_err(|e| failed("prctl(PR_SET_DUMPABLE, 0)", e))?;
    setrlimit(Resource::RLIMIT_CORE, 0, 0).map_err(|e| failed("setrlimit(RLIMIT_CORE, 0)", e))?;
    let (soft, hard) =
        getrlimit(Resource::RLIMIT_NOFILE).map_err(|e| failed("getrlimit(RLIMIT_NOFILE)", e))?;
    let descriptors = if soft < hard {
        match setrlimit(Resource::RLIMIT_NOFILE, hard, hard) {
            Ok(()) => hard,
            Err(e) => {
                tracing::warn!("could not raise the descriptor limit from {soft} to {hard}: {e}");
                soft
            }
        }
    } else {
        soft
    };
    Ok(connections_for(descriptors))
}

/// How many connections `descriptors` serve, after the reserve.
fn connections_for(descriptors: u64) -> usize {
    let spare = descriptors.saturating_sub(RESERVED_DESCRIPTORS) / DESCRIPTORS_PER_CONNECTION;
    usize::try_from(spare).unwrap_or(usize::MAX).max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn connections_leave_the_reserve() {
        assert_eq!(connections_for(1024), 480);
        assert_eq!(connections_for(65536), 32736);
        assert_eq!(connections_for(10), 1);
    }
}
