//! A real `warrantd` process on a temporary socket, for the integration tests: started from its
//! binary with a config written here, ready when it says READY=1 over sd_notify.

#![allow(dead_code)] // Each test file uses its own part of this harness.

use std::io::{Read, Write};
use std::os::unix::net::{UnixDatagram, UnixStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use warrant_api as api;
use warrant_client::Client;

/// The Cedar policy the tests grant.
pub const POLICY: &str = r#"permit (principal in Warrant::Group::"deployers", action == Warrant::Action::"deploy",
  resource == Warrant::Resource::"prod/api") when { context.request.method == "POST" };"#;

pub const AUDIENCE: &str = "https://api.example.com";
pub const TARGET: &str = "https://api.example.com/v1/deploy";

/// The `warrant` binary (package warrant-cli), built next to warrantd: `cargo test --workspace`
/// builds both; testing this package alone needs `cargo build -p warrant-cli` first.
pub fn warrant_bin() -> PathBuf {
    let path = Path::new(env!("CARGO_BIN_EXE_warrantd")).with_file_name("warrant");
    assert!(path.is_file(), "{} is missing: build it with `cargo build -p warrant-cli`", path.display());
    path
}

/// The config every test daemon gets: this uid is admin and may use device keys for AUDIENCE.
pub fn base_config(dir: &Path) -> String {
    warrant_agent::daemon::config::single_user(dir, nix::unistd::getuid().as_raw(), AUDIENCE)
}

/// Creates the daemon's authority `issuer` with a new issuance key.
pub fn init_authority(client: &mut Client, issuer: &str) -> api::AuthoritySettings {
    let init = api::InitAuthority {
        issuer: issuer.into(),
        status_uri: "https://a.example/s/1".into(),
        key_uri: None,
    };
    client.post("/authority", &init).unwrap()
}

/// Challenge for `principal`, enrollment of `key` as `principal`, and a grant under POLICY
/// (group `deployers`, grant valid an hour, warrants up to 300 s); returns the grant.
/// A grant for `key` under POLICY. `allow_unattested` lets the authority grant software keys
/// and self-reported (PKCS#11) evidence.
pub fn grant_for(client: &mut Client, key: &str, principal: &str, allow_unattested: bool) -> Vec<u8> {
    let challenge = api::ChallengeRequest { ttl: 60, principal: Some(principal.into()), tpm_identity: None };
    let challenge: api::ChallengeResponse = client.post("/authority/challenges", &challenge).unwrap();
    let request = api::EnrollRequest {
        key: key.into(),
        principal: principal.into(),
        challenge: challenge.challenge,
        tpm_credential: None,
    };
    let enrollment: api::EnrollResponse = client.post("/enroll", &request).unwrap();
    let request = api::GrantRequest {
        allow_software: allow_unattested,
        allow_self_reported: allow_unattested,
        ..grant_request(enrollment.enrollment)
    };
    client.post::<_, api::GrantResponse>("/authority/grants", &request).unwrap().grant
}

/// A grant request for `enrollment` under POLICY (group `deployers`, an hour, warrants up to
/// 300 s; software keys allowed, self-reported evidence not), for the principal the challenge
/// recorded.
pub fn grant_request(enrollment: Vec<u8>) -> api::GrantRequest {
    api::GrantRequest {
        enrollment,
        principal: None,
        policy: POLICY.into(),
        groups: vec!["deployers".into()],
        attributes: Default::default(),
        valid_for: 3600,
        max_warrant_ttl: 300,
        allow_software: true,
        allow_self_reported: false,
    }
}

/// A request to sign a warrant with key `laptop` under `grant` for `audience`: POST TARGET
/// with body `{}`, action `deploy` on `prod/api`, 60 s.
pub fn sign_request(grant: &[u8], audience: &str) -> api::SignRequest {
    api::SignRequest {
        key: "laptop".into(),
        grant: grant.to_vec(),
        audience: audience.into(),
        action: "deploy".into(),
        resource: "prod/api".into(),
        request: api::BoundRequest {
            method: "POST".into(),
            target: TARGET.into(),
            body_sha256: hex::encode(warrant_envelope::device::sha256(b"{}")),
        },
        context: Default::default(),
        nonce: None,
        ttl: 60,
        status_list: None,
    }
}

