//! The first run on a workstation: `warrant setup` choosing the key store (a TPM reached through
//! the configured TCTI, the virtual YubiKey when only it is present, software keys otherwise),
//! the file it writes passing `--check-config` and a warrant signed through a warrantd on it;
//! `warrant doctor` failing each forced fault with its fix and passing a healthy set-up; and
//! warrantd in user mode with no configuration file.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // In tests a failed assumption is a failed test.

mod common;

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// A user's directories: `$XDG_CONFIG_HOME`, `$XDG_STATE_HOME`, `$XDG_RUNTIME_DIR` under `root`.
struct Home {
    root: PathBuf,
}

impl Home {
    fn new(root: &Path) -> Self {
        for d in ["config", "state", "run"] {
            std::fs::create_dir_all(root.join(d)).unwrap();
        }
        Self { root: root.to_owned() }
    }

    fn config(&self) -> PathBuf {
        self.root.join("config/warrant/agent.toml")
    }

    fn socket(&self) -> PathBuf {
        self.root.join("run/warrant/agent.sock")
    }

    fn env(&self, command: &mut Command) {
        command
            .env("HOME", &self.root)
            .env("XDG_CONFIG_HOME", self.root.join("config"))
            .env("XDG_STATE_HOME", self.root.join("state"))
            .env("XDG_RUNTIME_DIR", self.root.join("run"))
            .env("TSS2_LOG", "all+none")
            .env_remove("WARRANT_SOCKET")
            .env_remove("WARRANTD_CONFIG");
    }

    /// `warrant ARGS` as this user's session would run it.
    fn warrant(&self, args: &[&str]) -> Output {
        let mut command = Command::new(common::warrant_bin());
        self.env(&mut command);
        command.args(args).current_dir(&self.root).output().unwrap()
    }

    fn warrant_ok(&self, args: &[&str]) -> String {
        let out = self.warrant(args);
        assert_eq!(out.status.code(), Some(0), "{args:?}: {}{}", text(&out.stdout), text(&out.stderr));
        text(&out.stdout)
    }

    /// `warrant setup --mode user ARGS --json`: the JSON report.
    fn setup(&self, args: &[&str]) -> serde_json::Value {
        let out = self.warrant_ok(&[&["--json", "setup", "--mode", "user"], args].concat());
        serde_json::from_str(&out).unwrap()
    }

    /// warrantd on the configuration setup wrote.
    fn start(&self) -> common::Daemon {
        let mut command = Command::new(env!("CARGO_BIN_EXE_warrantd"));
        self.env(&mut command);
        command.arg("--config").arg(self.config());
        common::start_at(&self.root, &self.config(), &self.socket(), command, None)
            .unwrap_or_else(|e| panic!("warrantd did not start on the written config: {e}"))
    }
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// A TCTI on which no TPM answers.
fn closed_tcti() -> String {
    let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    format!("swtpm:host=127.0.0.1,port={port}")
}

/// An authority warrantd of its own (software keys), with `authority_extra` in `[authority]`.
fn authority(dir: &Path, authority_extra: &str) -> common::Daemon {
    std::fs::create_dir_all(dir).unwrap();
    let config = common::base_config(dir).replacen(
        "[audit]",
        &format!("[authority]\n{authority_extra}\n\n[audit]"),
        1,
    );
    let d = common::start(dir, &config);
    common::warrant_ok(
        dir,
        Some(&d.socket),
        &["authority", "init", "--issuer", "acme", "--status-uri", "https://a.example/s/1"],
    );
    d
}

/// Key `laptop` on the device, enrolled with the authority (by TPM credential when `tpm`),
/// granted under common::POLICY, then a warrant signed by the device and verified offline.
fn enroll_sign_verify(
    home: &Home,
    device: &common::Daemon,
    authority: &common::Daemon,
    tpm: bool,
    software: bool,
) {
    let dir = &home.root;
    let (dev, auth) = (Some(device.socket.as_path()), Some(authority.socket.as_path()));
    common::warrant_ok(dir, dev, &["keys", "create", "laptop"]);
    if tpm {
        common::warrant_ok(dir, dev, &["keys", "tpm-identity", "--out", "identity.json"]);
        let challenge = ["authority", "challenge", "--principal", "alice", "--tpm-identity", "identity.json"];
        common::warrant_ok(dir, auth, &[&challenge[..], &["--out", "credential.json"]].concat());
        let enroll =
            ["enroll", "--key", "laptop", "--principal", "alice", "--tpm-credential", "credential.json"];
        common::warrant_ok(dir, dev, &[&enroll[..], &["--out", "enroll.cbor"]].concat());
    } else {
        let challenge = common::warrant_ok(dir, auth, &["authority", "challenge", "--principal", "alice"]);
        let enroll = ["enroll", "--key", "laptop", "--principal", "alice", "--challenge", challenge.trim()];
        common::warrant_ok(dir, dev, &[&enroll[..], &["--out", "enroll.cbor"]].concat());
    }
    std::fs::write(dir.join("policy.cedar"), common::POLICY).unwrap();
    let mut grant = vec!["authority", "grant", "--enrollment", "enroll.cbor", "--policy", "policy.cedar"];
    grant.extend(["--group", "deployers", "--out", "grant.cbor"]);
    if software {
        grant.push("--allow-software");
    }
    common::warrant_ok(dir, auth, &grant);
    common::warrant_ok(dir, auth, &["authority", "trust", "--out", "trust.json"]);
    common::warrant_ok(dir, auth, &["authority", "publish-status", "--out", "status.cbor"]);
    std::fs::write(dir.join("body.json"), "{}").unwrap();
    let request = ["--method", "POST", "--target", common::TARGET, "--body", "body.json"];
    let mut sign = vec!["sign", "--key", "laptop", "--grant", "grant.cbor", "--audience", common::AUDIENCE];
    sign.extend(["--action", "deploy", "--resource", "prod/api", "--out", "warrant.cbor"]);
    common::warrant_ok(dir, dev, &[&sign[..], &request[..]].concat());
    let mut verify =
        vec!["--json", "verify", "warrant.cbor", "--trust", "trust.json", "--status", "status.cbor"];
    verify.extend(["--audience", common::AUDIENCE, "--action", "deploy", "--resource", "prod/api"]);
    if software {
        verify.push("--allow-software");
    }
    let out = common::warrant_ok(dir, None, &[&verify[..], &request[..]].concat());
    assert!(out.contains("\"ok\":true") || out.contains("\"accepted\":true"), "{out}");
}

/// `warrantd --check-config` on the written file.
fn check_config(home: &Home) {
    let mut command = Command::new(env!("CARGO_BIN_EXE_warrantd"));
    home.env(&mut command);
    let out = command.arg("--check-config").arg("--config").arg(home.config()).output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(text(&out.stdout).contains("valid (user mode"), "{}", text(&out.stdout));
}

#[test]
fn setup_auto_falls_back_to_software_keys_and_they_sign() {
    // No card in the virtual reader while this runs, and no TPM on the TCTI.
    #[cfg(feature = "yubikey")]
    let _card = warrant_test_support::virtual_piv::lock();
    let tmp = common::workdir();
    let home = Home::new(&tmp.path().join("home"));
    let report = home.setup(&["--tcti", &closed_tcti()]);
    assert_eq!(report["backend"], "soft", "{report}");
    let passed_over = report["passed_over"].to_string();
    assert!(passed_over.contains("TPM on swtpm:"), "{report}");
    assert!(report["warnings"].to_string().contains("--allow-software"), "{report}");
    assert_eq!(report["next"], "systemctl --user enable --now warrantd.socket");
    let written = std::fs::read_to_string(home.config()).unwrap();
    assert!(written.contains("backend = \"soft\"") && written.contains("# NOTE: software keys"), "{written}");
    let passphrase = home.root.join("config/warrant/passphrase");
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(std::fs::metadata(&passphrase).unwrap().permissions().mode() & 0o777, 0o600);
    check_config(&home);

    // It refuses to overwrite without --force, and --force keeps the passphrase.
    let out = home.warrant(&["setup", "--mode", "user", "--backend", "soft"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("exists") && text(&out.stderr).contains("--force"), "{out:?}");
    let before = std::fs::read(&passphrase).unwrap();
    home.setup(&["--backend", "soft", "--force"]);
    assert_eq!(std::fs::read(&passphrase).unwrap(), before, "a passphrase is never replaced");

    let device = home.start();
    let authority = authority(&tmp.path().join("authority"), "");
    enroll_sign_verify(&home, &device, &authority, false, true);
}

#[test]
fn setup_refuses_a_named_backend_that_does_not_work() {
    let tmp = common::workdir();
    let home = Home::new(&tmp.path().join("home"));
    let tcti = closed_tcti();
    let out = home.warrant(&["setup", "--mode", "user", "--backend", "tpm", "--tcti", &tcti]);
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    assert!(text(&out.stderr).contains(&format!("TPM on {tcti}")), "{}", text(&out.stderr));
    let out = home.warrant(&["--json", "setup", "--mode", "user", "--backend", "pkcs11"]);
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    let failure: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!((&failure["ok"], &failure["error"]), (&false.into(), &"usage".into()), "{failure}");
    assert!(failure["message"].as_str().unwrap().contains("--pkcs11-module"), "{failure}");
    assert!(!home.config().exists(), "nothing is written when the key store does not work");
}

#[test]
fn environment_paths_with_a_newline_are_refused_and_relative_xdg_ones_ignored() {
    let tmp = common::workdir();
    let home = Home::new(&tmp.path().join("home"));
    let evil = home.root.join("state\nsocket = \"/tmp/evil.sock\"\n#");
    // setup refuses it before writing (warrantd on the built-in defaults uses the same check,
    // environment_path, unit-tested in daemon::config).
    let mut setup = Command::new(common::warrant_bin());
    home.env(&mut setup);
    let out = setup
        .env("XDG_STATE_HOME", &evil)
        .args(["setup", "--mode", "user", "--backend", "soft"])
        .current_dir(&home.root)
        .output()
        .unwrap();
    assert_ne!(out.status.code(), Some(0), "{out:?}");
    let stderr = text(&out.stderr);
    assert!(stderr.contains("state directory") && stderr.contains("control character"), "{stderr}");
    assert!(!home.config().exists());
    // A configuration directory others may write to is refused, and so is a symlink.
    use std::os::unix::fs::PermissionsExt;
    let dir = home.root.join("config/warrant");
    std::fs::create_dir(&dir).unwrap();
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o777)).unwrap();
    let out = home.warrant(&["setup", "--mode", "user", "--backend", "soft"]);
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    assert!(text(&out.stderr).contains("writable by group or others"), "{}", text(&out.stderr));
    std::fs::remove_dir(&dir).unwrap();
    std::os::unix::fs::symlink(home.root.join("state"), &dir).unwrap();
    let out = home.warrant(&["setup", "--mode", "user", "--backend", "soft"]);
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    assert!(text(&out.stderr).contains("is a symlink"), "{}", text(&out.stderr));
    assert!(
        std::fs::read_dir(home.root.join("state")).unwrap().next().is_none(),
        "nothing written through it"
    );
    std::fs::remove_file(&dir).unwrap();
    // A relative $XDG_CONFIG_HOME is ignored: the file goes to $HOME/.config.
    let mut setup = Command::new(common::warrant_bin());
    home.env(&mut setup);
    let out = setup
        .env("XDG_CONFIG_HOME", "config")
        .args(["setup", "--mode", "user", "--backend", "soft"])
        .current_dir(&home.root)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    assert!(home.root.join(".config/warrant/agent.toml").exists());
    assert!(!home.config().exists());
}

