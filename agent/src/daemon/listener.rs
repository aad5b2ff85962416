//! The listening socket: handed over by systemd (LISTEN_FDS), or bound at the configured path
//! with a private directory (0700, or 0750 with a socket group) and mode 0600 (0660 with a
//! group). A stale socket is replaced; one that another daemon answers on is left alone.

use std::fs;
use std::io::ErrorKind;
use std::os::fd::{FromRawFd, OwnedFd};
use std::os::unix::fs::{DirBuilderExt, FileTypeExt, MetadataExt, PermissionsExt};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};

use super::config::Config;
use crate::Error;

/// The first file descriptor systemd passes.
const SD_LISTEN_FDS_START: i32 = 3;

/// Where the listener came from.
pub struct Listener {
    /// The socket.
    pub socket: UnixListener,
    /// The path to remove on exit (none when systemd owns the socket).
    pub bound_path: Option<PathBuf>,
}

/// The socket systemd passed, else a newly bound one.
pub fn listen(config: &Config) -> Result<Listener, Error> {
    if let Some(socket) = from_systemd()? {
        tracing::info!("listening on the socket systemd passed");
        return Ok(Listener { socket, bound_path: None });
    }
    let socket = bind(&config.socket, config.socket_gid)?;
    tracing::info!("listening on {}", config.socket.display());
    Ok(Listener { socket, bound_path: Some(config.socket.clone()) })
}

fn from_systemd() -> Result<Option<UnixListener>, Error> {
    let for_us =
        std::env::var("LISTEN_PID").ok().and_then(|p| p.parse::<u32>().ok()) == Some(std::process::id());
    let fds = std::env::var("LISTEN_FDS").ok().and_then(|n| n.parse::<i32>().ok()).unwrap_or(0);
    // Not for children: they must not believe the socket is theirs.
    for var in ["LISTEN_PID", "LISTEN_FDS", "LISTEN_FDNAMES"] {
        std::env::remove_var(var);
    }
    if !for_us || fds == 0 {
        return Ok(None);
    }
    if fds != 1 {
        return Err(Error::Config(format!("systemd passed {fds} sockets; warrantd listens on exactly one")));
    }
    // The crate's one unsafe block: taking ownership of a descriptor by number has no safe form.
    // SAFETY: LISTEN_PID names this process, so systemd passed fd 3 to it and nothing else owns it.
    #[allow(unsafe_code)]
    let fd = unsafe { OwnedFd::from_raw_fd(SD_LISTEN_FDS_START) };
    let socket = UnixListener::from(fd);
    socket
        .local_addr()
        .map_err(|e| Error::Config(format!("the socket systemd passed is not a Unix stream socket: {e}")))?;
    Ok(Some(socket))
}

fn bind(path: &Path, gid: Option<u32>) -> Result<UnixListener, Error> {
    let io = |p: &Path| {
        let p = p.to_owned();
        move |source| Error::Io { path: p, source }
    };
    let dir = path.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new("."));
    let dir_mode = if gid.is_some() { 0o750 } else { 0o700 };
    // Only a directory that is the socket's alone is ours to chmod: one made here, or one of
    // ours holding nothing but this socket (left by an earlier start). As root,
    // `socket = "/tmp/agent.sock"` must not turn /tmp into 0700. Any other directory keeps its
    // mode; the socket's own mode protects it, unless anyone may replace the socket.
    let created = match fs::DirBuilder::new().mode(dir_mode).create(dir) {
        Ok(()) => true,
        Err(e) if e.kind() == ErrorKind::AlreadyExists => false,
        Err(e) if e.kind() == ErrorKind::NotFound => {
            fs::DirBuilder::new().recursive(true).mode(dir_mode).create(dir).map_err(io(dir))?;
            true
        }
        Err(source) => return Err(Error::Io { path: dir.to_owned(), source }),
    };
    let meta = fs::metadata(dir).map_err(io(dir))?;
    if !meta.is_dir() {
        return Err(Error::Config(format!("{}: the socket's directory is not a directory", dir.display())));
    }
    let ours = created || (meta.uid() == nix::unistd::geteuid().as_raw() && holds_only(dir, path)?);
    if ours {
        // The mode DirBuilder used was reduced by the umask; set it exactly.
        fs::set_permissions(dir, fs::Permissions::from_mode(dir_mode)).map_err(io(dir))?;
        if let Some(gid) = gid {
            std::os::unix::fs::chown(dir, None, Some(gid)).map_err(io(dir))?;
        }
    } else if meta.mode() & 0o002 != 0 && meta.mode() & 0o1000 == 0 {
        return Err(Error::Config(format!(
            "{}: the socket's directory is writable by anyone; choose a private directory",
            dir.display()
        )));
    }
    remove_if_stale(path)?;
    let socket = UnixListener::bind(path).map_err(io(path))?;
    let mode = if gid.is_some() { 0o660 } else { 0o600 };
    if let Some(gid) = gid {
        std::os::unix::fs::chown(path, None, Some(gid)).map_err(io(path))?;
    }
    fs::set_permissions(path, fs::Permissions::from_mode(mode)).map_err(io(path))?;
    Ok(socket)
}

/// Whether `dir` holds no entry but (perhaps) `socket`.
fn holds_only(dir: &Path, socket: &Path) -> Result<bool, Error> {
    let entries = fs::read_dir(dir).map_err(|source| Error::Io { path: dir.to_owned(), source })?;
    for entry in entries {
        let entry = entry.map_err(|source| Error::Io { path: dir.to_owned(), source })?;
        if Some(entry.file_name().as_os_str()) != socket.file_name() {
            return Ok(false);
        }
    }
    Ok(true)
}

fn remove_if_stale(path: &Path) -> Result<(), Error> {
    let meta = match fs::symlink_metadata(path) {
        Ok(m) => m,
        Err(e) if e.kind() == ErrorKind::NotFound => return Ok(()),
        Err(source) => return Err(Error::Io { path: path.to_owned(), source }),
    };
    if !meta.file_type().is_socket() {
        return Err(Error::Conflict(format!(
            "{} exists and is not a socket; remove it or choose another path",
            path.display()
        )));
    }
    match UnixStream::connect(path) {
        Ok(_) => Err(Error::Conflict(format!(
            "another warrantd is answering on {}; stop it first (or choose another socket)",
            path.display()
        ))),
        Err(e) if e.kind() == ErrorKind::ConnectionRefused => {
            tracing::info!("replacing the stale socket {}", path.display());
            fs::remove_file(path).map_err(|source| Error::Io { path: path.to_owned(), source })
        }
        Err(source) => Err(Error::Io { path: path.to_owned(), source }),
    }
}