/// A SoftHSM2 configuration under `dir` with one token `label` (user PIN `pin`); returns the
/// configuration file for SOFTHSM2_CONF.
pub fn softhsm(dir: &Path, label: &str, pin: &str) -> PathBuf {
    std::fs::create_dir_all(dir.join("tokens")).unwrap();
    let conf = dir.join("softhsm2.conf");
    let text =
        format!("directories.tokendir = {}\nobjectstore.backend = file\n", dir.join("tokens").display());
    std::fs::write(&conf, text).unwrap();
    let out = Command::new("softhsm2-util")
        .args(["--init-token", "--free", "--label", label, "--pin", pin, "--so-pin", "13579111"])
        .env("SOFTHSM2_CONF", &conf)
        .output()
        .expect("softhsm2-util (scripts/test installs softhsm2)");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    conf
}

/// A running warrantd.
pub struct Daemon {
    pub child: Child,
    pub dir: PathBuf,
    pub socket: PathBuf,
    pub config: PathBuf,
    notify: UnixDatagram,
}

/// Where a test's files go.
pub fn workdir() -> tempfile::TempDir {
    tempfile::Builder::new().prefix("warrantd-test-").tempdir().unwrap()
}

/// Starts warrantd with `config` (written to `dir/agent.toml`); returns its stderr on failure.
pub fn try_start(dir: &Path, config: &str) -> Result<Daemon, String> {
    let path = dir.join("agent.toml");
    std::fs::write(&path, config).unwrap();
    start_command(dir, &path, Command::new(env!("CARGO_BIN_EXE_warrantd")))
}

/// Starts `command` (warrantd or a wrapper around it) and waits for READY=1.
pub fn start_command(dir: &Path, config: &Path, command: Command) -> Result<Daemon, String> {
    start_command_inner(dir, config, command, None)
}

/// Like [`start_command`], for a `command` that runs warrantd as user `uid`.
pub fn start_command_as(dir: &Path, config: &Path, command: Command, uid: u32) -> Result<Daemon, String> {
    start_command_inner(dir, config, command, Some(uid))
}

fn start_command_inner(
    dir: &Path,
    config: &Path,
    mut command: Command,
    uid: Option<u32>,
) -> Result<Daemon, String> {
    command.arg("--config").arg(config);
    start_at(dir, config, &socket_of(config), command, uid)
}

/// Starts `command` (a warrantd with its arguments; `config` is the file it reads, or would)
/// whose socket will be `socket`, as user `uid` when given, and waits for READY=1.
pub fn start_at(
    dir: &Path,
    config: &Path,
    socket: &Path,
    mut command: Command,
    uid: Option<u32>,
) -> Result<Daemon, String> {
    let notify_path = dir.join(format!("notify-{}", next_id()));
    let _ = std::fs::remove_file(&notify_path);
    let notify = UnixDatagram::bind(&notify_path).unwrap();
    if let Some(uid) = uid {
        // The daemon's user must be able to send READY=1.
        std::os::unix::fs::chown(&notify_path, Some(uid), None).unwrap();
    }
    notify.set_read_timeout(Some(Duration::from_millis(100))).unwrap();
    let stderr = std::fs::File::create(dir.join("warrantd.stderr")).unwrap();
    let child = command
        .env("NOTIFY_SOCKET", &notify_path)
        .env("WARRANTD_LOG", "info")
        .stdout(Stdio::null())
        .stderr(stderr)
        .spawn()
        .unwrap();
    let mut daemon =
        Daemon { child, dir: dir.to_owned(), socket: socket.to_owned(), config: config.to_owned(), notify };
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if daemon.wait_notification("READY=1", Duration::from_millis(100)) {
            return Ok(daemon);
        }
        if let Ok(Some(_)) = daemon.child.try_wait() {
            return Err(daemon.stderr());
        }
        if Instant::now() > deadline {
            let _ = daemon.child.kill();
            panic!("warrantd not ready after 30 s: {}", daemon.stderr());
        }
    }
}

fn next_id() -> u32 {
    use std::sync::atomic::{AtomicU32, Ordering};
    static N: AtomicU32 = AtomicU32::new(1);
    N.fetch_add(1, Ordering::SeqCst)
}