#[cfg(feature = "tpm")]
#[test]
fn setup_auto_picks_a_tpm_reachable_through_the_tcti_and_it_signs() {
    let tmp = common::workdir();
    let tpm = warrant_test_support::swtpm::Swtpm::start();
    let home = Home::new(&tmp.path().join("home"));
    let report = home.setup(&["--tcti", &tpm.tcti()]);
    assert_eq!(report["backend"], "tpm", "{report}");
    assert!(report["found"].as_str().unwrap().contains("TPM 2.0 on swtpm:"), "{report}");
    assert!(std::fs::read_to_string(home.config()).unwrap().contains(&format!("tcti = \"{}\"", tpm.tcti())));
    check_config(&home);
    let device = home.start();
    let roots = tmp.path().join("ek-ca.pem");
    std::fs::write(&roots, tpm.ek_ca_pem()).unwrap();
    let authority =
        authority(&tmp.path().join("authority"), &format!("tpm_ek_roots = [\"{}\"]", roots.display()));
    enroll_sign_verify(&home, &device, &authority, true, false);
    // The doctor beside the running daemon: the TPM answers both, and the daemon still signs.
    let (code, checks) = doctor(&home, &[]);
    assert_eq!(code, 0, "{checks:?}");
    assert_status(&checks, "socket", "ok", &["answers"]);
    assert_status(&checks, "tpm.ek-certificate", "warn", &["not checked", "issuer is CN=swtpm-localca"]);
    let out = common::sign_and_verify(&home.root, &device.socket, "grant.cbor");
    assert_eq!(out.status.code(), Some(0), "{}{}", text(&out.stdout), text(&out.stderr));
}

/// A command run as `user` (through setpriv) when given, else as this process.
fn as_user(program: &Path, user: Option<u32>) -> Command {
    match user {
        Some(uid) => {
            let mut command = Command::new("setpriv");
            let id = uid.to_string();
            command.args(["--reuid", &id, "--regid", &id, "--clear-groups"]).arg(program);
            command
        }
        None => Command::new(program),
    }
}

