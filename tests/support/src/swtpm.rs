//! A private swtpm per test: its own state directory, loopback ports and local EK CA.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// A running swtpm.
pub struct Swtpm {
    dir: tempfile::TempDir,
    port: u16,
}

/// State made once per test process by swtpm_setup: EK certificates signed by a private CA.
struct Template {
    _dir: tempfile::TempDir,
    state: PathBuf,
    ca_pem: Vec<u8>,
}

fn template() -> &'static Template {
    static TEMPLATE: OnceLock<Template> = OnceLock::new();
    TEMPLATE.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        let (state, ca) = (dir.path().join("state"), dir.path().join("ca"));
        std::fs::create_dir_all(&state).unwrap();
        std::fs::create_dir_all(&ca).unwrap();
        let localca_conf = dir.path().join("swtpm-localca.conf");
        std::fs::write(
            &localca_conf,
            format!(
                "statedir = {ca}\nsigningkey = {ca}/signkey.pem\nissuercert = {ca}/issuercert.pem\ncertserial = {ca}/certserial\n",
                ca = ca.display()
            ),
        )
        .unwrap();
        let options = dir.path().join("swtpm-localca.options");
        std::fs::write(&options, "--platform-manufacturer warrant-tests\n--platform-version 2.1\n--platform-model swtpm\n").unwrap();
        let setup_conf = dir.path().join("swtpm_setup.conf");
        std::fs::write(
            &setup_conf,
            format!(
                "create_certs_tool = /usr/bin/swtpm_localca\ncreate_certs_tool_config = {}\ncreate_certs_tool_options = {}\nactive_pcr_banks = sha256\n",
                localca_conf.display(),
                options.display()
            ),
        )
        .unwrap();
        let out = Command::new("swtpm_setup")
            .args(["--tpm2", "--createek", "--create-ek-cert", "--pcr-banks", "sha256,sha1", "--overwrite"])
            .arg("--tpmstate")
            .arg(&state)
            .arg("--config")
            .arg(&setup_conf)
            .output()
            .expect("swtpm_setup (apt install swtpm-tools)");
        assert!(out.status.success(), "swtpm_setup: {}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
        let mut ca_pem = std::fs::read(ca.join("swtpm-localca-rootca-cert.pem")).unwrap();
        ca_pem.extend(std::fs::read(ca.join("issuercert.pem")).unwrap());
        Template { _dir: dir, state, ca_pem }
    })
}

fn free_port_pair() -> u16 {
    loop {
        let a = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = a.local_addr().unwrap().port();
        if port < 65000 && TcpListener::bind(("127.0.0.1", port + 1)).is_ok() {
            return port;
        }
    }
}

impl Swtpm {
    /// A new TPM with EK certificates (the same seeds as every other `start()` in this process).
    pub fn start() -> Self {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("state")).unwrap();
        for entry in std::fs::read_dir(&template().state).unwrap() {
            let entry = entry.unwrap();
            std::fs::copy(entry.path(), dir.path().join("state").join(entry.file_name())).unwrap();
        }
        let mut tpm = Self { dir, port: free_port_pair() };
        tpm.launch();
        tpm
    }

    /// The local CA's root and issuing certificates (PEM): the EK trust anchors.
    pub fn ek_ca_pem(&self) -> Vec<u8> {
        template().ca_pem.clone()
    }

    /// The TCTI string for tss-esapi and tpm2-tools.
    pub fn tcti(&self) -> String {
        format!("swtpm:host=127.0.0.1,port={}", self.port)
    }

    fn state(&self) -> PathBuf {
        self.dir.path().join("state")
    }

    fn pid_file(&self) -> PathBuf {
        self.dir.path().join("pid")
    }

    fn launch(&mut self) {
        // With --daemon swtpm changes to /: every path must be absolute.
        let status = Command::new("swtpm")
            .args(["socket", "--tpm2", "--daemon", "--flags", "not-need-init,startup-clear"])
            .arg("--server")
            .arg(format!("type=tcp,port={},bindaddr=127.0.0.1", self.port))
            .arg("--ctrl")
            .arg(format!("type=tcp,port={},bindaddr=127.0.0.1", self.port + 1))
            .arg("--tpmstate")
            .arg(format!("dir={}", self.state().display()))
            .arg("--pid")
            .arg(format!("file={}", self.pid_file().display()))
            .arg("--log")
            .arg(format!("file={}", self.dir.path().join("log").display()))
            .status()
            .expect("swtpm (apt install swtpm)");
        assert!(status.success(), "swtpm did not start");
        let deadline = Instant::now() + Duration::from_secs(5);
        while std::net::TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(Instant::now() < deadline, "swtpm is not listening");
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    /// Stops swtpm and waits until it has exited.
    pub fn stop(&mut self) {
        let Ok(pid) = std::fs::read_to_string(self.pid_file()) else { return };
        let pid = pid.trim().to_owned();
        let _ = Command::new("kill").arg(&pid).status();
        let deadline = Instant::now() + Duration::from_secs(5);
        while Path::new(&format!("/proc/{pid}")).exists() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(10));
        }
        let _ = std::fs::remove_file(self.pid_file());
    }

    /// Stops and starts it again on the same state: a TPM Reset (transient objects are gone).
    pub fn restart(&mut self) {
        self.stop();
        self.launch();
    }

    /// Stops it and starts a TPM with new seeds (as after TPM2_Clear, or another TPM).
    pub fn wipe(&mut self) {
        self.stop();
        std::fs::remove_dir_all(self.state()).unwrap();
        std::fs::create_dir_all(self.state()).unwrap();
        self.launch();
    }

    /// Runs a tpm2-tools command against this TPM, flushing transient objects afterwards
    /// (there is no resource manager). Panics on failure.
    pub fn tool(&self, args: &[&str], cwd: &Path) -> Vec<u8> {
        let out = Command::new(args[0])
            .args(&args[1..])
            .current_dir(cwd)
            .env("TPM2TOOLS_TCTI", self.tcti())
            .env("TSS2_LOG", "all+none")
            .output()
            .unwrap_or_else(|e| panic!("{} (apt install tpm2-tools): {e}", args[0]));
        assert!(out.status.success(), "{args:?}: {}", String::from_utf8_lossy(&out.stderr));
        for flag in ["-t", "-s"] {
            let _ = Command::new("tpm2_flushcontext")
                .arg(flag)
                .env("TPM2TOOLS_TCTI", self.tcti())
                .env("TSS2_LOG", "all+none")
                .output();
        }
        out.stdout
    }
}

impl Drop for Swtpm {
    fn drop(&mut self) {
        self.stop();
    }
}