fn socket_of(config: &Path) -> PathBuf {
    let text = std::fs::read_to_string(config).unwrap();
    let line = text.lines().find(|l| l.starts_with("socket =")).expect("config names a socket");
    PathBuf::from(line.split('"').nth(1).unwrap())
}

/// Starts warrantd with `config`, panicking with its stderr if it does not become ready.
pub fn start(dir: &Path, config: &str) -> Daemon {
    try_start(dir, config).unwrap_or_else(|stderr| panic!("warrantd did not start: {stderr}"))
}

impl Daemon {
    /// A client on this daemon's socket.
    pub fn client(&self) -> Client {
        Client::new(&self.socket).unwrap()
    }

    /// What the daemon wrote to stderr so far.
    pub fn stderr(&self) -> String {
        std::fs::read_to_string(self.dir.join("warrantd.stderr")).unwrap_or_default()
    }

    /// Waits up to `timeout` for a notification containing `what`.
    pub fn wait_notification(&self, what: &str, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        let mut buf = [0u8; 512];
        while Instant::now() < deadline {
            if let Ok(n) = self.notify.recv(&mut buf) {
                if String::from_utf8_lossy(&buf[..n]).contains(what) {
                    return true;
                }
            }
        }
        false
    }

    /// Sends `signal`.
    pub fn signal(&self, signal: Signal) {
        kill(Pid::from_raw(self.child.id() as i32), signal).unwrap();
    }

    /// SIGTERM, then waits for the exit.
    pub fn stop(mut self) -> ExitStatus {
        self.signal(Signal::SIGTERM);
        self.wait_exit(Duration::from_secs(30))
    }