#[test]
fn warrantd_without_a_config_file_runs_on_the_user_defaults_and_serves_keys_list() {
    use std::os::unix::fs::PermissionsExt;
    let tmp = common::workdir();
    // Root runs warrantd in system mode: the user-mode daemon is run as a second user.
    let user = if nix::unistd::geteuid().is_root() {
        let Some((uid, _)) = common::test_user() else { return };
        Some(uid)
    } else {
        None
    };
    std::fs::set_permissions(tmp.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let home = Home::new(&tmp.path().join("home"));
    if let Some(uid) = user {
        for d in ["", "config", "state", "run"] {
            std::os::unix::fs::chown(home.root.join(d), Some(uid), Some(uid)).unwrap();
        }
    }
    std::fs::set_permissions(home.root.join("run"), std::fs::Permissions::from_mode(0o700)).unwrap();
    let warrantd = common::reachable_copy(tmp.path(), env!("CARGO_BIN_EXE_warrantd"));
    let warrant = common::reachable_copy(tmp.path(), common::warrant_bin().to_str().unwrap());
    let start = || {
        let mut command = as_user(&warrantd, user);
        home.env(&mut command);
        common::start_at(&home.root, &home.config(), &home.socket(), command, user)
    };
    let warrant_as_user = |args: &[&str]| {
        let mut command = as_user(&warrant, user);
        home.env(&mut command);
        command.arg("--socket").arg(home.socket()).args(args).current_dir(&home.root).output().unwrap()
    };

    // --check-config and the doctor say so and change nothing: the passphrase file is made by
    // the daemon that uses it.
    let mut command = as_user(&warrantd, user);
    home.env(&mut command);
    let out = command.arg("--check-config").output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(
        text(&out.stdout).contains("no such file; the built-in user-mode defaults are valid (user mode"),
        "{out:?}"
    );
    let mut command = as_user(&warrant, user);
    home.env(&mut command);
    let out = command.args(["--json", "doctor"]).current_dir(&home.root).output().unwrap();
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let checks = report["checks"].as_array().unwrap();
    assert_status(checks, "config", "warn", &["no file at", "built-in user-mode defaults", "warrant setup"]);
    assert_status(checks, "soft.passphrase", "ok", &["not made yet"]);
    assert!(!home.root.join("config/warrant/passphrase").exists());

    let d = start().unwrap_or_else(|e| panic!("warrantd did not start without a config file: {e}"));
    assert!(!home.config().exists());
    let log = d.stderr();
    assert!(log.contains(&format!("no configuration file at {}", home.config().display())), "{log}");
    assert!(log.contains("warrant setup --backend soft"), "{log}");
    let out = warrant_as_user(&["--json", "keys", "create", "laptop"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let out = warrant_as_user(&["--json", "keys", "list"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let list: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(list[0]["name"], "laptop", "{list}");
    assert_eq!(
        (&list[0]["backend"], &list[0]["protection"]),
        (&"software".into(), &"passphrase".into()),
        "{list}"
    );
    // The defaults seal keys with a passphrase made for them, private to the user.
    let passphrase = std::fs::metadata(home.root.join("config/warrant/passphrase")).unwrap();
    assert_eq!(passphrase.permissions().mode() & 0o777, 0o600);
    assert_eq!(
        std::os::unix::fs::MetadataExt::uid(&passphrase),
        user.unwrap_or_else(|| nix::unistd::getuid().as_raw())
    );
    assert!(d.stop().success());

    // Without its passphrase file, the sealed keys are not silently given a new one.
    let kept = std::fs::read(home.root.join("config/warrant/passphrase")).unwrap();
    std::fs::remove_file(home.root.join("config/warrant/passphrase")).unwrap();
    let e = start().err().expect("no start without the passphrase the keys are sealed under");
    assert!(e.contains("restore the file"), "{e}");
    std::fs::write(home.root.join("config/warrant/passphrase"), &kept).unwrap();

    // A symlink to a file that is not there (dotfiles not checked out) is a configuration the
    // user meant to have: an error, not the defaults with software keys.
    std::os::unix::fs::symlink(home.root.join("dotfiles/agent.toml"), home.config()).unwrap();
    let e = start().err().expect("a dangling symlink at the config path is an error");
    assert!(e.contains("No such file"), "{e}");
    let mut command = as_user(&warrantd, user);
    home.env(&mut command);
    let out = command.arg("--check-config").output().unwrap();
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    let mut command = as_user(&warrant, user);
    home.env(&mut command);
    let out = command.args(["--json", "doctor"]).current_dir(&home.root).output().unwrap();
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_status(report["checks"].as_array().unwrap(), "config", "fail", &["No such file"]);
    std::fs::remove_file(home.config()).unwrap();

    // A file that is there but invalid, or unreadable, is still an error.
    std::fs::write(home.config(), "mode = \"user\"\n[limits]\nmax_body_bytes = \"big\"\n").unwrap();
    let e = start().err().expect("an invalid file is an error");
    assert!(e.contains(&format!("{}:3: key `limits.max_body_bytes`", home.config().display())), "{e}");
    if user.is_some() {
        std::fs::write(home.config(), "mode = \"user\"\n").unwrap();
        std::fs::set_permissions(home.config(), std::fs::Permissions::from_mode(0o600)).unwrap();
        let e = start().err().expect("an unreadable file is an error");
        assert!(e.contains("Permission denied"), "{e}");
    }
}

/// The built-in defaults' passphrase is generated in a process that is already undumpable (no
/// core file, no ptrace or /proc/PID/mem by its own uid): warrantd is held, through a fanotify
/// permission event, at the moment it creates the file, and /proc/PID/environ, which the kernel
/// gives to root while a process is undumpable, is looked at then.
#[test]
fn the_defaults_passphrase_is_made_in_an_undumpable_process() {
    use nix::sys::fanotify::{
        EventFFlags, Fanotify, FanotifyResponse, InitFlags, MarkFlags, MaskFlags, Response,
    };
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    // warrantd in user mode is run as a second user: root's /proc/PID is root's either way.
    let Some((uid, _)) = common::test_user() else { return };
    let tmp = common::workdir();
    std::fs::set_permissions(tmp.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let home = Home::new(&tmp.path().join("home"));
    let config_dir = home.root.join("config/warrant");
    std::fs::create_dir(&config_dir).unwrap();
    for d in ["", "config", "config/warrant", "state", "run"] {
        std::os::unix::fs::chown(home.root.join(d), Some(uid), Some(uid)).unwrap();
    }
    for d in ["run", "config/warrant"] {
        std::fs::set_permissions(home.root.join(d), std::fs::Permissions::from_mode(0o700)).unwrap();
    }
    let warrantd = common::reachable_copy(tmp.path(), env!("CARGO_BIN_EXE_warrantd"));
    let passphrase = config_dir.join("passphrase");

    let fan = Fanotify::init(
        InitFlags::FAN_CLASS_CONTENT | InitFlags::FAN_CLOEXEC | InitFlags::FAN_NONBLOCK,
        EventFFlags::O_RDONLY | EventFFlags::O_CLOEXEC | EventFFlags::O_LARGEFILE,
    )
    .expect("fanotify_init (root, a kernel with fanotify permission events)");
    let dir = std::fs::File::open(&config_dir).unwrap();
    fan.mark(
        MarkFlags::FAN_MARK_ADD,
        MaskFlags::FAN_OPEN_PERM | MaskFlags::FAN_EVENT_ON_CHILD,
        &dir,
        None::<&Path>,
    )
    .unwrap();
    // Answers every open in the directory; at the passphrase's, notes who owns /proc/PID/environ.
    let watched = passphrase.clone();
    let watcher = std::thread::spawn(move || {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        while std::time::Instant::now() < deadline {
            let events = match fan.read_events() {
                Ok(events) => events,
                Err(nix::errno::Errno::EAGAIN) => {
                    std::thread::sleep(std::time::Duration::from_millis(2));
                    continue;
                }
                Err(e) => panic!("fanotify read: {e}"),
            };
            let mut seen = None;
            for event in &events {
                let Some(fd) = event.fd() else { continue };
                let opened =
                    std::fs::read_link(format!("/proc/self/fd/{}", std::os::fd::AsRawFd::as_raw_fd(&fd)));
                if opened.ok().as_deref() == Some(watched.as_path()) {
                    let proc = std::fs::metadata(format!("/proc/{}/environ", event.pid())).unwrap();
                    let status = std::fs::read_to_string(format!("/proc/{}/status", event.pid())).unwrap();
                    seen = Some((proc.uid(), status));
                }
                fan.write_response(FanotifyResponse::new(fd, Response::FAN_ALLOW)).unwrap();
            }
            if seen.is_some() {
                return seen;
            }
        }
        None
    });
    let mut command = as_user(&warrantd, Some(uid));
    home.env(&mut command);
    let d = common::start_at(&home.root, &home.config(), &home.socket(), command, Some(uid))
        .unwrap_or_else(|e| panic!("warrantd did not start without a config file: {e}"));
    let (owner, status) = watcher.join().unwrap().expect("warrantd created its passphrase file");
    assert!(passphrase.exists());
    let runs_as = status.lines().find(|l| l.starts_with("Uid:")).unwrap().to_owned();
    assert!(runs_as.split_whitespace().nth(1) == Some(uid.to_string().as_str()), "{runs_as}");
    assert_eq!(
        owner, 0,
        "/proc/PID/environ of warrantd (uid {uid}) was its own while it made the passphrase: dumpable"
    );
    assert!(d.stop().success());
}

/// `warrant --json doctor --config FILE ARGS`: the exit code and the checks by name.
fn doctor(home: &Home, args: &[&str]) -> (i32, Vec<serde_json::Value>) {
    let config = home.config();
    let out = home.warrant(&[&["--json", "doctor", "--config", config.to_str().unwrap()], args].concat());
    let report: serde_json::Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}{}", text(&out.stdout), text(&out.stderr)));
    assert_eq!(report["ok"], out.status.code() == Some(0), "{report}");
    (out.status.code().unwrap(), report["checks"].as_array().unwrap().clone())
}

/// The check named `name`: its status, and its detail and fix together.
fn check<'a>(checks: &'a [serde_json::Value], name: &str) -> (&'a str, String) {
    let c =
        checks.iter().find(|c| c["name"] == name).unwrap_or_else(|| panic!("no check {name}: {checks:?}"));
    (c["status"].as_str().unwrap(), format!("{} -- fix: {}", c["detail"], c["fix"]))
}

fn assert_status(checks: &[serde_json::Value], name: &str, status: &str, says: &[&str]) {
    let (found, words) = check(checks, name);
    assert_eq!(found, status, "{name}: {words}");
    for s in says {
        assert!(words.contains(s), "{name} should say {s:?}: {words}");
    }
}

#[test]
fn doctor_passes_a_healthy_set_up_and_fails_an_expired_or_revoked_grant_and_a_config_error() {
    #[cfg(feature = "yubikey")]
    let _card = warrant_test_support::virtual_piv::lock();
    let tmp = common::workdir();
    let home = Home::new(&tmp.path().join("home"));
    home.setup(&["--backend", "soft"]);
    let device = home.start();
    let authority = authority(&tmp.path().join("authority"), "");
    enroll_sign_verify(&home, &device, &authority, false, true);

    let (code, checks) = doctor(&home, &["--grant", "grant.cbor", "--status-list", "status.cbor"]);
    assert_eq!(code, 0, "{checks:?}");
    for name in [
        "config",
        "socket",
        "socket.mode",
        "socket.owner",
        "soft.passphrase",
        "state",
        "state.space",
        "audit",
        "audit.space",
    ] {
        assert_status(&checks, name, "ok", &[]);
    }
    let only_owner = if nix::unistd::geteuid().is_root() { "root only" } else { "its owner)" };
    assert_status(&checks, "socket.mode", "ok", &["mode 600", only_owner]);
    assert_status(&checks, "grant grant.cbor", "ok", &["key laptop from acme for alice", "valid for"]);
    assert_status(&checks, "grant grant.cbor.status", "ok", &["not revoked"]);
    assert!(checks.iter().all(|c| c["status"] != "fail"), "{checks:?}");
    // The text form: one line per check, the same verdicts.
    let out = home.warrant(&["doctor", "--config", home.config().to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0));
    assert!(
        text(&out.stdout).lines().any(|l| l.starts_with("ok   socket: warrantd")),
        "{}",
        text(&out.stdout)
    );

    // Revoked in the newest list given: fail, and the fix says what to do.
    let auth = Some(authority.socket.as_path());
    common::warrant_ok(&home.root, auth, &["authority", "revoke", "--grant", "grant.cbor"]);
    common::warrant_ok(&home.root, auth, &["authority", "publish-status", "--out", "status-2.cbor"]);
    let (code, checks) = doctor(
        &home,
        &["--grant", "grant.cbor", "--status-list", "status.cbor", "--status-list", "status-2.cbor"],
    );
    assert_eq!(code, 1);
    assert_status(&checks, "grant grant.cbor.status", "fail", &["revoked", "sequence 2", "new grant"]);

    // A grant that has expired.
    let dev = Some(device.socket.as_path());
    let challenge = common::warrant_ok(&home.root, auth, &["authority", "challenge", "--principal", "alice"]);
    let enroll = ["enroll", "--key", "laptop", "--principal", "alice", "--challenge", challenge.trim()];
    common::warrant_ok(&home.root, dev, &[&enroll[..], &["--out", "enroll-2.cbor"]].concat());
    let mut grant = vec!["authority", "grant", "--enrollment", "enroll-2.cbor", "--policy", "policy.cedar"];
    grant.extend(["--allow-software", "--valid-for", "1", "--out", "short.cbor"]);
    common::warrant_ok(&home.root, auth, &grant);
    std::thread::sleep(std::time::Duration::from_millis(2100));
    let (code, checks) = doctor(&home, &["--grant", "short.cbor"]);
    assert_eq!(code, 1);
    assert_status(&checks, "grant short.cbor", "fail", &["expired", "new grant"]);
    assert_status(&checks, "grant short.cbor.status", "warn", &["--status-list"]);

    // The daemon stopped: the socket fails, with the command that starts it.
    drop(device);
    let (code, checks) = doctor(&home, &[]);
    assert_eq!(code, 1);
    assert_status(
        &checks,
        "socket",
        "fail",
        &["not running", "systemctl --user enable --now warrantd.socket"],
    );

    // A configuration error: the file, the line and the key, and the fix.
    let written = std::fs::read_to_string(home.config()).unwrap();
    std::fs::write(home.config(), written.replace("[audit]", "[audit]\nfsync = \"sometimes\"")).unwrap();
    let (code, checks) = doctor(&home, &[]);
    assert_eq!(code, 1);
    assert_status(
        &checks,
        "config",
        "fail",
        &[&format!("{}:", home.config().display()), "audit.fsync", "warrant setup --force"],
    );
    assert_eq!(checks.len(), 1, "nothing else is checked without a configuration: {checks:?}");
}

/// A file that sets nothing (empty, or comments only) would run a daemon that refuses every
/// caller with unsealed software keys: warrantd refuses it, and doctor fails it the same way.
#[test]
fn an_empty_configuration_file_is_refused_by_warrantd_and_by_doctor() {
    let tmp = common::workdir();
    let home = Home::new(&tmp.path().join("home"));
    std::fs::create_dir_all(home.config().parent().unwrap()).unwrap();
    for empty in ["", "# to be written\n\n"] {
        std::fs::write(home.config(), empty).unwrap();
        let mut command = Command::new(env!("CARGO_BIN_EXE_warrantd"));
        home.env(&mut command);
        let out = command.arg("--check-config").arg("--config").arg(home.config()).output().unwrap();
        assert_eq!(out.status.code(), Some(2), "{out:?}");
        let said = format!("{}: sets nothing", home.config().display());
        assert!(text(&out.stderr).contains(&said), "{}", text(&out.stderr));
        let mut command = Command::new(env!("CARGO_BIN_EXE_warrantd"));
        home.env(&mut command);
        command.arg("--config").arg(home.config());
        let e = common::start_at(&home.root, &home.config(), &home.socket(), command, None)
            .err()
            .expect("warrantd does not start on an empty file");
        assert!(e.contains(&said), "{e}");
        let (code, checks) = doctor(&home, &[]);
        assert_eq!(code, 1);
        assert_status(&checks, "config", "fail", &[&said, "warrant setup --force"]);
    }
}

/// System mode: what the daemon must reach is checked as the unit's user (here a throwaway
/// user named through WARRANTD_TEST_SYSTEM_USER), not as the root running doctor, and each
/// such line says who it ran as.
#[test]
fn system_mode_doctor_checks_what_the_daemon_reaches_as_the_daemons_user() {
    use std::os::unix::fs::PermissionsExt;
    let Some((uid, user)) = common::test_user() else { return };
    let tmp = common::workdir();
    std::fs::set_permissions(tmp.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let (state, audit) = (tmp.path().join("state"), tmp.path().join("audit"));
    for dir in [&state, &audit] {
        std::fs::create_dir(dir).unwrap();
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    std::os::unix::fs::chown(&audit, Some(uid), None).unwrap();
    let config = tmp.path().join("agent.toml");
    let written = format!(
        "mode = \"system\"\nsocket = \"{}\"\nstate_dir = \"{}\"\n\n[audit]\nfile = \"{}\"\n",
        tmp.path().join("run/agent.sock").display(),
        state.display(),
        audit.join("audit.jsonl").display()
    );
    std::fs::write(&config, &written).unwrap();
    std::fs::set_permissions(&config, std::fs::Permissions::from_mode(0o644)).unwrap();
    // Root's doctor in root's group (setpriv --groups: a test process may have no
    // supplementary groups), which the child must leave.
    let doctor_as = |daemon_user: &str| {
        let out = Command::new("setpriv")
            .args(["--groups", "0", "--"])
            .arg(common::warrant_bin())
            .env(warrant_agent::doctor::TEST_USER_VARIABLE, daemon_user)
            .env_remove("WARRANT_SOCKET")
            .args(["--json", "doctor", "--config", config.to_str().unwrap()])
            .output()
            .unwrap();
        let report: serde_json::Value = serde_json::from_slice(&out.stdout)
            .unwrap_or_else(|e| panic!("{e}: {}{}", text(&out.stdout), text(&out.stderr)));
        report["checks"].as_array().unwrap().clone()
    };
    let ran_as = format!("(as user {user} (uid {uid}), groups {user}");

    // The state directory only root may write: root could, the daemon's user cannot.
    let checks = doctor_as(&user);
    assert_status(&checks, "state", "fail", &[&state.display().to_string(), "not writable", &ran_as]);
    assert_status(&checks, "audit", "ok", &["is writable", &ran_as]);
    assert_status(&checks, "config", "ok", &["is valid"]);
    assert!(!check(&checks, "config").1.contains("(as user"), "the configuration is read as the caller too");
    // Root's group may write it: the child has left root's groups too (setgroups, setresgid).
    std::fs::set_permissions(&state, std::fs::Permissions::from_mode(0o775)).unwrap();
    let checks = doctor_as(&user);
    assert_status(&checks, "state", "fail", &[&state.display().to_string(), "not writable", &ran_as]);
    std::fs::set_permissions(&state, std::fs::Permissions::from_mode(0o755)).unwrap();
    // Given to the user, it passes.
    std::os::unix::fs::chown(&state, Some(uid), None).unwrap();
    let checks = doctor_as(&user);
    assert_status(&checks, "state", "ok", &["is writable", &ran_as]);

    // A configuration the daemon's user cannot read: the daemon could not start.
    std::fs::set_permissions(&config, std::fs::Permissions::from_mode(0o600)).unwrap();
    let checks = doctor_as(&user);
    assert_status(&checks, "config", "ok", &[]);
    assert_status(&checks, "config.daemon-user", "fail", &["Permission denied", "chmod 0640", &ran_as]);
    assert!(checks.iter().all(|c| c["name"] != "state"), "nothing else checked without it: {checks:?}");
    std::fs::set_permissions(&config, std::fs::Permissions::from_mode(0o644)).unwrap();

    // The child itself: a request it cannot read is refused, not taken as "no EK roots"; run
    // by someone who cannot become the daemon's user, it says so.
    let child = |command: &mut Command, input: &[u8]| {
        use std::io::Write;
        let mut child = command
            .env(warrant_agent::doctor::TEST_USER_VARIABLE, &user)
            .args(["doctor", "--as-daemon-user", "--config", config.to_str().unwrap()])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        child.stdin.take().unwrap().write_all(input).unwrap();
        let out = child.wait_with_output().unwrap();
        serde_json::from_slice::<Vec<serde_json::Value>>(&out.stdout).unwrap()
    };
    let request = |config: &str, roots: &[&str]| {
        serde_json::to_vec(&serde_json::json!({ "config": config, "tpm_ek_roots": roots })).unwrap()
    };
    let warrantd_child = || Command::new(env!("CARGO_BIN_EXE_warrantd"));
    let checks = child(&mut warrantd_child(), &request(&written, &["zz"]));
    assert_status(&checks, "daemon-user", "fail", &["request from doctor could not be read"]);
    let checks = child(&mut warrantd_child(), br#"{"tpm_ek_roots": []}"#);
    assert_status(&checks, "daemon-user", "fail", &["request from doctor could not be read", "config"]);
    let checks = child(&mut warrantd_child(), &request(&written, &[]));
    assert_status(&checks, "state", "ok", &["is writable"]);
    // The child checks the configuration doctor read and vetted, not what the path holds by
    // the time it runs: given other text than the file's, it checks that text's directory.
    let other_state = tmp.path().join("other-state");
    std::fs::create_dir(&other_state).unwrap();
    std::fs::set_permissions(&other_state, std::fs::Permissions::from_mode(0o755)).unwrap();
    let other = written.replace(&state.display().to_string(), &other_state.display().to_string());
    let checks = child(&mut warrantd_child(), &request(&other, &[]));
    assert_status(&checks, "state", "fail", &[&other_state.display().to_string(), "not writable"]);
    let warrantd = common::reachable_copy(tmp.path(), env!("CARGO_BIN_EXE_warrantd"));
    let checks = child(&mut as_user(&warrantd, Some(uid)), b"{}");
    assert_status(&checks, "daemon-user", "fail", &["could not become user", "setgroups"]);

    // The unit's user does not exist: that is the failure, with the command that makes it.
    let checks = doctor_as("warrant-no-such-user");
    assert_status(
        &checks,
        "daemon-user",
        "fail",
        &["user warrant-no-such-user does not exist", "systemd-sysusers"],
    );
    assert!(checks.iter().all(|c| c["name"] != "state"), "not checked as root instead: {checks:?}");
}

/// Root's doctor loads the PKCS#11 module a configuration names and acts on its paths (as root
/// in user mode, as the daemon's user in system mode): a file another user may write would
/// choose them for root. It is refused before anything is done with it, with the two ways out.
#[test]
fn root_doctor_does_not_act_on_a_configuration_another_user_may_write() {
    use std::os::unix::fs::PermissionsExt;
    let Some((uid, user)) = common::test_user() else { return };
    let tmp = common::workdir();
    let home = Home::new(&tmp.path().join("home"));
    home.setup(&["--backend", "soft"]);
    let chmod =
        |mode| std::fs::set_permissions(home.config(), std::fs::Permissions::from_mode(mode)).unwrap();
    let refused = |says: &str| {
        let (code, checks) = doctor(&home, &[]);
        assert_eq!(code, 1);
        assert_status(
            &checks,
            "config",
            "fail",
            &[says, "does not act on it", "sudo -u USER", "chown root:warrant"],
        );
        assert_eq!(checks.len(), 1, "nothing else is done with it: {checks:?}");
    };
    std::os::unix::fs::chown(home.config(), Some(uid), None).unwrap();
    refused(&format!("owned by {user} (uid {uid}), not root"));
    std::os::unix::fs::chown(home.config(), Some(0), Some(0)).unwrap();
    chmod(0o666);
    refused("mode 666: others than root may write it");
    let gid = nix::unistd::Group::from_name(&user).unwrap().unwrap().gid.as_raw();
    std::os::unix::fs::chown(home.config(), None, Some(gid)).unwrap();
    chmod(0o660);
    refused("mode 660: others than root may write it");
    // Root's, written by root only (group root may write: its members are root's to choose).
    std::os::unix::fs::chown(home.config(), None, Some(0)).unwrap();
    for mode in [0o640, 0o660] {
        chmod(mode);
        let (_, checks) = doctor(&home, &[]);
        assert_status(&checks, "config", "ok", &["is valid"]);
    }
}

#[test]
fn doctor_names_the_sockets_owner_and_reads_who_may_connect_from_its_write_bits_and_acls() {
    use std::os::unix::fs::PermissionsExt;
    let tmp = common::workdir();
    let home = Home::new(&tmp.path().join("home"));
    home.setup(&["--backend", "soft"]);
    // A listener that closes every connection: not warrantd.
    let path = tmp.path().join("other.sock");
    let listener = std::os::unix::net::UnixListener::bind(&path).unwrap();
    std::thread::spawn(move || listener.incoming().for_each(drop));
    let socket = path.to_str().unwrap();
    let me = nix::unistd::geteuid().as_raw();
    let chmod = |mode| std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).unwrap();
    chmod(0o640);
    let (_, checks) = doctor(&home, &["--socket", socket]);
    let only_owner = if me == 0 { "root only".to_owned() } else { format!("(uid {me}, its owner)") };
    assert_status(&checks, "socket.mode", "ok", &["mode 640", &only_owner]);
    assert_status(&checks, "socket.owner", "ok", &[&format!("(uid {me})")]);
    // Others' write bit: others connect when the directories let them through.
    chmod(0o662);
    std::fs::set_permissions(tmp.path(), std::fs::Permissions::from_mode(0o700)).unwrap();
    let (_, checks) = doctor(&home, &["--socket", socket]);
    let closed = if me == 0 {
        "root only may connect".to_owned()
    } else {
        format!("(uid {me}, its owner) may connect")
    };
    assert_status(&checks, "socket.mode", "fail", &["writable by others", &closed]);
    std::fs::set_permissions(tmp.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let (_, checks) = doctor(&home, &["--socket", socket]);
    assert_status(
        &checks,
        "socket.mode",
        "fail",
        &["writable by others", "anyone on this machine may connect"],
    );
    chmod(0o600);
    if let Some((uid, user)) = common::test_user() {
        // The group's write bit: its members, named (the test user's primary group lists it
        // only in /etc/passwd).
        let gid = nix::unistd::Group::from_name(&user).unwrap().unwrap().gid.as_raw();
        std::os::unix::fs::chown(&path, None, Some(gid)).unwrap();
        chmod(0o660);
        let (_, checks) = doctor(&home, &["--socket", socket]);
        let member = format!("root and {user} (uid {uid}, group {user}) may connect");
        assert_status(&checks, "socket.mode", "ok", &["mode 660", &member]);
        // Its directory closed to the group: root only, whatever the socket's bits.
        std::fs::set_permissions(tmp.path(), std::fs::Permissions::from_mode(0o700)).unwrap();
        let (_, checks) = doctor(&home, &["--socket", socket]);
        assert_status(&checks, "socket.mode", "ok", &["mode 660", "root only may connect"]);
        std::fs::set_permissions(tmp.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
        chmod(0o600);

        // ACLs: the bits say root only (the socket 0600, its directory 0700); access ACLs
        // naming the user let it through, and doctor names it, as the kernel decides (the
        // user's own connect, by `warrant`, agrees each way).
        let bin = common::workdir();
        std::fs::set_permissions(bin.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
        let warrant = common::reachable_copy(bin.path(), common::warrant_bin().to_str().unwrap());
        let connects = || {
            let out =
                as_user(&warrant, Some(uid)).args(["--socket", socket, "keys", "list"]).output().unwrap();
            let said = text(&out.stderr);
            assert!(!out.status.success() && said.contains("warrantd at"), "not warrantd: {said}");
            !said.contains("Permission denied")
        };
        std::os::unix::fs::chown(&path, None, Some(0)).unwrap();
        std::fs::set_permissions(tmp.path(), std::fs::Permissions::from_mode(0o700)).unwrap();
        let named = |perm: u16| {
            let mut acl = 2u32.to_le_bytes().to_vec();
            for (tag, perm, id) in [
                (0x01u16, 0o7, u32::MAX),
                (0x02, perm, uid),
                (0x04, 0, u32::MAX),
                (0x10, 0o7, u32::MAX),
                (0x20, 0, u32::MAX),
            ] {
                acl.extend(tag.to_le_bytes());
                acl.extend(perm.to_le_bytes());
                acl.extend(id.to_le_bytes());
            }
            acl
        };
        let set_acl = |path: &Path, acl: &[u8]| {
            rustix::fs::setxattr(path, "system.posix_acl_access", acl, rustix::fs::XattrFlags::empty())
                .unwrap()
        };
        set_acl(tmp.path(), &named(0o1));
        set_acl(&path, &named(0o6));
        let (_, checks) = doctor(&home, &["--socket", socket]);
        assert_status(
            &checks,
            "socket.mode",
            "ok",
            &[&format!("root and {user} (uid {uid}, an ACL) may connect")],
        );
        assert!(connects(), "the kernel lets the user named in the ACLs connect");
        set_acl(tmp.path(), &named(0o6));
        let (_, checks) = doctor(&home, &["--socket", socket]);
        assert_status(&checks, "socket.mode", "ok", &["root only may connect"]);
        assert!(!connects(), "the directory's ACL gives no search: the kernel refuses");
        for p in [tmp.path(), path.as_path()] {
            rustix::fs::removexattr(p, "system.posix_acl_access").unwrap();
        }
        std::fs::set_permissions(tmp.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
        chmod(0o600);
    }
    if me == 0 {
        // Through a symbolic link: the directories where it leads are searched too (here one
        // only root may search, above a socket others may write).
        let inner = tmp.path().join("closed/inner");
        std::fs::create_dir_all(&inner).unwrap();
        std::fs::set_permissions(tmp.path().join("closed"), std::fs::Permissions::from_mode(0o700)).unwrap();
        std::fs::set_permissions(&inner, std::fs::Permissions::from_mode(0o755)).unwrap();
        // A socket nothing listens on any more: its bits are read, and nothing waits on it.
        drop(std::os::unix::net::UnixListener::bind(inner.join("s.sock")).unwrap());
        std::fs::set_permissions(inner.join("s.sock"), std::fs::Permissions::from_mode(0o666)).unwrap();
        std::os::unix::fs::symlink(&inner, tmp.path().join("link")).unwrap();
        let linked = tmp.path().join("link/s.sock");
        let (_, checks) = doctor(&home, &["--socket", linked.to_str().unwrap()]);
        assert_status(&checks, "socket.mode", "fail", &["writable by others", "root only may connect"]);

        // Owned by another user: named, failed, and not talked to.
        std::os::unix::fs::chown(&path, Some(65534), None).unwrap();
        let (code, checks) = doctor(&home, &["--socket", socket]);
        assert_eq!(code, 1);
        assert_status(&checks, "socket.owner", "fail", &["uid 65534", &format!("not root (uid {me})")]);
        assert!(checks.iter().all(|c| c["name"] != "socket"), "not connected to: {checks:?}");
    }
}

#[test]
fn doctor_fails_an_audit_directory_it_cannot_write() {
    let tmp = common::workdir();
    let home = Home::new(&tmp.path().join("home"));
    home.setup(&["--backend", "soft"]);
    let audit_dir = tmp.path().join("read-only");
    std::fs::create_dir_all(&audit_dir).unwrap();
    // Root writes anywhere the file system allows: a read-only mount stops it; others a mode.
    let _mount = if nix::unistd::geteuid().is_root() {
        let status = Command::new("mount")
            .args(["-t", "tmpfs", "-o", "ro,size=64k,mode=0755", "tmpfs"])
            .arg(&audit_dir)
            .status()
            .unwrap();
        assert!(status.success(), "mount a read-only tmpfs");
        Some(common::Tmpfs(audit_dir.clone()))
    } else {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&audit_dir, std::fs::Permissions::from_mode(0o555)).unwrap();
        None
    };
    let written = std::fs::read_to_string(home.config()).unwrap();
    let audit_line = written.lines().find(|l| l.starts_with("file = ")).unwrap().to_owned();
    let audit_file = format!("file = \"{}\"", audit_dir.join("audit.jsonl").display());
    std::fs::write(home.config(), written.replace(&audit_line, &audit_file)).unwrap();
    let (code, checks) = doctor(&home, &[]);
    assert_eq!(code, 1);
    assert_status(
        &checks,
        "audit",
        "fail",
        &[&audit_dir.display().to_string(), "not writable", "write access"],
    );
    assert_status(&checks, "state", "ok", &[]);
    assert_status(&checks, "state.space", "ok", &["MiB free"]);

    // A state directory on a nearly full file system (a 1 MiB tmpfs): its space fails.
    let small = tmp.path().join("small");
    let Some(_small) = common::Tmpfs::mount(&small, 1024) else { return };
    let written = std::fs::read_to_string(home.config()).unwrap();
    let state = format!("mode = \"user\"\nstate_dir = \"{}\"", small.join("state").display());
    std::fs::write(home.config(), written.replacen("mode = \"user\"", &state, 1)).unwrap();
    let (code, checks) = doctor(&home, &[]);
    assert_eq!(code, 1);
    assert_status(&checks, "state", "ok", &["will be made in"]);
    assert_status(&checks, "state.space", "fail", &["1 MiB free", "free space"]);
}

#[cfg(feature = "tpm")]
#[test]
fn doctor_checks_the_tpm_and_fails_an_unreachable_one_and_a_missing_ek_certificate() {
    let tmp = common::workdir();
    let mut tpm = warrant_test_support::swtpm::Swtpm::start();
    let home = Home::new(&tmp.path().join("home"));
    home.setup(&["--backend", "tpm", "--tcti", &tpm.tcti()]);
    let (_, checks) = doctor(&home, &[]);
    assert_status(&checks, "tpm", "ok", &["manufacturer IBM", "firmware"]);
    assert_status(&checks, "tpm.lockout", "ok", &["not locked out"]);
    assert_status(&checks, "tpm.pcr-banks", "ok", &["sha256"]);

    // The EK certificate's chain, checked as an authority checks it: no roots given, it is
    // not checked and its issuer is named; swtpm's CA: it chains; another CA: it does not.
    assert_status(
        &checks,
        "tpm.ek-certificate",
        "warn",
        &["present, chain not checked: no roots given", "issuer is CN=swtpm-localca", "--tpm-ek-roots"],
    );
    let swtpm_ca = tmp.path().join("swtpm-ca.pem");
    std::fs::write(&swtpm_ca, tpm.ek_ca_pem()).unwrap();
    let (_, checks) = doctor(&home, &["--tpm-ek-roots", swtpm_ca.to_str().unwrap()]);
    assert_status(&checks, "tpm.ek-certificate", "ok", &["present, chains to CN=swtpm-localca"]);
    let other_ca = Path::new(env!("CARGO_MANIFEST_DIR")).join("../attestation/tests/data/ek-test/root.pem");
    let (code, checks) = doctor(&home, &["--tpm-ek-roots", other_ca.to_str().unwrap()]);
    assert_eq!(code, 1);
    assert_status(
        &checks,
        "tpm.ek-certificate",
        "fail",
        &[
            "does not chain to the roots given (issuer CN=swtpm-localca)",
            "an authority with these roots refuses",
        ],
    );
    // An authority's configuration names its roots: they are the default.
    let written = std::fs::read_to_string(home.config()).unwrap();
    let authority = format!("[authority]\ntpm_ek_roots = [\"{}\"]\n\n[audit]", other_ca.display());
    std::fs::write(home.config(), written.replacen("[audit]", &authority, 1)).unwrap();
    let (_, checks) = doctor(&home, &[]);
    assert_status(&checks, "tpm.ek-certificate", "fail", &["does not chain to the roots given"]);
    let (_, checks) = doctor(&home, &["--tpm-ek-roots", swtpm_ca.to_str().unwrap()]);
    assert_status(&checks, "tpm.ek-certificate", "ok", &["chains to"]);
    // A root file that cannot be read fails, naming it.
    let missing = tmp.path().join("no-such-ca.pem");
    let (_, checks) = doctor(&home, &["--tpm-ek-roots", missing.to_str().unwrap()]);
    assert_status(&checks, "tpm.ek-roots", "fail", &["--tpm-ek-roots", "no-such-ca.pem"]);
    std::fs::write(home.config(), written).unwrap();

    // The EK certificate removed from NV: enrollment would be impossible.
    for index in ["0x01c00002", "0x01c0000a"] {
        let _ = Command::new("tpm2_nvundefine")
            .args(["-C", "p", index])
            .env("TPM2TOOLS_TCTI", tpm.tcti())
            .env("TSS2_LOG", "all+none")
            .output()
            .unwrap();
    }
    let (code, checks) = doctor(&home, &[]);
    assert_eq!(code, 1);
    assert_status(&checks, "tpm.ek-certificate", "fail", &["none in NV", "cannot be enrolled", "provision"]);
    // And `setup --backend auto` passes over such a TPM, saying why.
    let report = home.setup(&["--force", "--downgrade", "--tcti", &tpm.tcti()]);
    assert_ne!(report["backend"], "tpm", "{report}");
    assert!(report["passed_over"].to_string().contains("no EK certificate"), "{report}");
    home.setup(&["--force", "--backend", "tpm", "--tcti", &tpm.tcti()]);

    // The TPM gone.
    tpm.stop();
    let (code, checks) = doctor(&home, &[]);
    assert_eq!(code, 1);
    assert_status(&checks, "tpm", "fail", &["unreachable", "[keystore] tcti"]);

    // A device node that is not there: no TPM, or none enabled in the firmware.
    let written = std::fs::read_to_string(home.config()).unwrap();
    let missing = tmp.path().join("tpmrm9");
    let tcti = written.lines().find(|l| l.starts_with("tcti = ")).unwrap().to_owned();
    std::fs::write(
        home.config(),
        written.replace(&tcti, &format!("tcti = \"device:{}\"", missing.display())),
    )
    .unwrap();
    let (code, checks) = doctor(&home, &[]);
    assert_eq!(code, 1);
    assert_status(&checks, "tpm.device", "fail", &["does not exist", "firmware set-up"]);
    // One this user may not open: the fix names group tss and the udev rules.
    let Some((uid, _)) = common::test_user() else { return };
    std::fs::write(&missing, b"").unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&missing, std::fs::Permissions::from_mode(0o600)).unwrap();
    std::fs::set_permissions(tmp.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    for open in [home.root.clone(), home.root.join("config"), home.root.join("config/warrant")] {
        std::fs::set_permissions(open, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    std::fs::set_permissions(home.config(), std::fs::Permissions::from_mode(0o644)).unwrap();
    let warrant = common::reachable_copy(tmp.path(), common::warrant_bin().to_str().unwrap());
    common::reachable_copy(tmp.path(), env!("CARGO_BIN_EXE_warrantd"));
    let mut command = as_user(&warrant, Some(uid));
    home.env(&mut command);
    let out =
        command.args(["--json", "doctor", "--config", home.config().to_str().unwrap()]).output().unwrap();
    let report: serde_json::Value =
        serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {}", text(&out.stderr)));
    assert_status(
        report["checks"].as_array().unwrap(),
        "tpm.device",
        "fail",
        &["EACCES", "group tss", "70-warrant.rules"],
    );
}

#[cfg(feature = "yubikey")]
mod yubikey {
    use super::*;
    use std::os::unix::fs::OpenOptionsExt;
    use warrant_test_support::virtual_piv::{lock, VirtualCard, SERIAL};

    fn secret_file(dir: &Path, name: &str, value: &str) -> String {
        let path = dir.join(name);
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&path)
            .unwrap();
        std::io::Write::write_all(&mut f, value.as_bytes()).unwrap();
        path.to_string_lossy().into_owned()
    }

    #[test]
    fn setup_auto_picks_the_virtual_yubikey_when_only_it_is_present_and_it_signs() {
        let _card = lock();
        let tmp = common::workdir();
        let card = VirtualCard::insert(&tmp.path().join("card"), &[]);
        let home = Home::new(&tmp.path().join("home"));
        let pin = secret_file(&home.root, "pin", "24681357");
        let tcti = closed_tcti();
        // A factory-fresh card is chosen, with the warning that it needs `warrant yubikey setup`.
        let report = home.setup(&["--tcti", &tcti, "--pin-file", &pin]);
        assert_eq!(report["backend"], "yubikey", "{report}");
        assert!(
            report["found"].as_str().unwrap().contains(&format!("YubiKey {SERIAL} (firmware 5.7.1)")),
            "{report}"
        );
        assert!(report["warnings"].to_string().contains("warrant yubikey setup"), "{report}");
        assert!(!report["warnings"].to_string().contains("YSA-2024-03"), "5.7.1 is not affected: {report}");
        let puk = secret_file(&home.root, "puk", "97531864");
        home.warrant_ok(&["yubikey", "setup", "--new-pin-file", &pin, "--new-puk-file", &puk]);
        let report = home.setup(&["--force", "--tcti", &tcti, "--pin-file", &pin]);
        assert_eq!(report["backend"], "yubikey", "{report}");
        assert_eq!(report["warnings"], serde_json::json!([]), "{report}");
        let written = std::fs::read_to_string(home.config()).unwrap();
        assert!(
            written.contains(&format!("serial_number = {SERIAL}")) && written.contains("pin_file ="),
            "{written}"
        );
        check_config(&home);
        let device = home.start();
        let roots = format!("yubikey_roots = [\"{}\"]", card.ca_pem().display());
        let authority = authority(&tmp.path().join("authority"), &roots);
        enroll_sign_verify(&home, &device, &authority, false, false);
        drop(device);
        let (code, checks) = doctor(&home, &[]);
        assert_status(&checks, "yubikey.management-key", "ok", &["not the factory default"]);
        assert_ne!(check(&checks, "yubikey.pin").0, "fail", "{checks:?}");
        assert_eq!(code, 1, "only the stopped daemon fails: {checks:?}");
    }

    /// How often the card has logged its PIN out (a reset, a power-off, a SELECT of PIV).
    fn pin_logouts(card_dir: &Path) -> usize {
        let log = std::fs::read_to_string(card_dir.join("card.log")).unwrap_or_default();
        log.lines().filter(|l| l.ends_with("PIN logged out")).count()
    }

    /// A YubiKey forgets a verified PIN on a reset and on a SELECT of its PIV application: a
    /// doctor that did either beside a running warrantd would log its session out (its next
    /// signature asks for the PIN again, or fails with pin_policy = "once" and an askpass
    /// nobody answers). The probe does neither: the card logs no logout while doctor runs,
    /// and warrantd's next signature needs no reopening of the card.
    #[test]
    fn doctor_beside_a_running_warrantd_leaves_its_pin_verified_session_alone() {
        let _card = lock();
        let tmp = common::workdir();
        let card_dir = tmp.path().join("card");
        let _card = VirtualCard::insert(&card_dir, &[]);
        let home = Home::new(&tmp.path().join("home"));
        let pin = secret_file(&home.root, "pin", "24681357");
        let puk = secret_file(&home.root, "puk", "97531864");
        home.warrant_ok(&["yubikey", "setup", "--new-pin-file", &pin, "--new-puk-file", &puk]);
        home.setup(&["--backend", "yubikey", "--pin-file", &pin]);
        let device = home.start();
        let dev = Some(device.socket.as_path());
        common::warrant_ok(&home.root, dev, &["keys", "create", "laptop"]);
        let enroll = |n: u8| {
            let challenge = hex::encode([n; 32]);
            let out = format!("enroll-{n}.cbor");
            let args = ["enroll", "--key", "laptop", "--principal", "alice", "--challenge", &challenge];
            common::warrant_ok(&home.root, dev, &[&args[..], &["--out", &out]].concat());
        };
        enroll(1);
        let logouts = pin_logouts(&card_dir);

        let (code, checks) = doctor(&home, &[]);
        assert_eq!(code, 0, "{checks:?}");
        assert_status(&checks, "yubikey.card", "ok", &[&format!("serial {SERIAL}")]);
        assert_status(&checks, "yubikey.management-key", "ok", &["not the factory default"]);
        assert_status(&checks, "yubikey.pin", "ok", &["3 PIN tries left"]);
        assert_eq!(pin_logouts(&card_dir), logouts, "doctor reset or re-selected the card");

        // warrantd signs again in the session it had: no reset to recover from.
        enroll(2);
        assert_eq!(pin_logouts(&card_dir), logouts);
        let log = device.stderr();
        assert!(!log.contains("reopening the card"), "warrantd had to reopen the card: {log}");
        assert_status(&doctor(&home, &[]).1, "yubikey.pin", "ok", &["3 PIN tries left"]);
    }

    #[test]
    fn doctor_fails_a_default_management_key_and_a_stopped_pcscd() {
        let _card = lock();
        let tmp = common::workdir();
        let _card = VirtualCard::insert(&tmp.path().join("card"), &[]);
        let home = Home::new(&tmp.path().join("home"));
        let pin = secret_file(&home.root, "pin", "123456");
        home.setup(&["--backend", "yubikey", "--pin-file", &pin]);
        let (code, checks) = doctor(&home, &[]);
        assert_eq!(code, 1);
        assert_status(&checks, "yubikey.pcscd", "ok", &[]);
        assert_status(&checks, "yubikey.card", "ok", &[&format!("serial {SERIAL}, firmware 5.7.1")]);
        assert_status(&checks, "yubikey.ysa-2024-03", "ok", &[]);
        assert_status(
            &checks,
            "yubikey.management-key",
            "fail",
            &["factory default", "warrant yubikey setup"],
        );
        assert_status(&checks, "yubikey.pin", "ok", &["3 PIN tries left"]);

        // pcscd stopped: a private one (the shared one serves every other test), reached through
        // PCSCLITE_CSOCK_NAME, answers with no reader; stopped, it fails, and the fix starts it.
        let Some(mut pcscd) = warrant_test_support::pcscd::PrivatePcscd::start(&tmp.path().join("pcscd"))
        else {
            return;
        };
        let socket = pcscd.socket();
        let run = |args: &[&str]| {
            let mut command = Command::new(common::warrant_bin());
            home.env(&mut command);
            let out = command.env("PCSCLITE_CSOCK_NAME", &socket).args(args).output().unwrap();
            let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
            (out.status.code(), report)
        };
        let config = home.config();
        let doctor = ["--json", "doctor", "--config", config.to_str().unwrap()];
        let (_, report) = run(&doctor);
        let checks = report["checks"].as_array().unwrap();
        assert_status(checks, "yubikey.pcscd", "ok", &["pcscd answers"]);
        assert_status(checks, "yubikey.card", "fail", &["no YubiKey is present"]);
        pcscd.stop();
        assert!(!socket.exists(), "a stopped pcscd removes its socket");
        let (code, report) = run(&doctor);
        assert_eq!(code, Some(1));
        let checks = report["checks"].as_array().unwrap();
        assert_status(
            checks,
            "yubikey.pcscd",
            "fail",
            &["pcscd is not reachable", "systemctl enable --now pcscd.socket"],
        );
        // And setup passes the card over, saying why.
        let tcti = closed_tcti();
        let setup = ["--json", "setup", "--mode", "user", "--force", "--downgrade", "--tcti", &tcti];
        let (_, report) = run(&setup);
        assert_eq!(report["backend"], "soft", "{report}");
        assert!(report["passed_over"].to_string().contains("pcscd is not reachable"), "{report}");
    }
}

/// `warrant setup` and `warrant doctor` define the options of the warrantd subcommands they
/// run: the two help texts name the same ones.
#[test]
fn warrant_setup_and_doctor_take_the_options_warrantd_does() {
    let flags = |out: Output| -> std::collections::BTreeSet<String> {
        text(&out.stdout)
            .split_whitespace()
            .filter(|w| w.starts_with("--"))
            .map(|w| w.trim_end_matches([',', '.', ')']).split('=').next().unwrap().to_owned())
            .filter(|w| !["--help", "--version", "--json", "--socket"].contains(&w.as_str()))
            .filter(|w| w.len() > 2 && w[2..].chars().all(|c| c.is_ascii_lowercase() || c == '-'))
            .collect()
    };
    for sub in ["setup", "doctor"] {
        let cli = flags(Command::new(common::warrant_bin()).args([sub, "--help"]).output().unwrap());
        let daemon =
            flags(Command::new(env!("CARGO_BIN_EXE_warrantd")).args([sub, "--help"]).output().unwrap());
        assert!(!cli.is_empty());
        assert_eq!(cli, daemon, "warrant {sub} and warrantd {sub}");
    }
}

#[test]
fn setup_takes_a_named_pkcs11_token_whose_login_works_and_doctor_checks_it() {
    #[cfg(feature = "yubikey")]
    let _card = warrant_test_support::virtual_piv::lock();
    use std::os::unix::fs::OpenOptionsExt;
    let tmp = common::workdir();
    let home = Home::new(&tmp.path().join("home"));
    let conf = common::softhsm(&tmp.path().join("softhsm"), "warrant", "4321");
    let pin_file = |name: &str, pin: &str| {
        let path = home.root.join(name);
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&path)
            .unwrap();
        std::io::Write::write_all(&mut f, pin.as_bytes()).unwrap();
        path.to_string_lossy().into_owned()
    };
    pin_file("pin", "4321");
    pin_file("good-pin", "4321");
    let wrong = pin_file("wrong-pin", "9999");
    let run = |args: &[&str]| {
        let mut command = Command::new(common::warrant_bin());
        home.env(&mut command);
        command.env("SOFTHSM2_CONF", &conf).args(args).current_dir(&home.root).output().unwrap()
    };
    let module = "/usr/lib/softhsm/libsofthsm2.so";
    let token = ["--pkcs11-module", module, "--token", "warrant"];
    // A wrong PIN: the named store does not work, nothing is written.
    let out =
        run(&[&["setup", "--mode", "user", "--backend", "pkcs11"], &token[..], &["--pin-file", &wrong]]
            .concat());
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    assert!(text(&out.stderr).contains("PKCS#11 token \"warrant\""), "{}", text(&out.stderr));
    assert!(!home.config().exists());
    // A path that does not exist is refused before anything is probed.
    let out = run(&[
        "setup",
        "--mode",
        "user",
        "--backend",
        "pkcs11",
        "--pkcs11-module",
        module,
        "--token",
        "warrant",
        "--pin-file",
        "no-such-pin",
    ]);
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    assert!(text(&out.stderr).contains("--pin-file no-such-pin"), "{}", text(&out.stderr));
    assert!(!home.config().exists());
    // auto with the token named and a wrong PIN: an error, not software keys.
    let tcti = closed_tcti();
    let out =
        run(&[&["setup", "--mode", "user", "--tcti", &tcti], &token[..], &["--pin-file", &wrong]].concat());
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("PKCS#11 token \"warrant\"") && stderr.contains("does not fall back"),
        "{stderr}"
    );
    assert!(!home.config().exists(), "nothing written");
    assert!(!home.root.join("config/warrant/passphrase").exists(), "no software store made");
    // auto: no TPM, no YubiKey, the token named (by paths relative to the working directory,
    // which is home.root): the token, its paths written absolute.
    std::os::unix::fs::symlink(module, home.root.join("libsofthsm2.so")).unwrap();
    let relative = ["--pkcs11-module", "./libsofthsm2.so", "--token", "warrant", "--pin-file", "pin"];
    let args = [&["--json", "setup", "--mode", "user", "--tcti", &tcti], &relative[..]].concat();
    let out = run(&args);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["backend"], "pkcs11", "{report}");
    assert!(report["found"].as_str().unwrap().contains("login works"), "{report}");
    assert!(report["warnings"].to_string().contains("--allow-self-reported"), "{report}");
    let written = std::fs::read_to_string(home.config()).unwrap();
    let root = std::fs::canonicalize(&home.root).unwrap();
    for line in [
        format!("module = \"{}\"", root.join("libsofthsm2.so").display()),
        format!("pin_file = \"{}\"", root.join("pin").display()),
    ] {
        assert!(written.contains(&line), "{line} in\n{written}");
    }
    // A configuration written by hand with a relative module is refused, naming the line.
    let hand = home.root.join("relative.toml");
    std::fs::write(
        &hand,
        written.replace(&root.join("libsofthsm2.so").display().to_string(), "./libsofthsm2.so"),
    )
    .unwrap();
    let mut command = Command::new(env!("CARGO_BIN_EXE_warrantd"));
    home.env(&mut command);
    let out =
        command.arg("--check-config").arg("--config").arg(&hand).current_dir(&home.root).output().unwrap();
    assert_ne!(out.status.code(), Some(0), "{out:?}");
    let line = written.lines().position(|l| l.starts_with("module =")).unwrap() + 1;
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains(&format!("relative.toml:{line}")) && stderr.contains("relative path"),
        "{stderr}"
    );
    let out = run(&["--json", "doctor", "--config", home.config().to_str().unwrap()]);
    let checks: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_status(checks["checks"].as_array().unwrap(), "pkcs11", "ok", &["login works"]);
    // The PIN file changed under it: doctor fails the login, with the fix.
    std::fs::copy(home.root.join("wrong-pin"), home.root.join("pin")).unwrap();
    let out = run(&["--json", "doctor", "--config", home.config().to_str().unwrap()]);
    let checks: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert_status(checks["checks"].as_array().unwrap(), "pkcs11", "fail", &["PIN source"]);
    // That wrong PIN set the token's "PIN count low": doctor no longer tries to log in (each try
    // counts against the token's limit) ...
    let doctor = || {
        let out = run(&["--json", "doctor", "--config", home.config().to_str().unwrap()]);
        let checks: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        (out.status.code(), checks["checks"].as_array().unwrap().clone())
    };
    let (_, checks) = doctor();
    assert_status(&checks, "pkcs11", "warn", &["PIN count low", "login not tried", "pkcs11-tool --login"]);
    // ... not even with the right PIN back: a login would have cleared the flag, and the second
    // run would pass.
    std::fs::copy(home.root.join("good-pin"), home.root.join("pin")).unwrap();
    for _ in 0..2 {
        let (_, checks) = doctor();
        assert_status(&checks, "pkcs11", "warn", &["login not tried"]);
    }
    // A successful login (setup's probe) clears it; doctor logs in again.
    let out = run(&[&["setup", "--mode", "user", "--force", "--tcti", &tcti], &relative[..]].concat());
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let (_, checks) = doctor();
    assert_status(&checks, "pkcs11", "ok", &["login works"]);

    // --force does not replace the token's configuration with software keys ...
    let pkcs11_config = std::fs::read_to_string(home.config()).unwrap();
    let out = run(&["setup", "--mode", "user", "--force", "--backend", "soft"]);
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    assert!(text(&out.stderr).contains("--downgrade"), "{}", text(&out.stderr));
    assert_eq!(std::fs::read_to_string(home.config()).unwrap(), pkcs11_config);
    // ... unless told to, and then the old file is kept.
    let out = run(&["setup", "--mode", "user", "--force", "--downgrade", "--backend", "soft"]);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    assert!(std::fs::read_to_string(home.config()).unwrap().contains("backend = \"soft\""));
    let bak = home.root.join("config/warrant/agent.toml.bak");
    assert_eq!(std::fs::read_to_string(bak).unwrap(), pkcs11_config);
}