    /// Waits for the process to exit.
    pub fn wait_exit(&mut self, timeout: Duration) -> ExitStatus {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            assert!(Instant::now() < deadline, "warrantd did not exit: {}", self.stderr());
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// The audit log's lines, parsed.
    pub fn audit(&self) -> Vec<serde_json::Value> {
        std::fs::read_to_string(self.dir.join("audit.jsonl"))
            .unwrap_or_default()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("audit line {l:?}: {e}")))
            .collect()
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One HTTP/1.1 request on `stream` (kept alive); returns the status and the body.
pub fn raw_request(stream: &mut UnixStream, method: &str, path: &str, body: Option<&str>) -> (u16, String) {
    let body = body.unwrap_or("");
    let head = format!(
        "{method} {path} HTTP/1.1\r\nhost: warrantd\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes()).unwrap();
    stream.write_all(body.as_bytes()).unwrap();
    read_response(stream)
}

/// Reads one response with a content-length body.
pub fn read_response(stream: &mut UnixStream) -> (u16, String) {
    let mut buf = Vec::new();
    let mut byte = [0u8; 1];
    while !buf.ends_with(b"\r\n\r\n") {
        let n = stream.read(&mut byte).unwrap();
        assert_eq!(n, 1, "connection closed in the headers: {}", String::from_utf8_lossy(&buf));
        buf.push(byte[0]);
    }
    let head = String::from_utf8(buf).unwrap();
    let status = head.split(' ').nth(1).unwrap().parse().unwrap();
    let length: usize = head
        .lines()
        .find_map(|l| {
            l.to_ascii_lowercase().strip_prefix("content-length:").map(|v| v.trim().parse().unwrap())
        })
        .unwrap_or(0);
    let mut body = vec![0u8; length];
    stream.read_exact(&mut body).unwrap();
    (status, String::from_utf8(body).unwrap())
}

/// Runs the `warrant` CLI in `dir`, on `socket` when given.
pub fn warrant(dir: &Path, socket: Option<&Path>, args: &[&str]) -> std::process::Output {
    let mut command = Command::new(warrant_bin());
    command.args(args).current_dir(dir);
    if let Some(socket) = socket {
        command.env("WARRANT_SOCKET", socket);
    }
    command.output().unwrap()
}

/// [`warrant`], which must exit 0; returns its standard output.
pub fn warrant_ok(dir: &Path, socket: Option<&Path>, args: &[&str]) -> String {
    let out = warrant(dir, socket, args);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{args:?}: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// Signs a warrant with key `laptop` under `grant` (POST TARGET, body `{}`, deploy on
/// prod/api) and verifies it offline against `trust.json` and `status.cbor` in `dir`: the
/// `--json` verify's output, or the sign's when signing failed.
pub fn sign_and_verify(dir: &Path, socket: &Path, grant: &str) -> std::process::Output {
    std::fs::write(dir.join("body.json"), "{}").unwrap();
    let request = ["--method", "POST", "--target", TARGET, "--body", "body.json"];
    let mut sign = vec!["sign", "--key", "laptop", "--grant", grant, "--audience", AUDIENCE];
    sign.extend(["--action", "deploy", "--resource", "prod/api", "--out", "warrant.cbor"]);
    sign.extend(request);
    let out = warrant(dir, Some(socket), &sign);
    if out.status.code() != Some(0) {
        return out;
    }
    let mut verify =
        vec!["--json", "verify", "warrant.cbor", "--trust", "trust.json", "--audience", AUDIENCE];
    verify.extend(["--status", "status.cbor", "--action", "deploy", "--resource", "prod/api"]);
    verify.extend(request);
    warrant(dir, Some(socket), &verify)
}

/// A second, unprivileged user for tests of other users' access: its uid and name. `None`
/// (and a message) when not root, since only root can create one.
pub fn test_user() -> Option<(u32, String)> {
    if !nix::unistd::geteuid().is_root() {
        eprintln!("skipped: creating a second user needs root (CI runs as root)");
        return None;
    }
    let name = "warrant-test";
    if nix::unistd::User::from_name(name).unwrap().is_none() {
        let status =
            Command::new("useradd").args(["--system", "--user-group", "--no-create-home", name]).status();
        // Another test process may have created it meanwhile.
        if !status.map(|s| s.success()).unwrap_or(false)
            && nix::unistd::User::from_name(name).unwrap().is_none()
        {
            panic!("useradd {name} failed");
        }
    }
    let user = nix::unistd::User::from_name(name).unwrap().unwrap();
    Some((user.uid.as_raw(), name.to_owned()))
}

/// A copy of the binary at `path` in `dir` (which must be reachable by everyone), so that a
/// second user can run it wherever the checkout lies (a 0700 home directory too). Fails
/// loudly if the copy cannot be run: a test must not read its own set-up failure as the
/// behaviour it checks.
pub fn reachable_copy(dir: &Path, path: &str) -> PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let name = Path::new(path).file_name().unwrap();
    let copy = dir.join(name);
    std::fs::copy(path, &copy).unwrap();
    std::fs::set_permissions(&copy, std::fs::Permissions::from_mode(0o755)).unwrap();
    let mut ancestor = copy.parent();
    while let Some(d) = ancestor {
        let mode = std::fs::metadata(d).unwrap().permissions().mode();
        assert!(
            mode & 0o001 != 0,
            "{} is not traversable by other users: the test cannot run there",
            d.display()
        );
        ancestor = d.parent();
    }
    copy
}

/// A tmpfs of `kib` KiB mounted at `dir` (root only), unmounted on drop.
pub struct Tmpfs(pub PathBuf);

impl Tmpfs {
    pub fn mount(dir: &Path, kib: u32) -> Option<Self> {
        if !nix::unistd::geteuid().is_root() {
            eprintln!("skipped: mounting a small tmpfs to fill needs root (CI runs as root)");
            return None;
        }
        std::fs::create_dir_all(dir).unwrap();
        let status = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={kib}k,mode=0755"), "tmpfs"])
            .arg(dir)
            .status()
            .unwrap();
        assert!(status.success(), "mount tmpfs at {}", dir.display());
        Some(Self(dir.to_owned()))
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

/// The config with the audit file at `audit`.
pub fn with_audit_file(config: &str, audit: &Path) -> String {
    with_path(config, "file", audit)
}

/// The config with the (single) line `key = "..."` set to `path`.
pub fn with_path(config: &str, key: &str, path: &Path) -> String {
    let prefix = format!("{key} =");
    config
        .lines()
        .map(|l| {
            if l.starts_with(&prefix) {
                format!("{key} = {:?}", path.display().to_string())
            } else {
                l.to_owned()
            }
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// Every line of the audit file at `path`, parsed; a torn line fails the test.
pub fn audit_lines(path: &Path) -> Vec<serde_json::Value> {
    let text = std::fs::read_to_string(path).unwrap();
    assert!(text.is_empty() || text.ends_with('\n'), "the file ends in a torn line: {text:?}");
    text.lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("torn audit line {l:?}: {e}")))
        .collect()
}
