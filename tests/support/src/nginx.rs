//! A private nginx (Debian's package nginx-light) for tests: a static root in its own
//! directory served on a loopback port, its configuration, pid file, logs and temporary
//! directories all in that directory, in the foreground (`daemon off;`, one process: no
//! `user` to switch to, so it runs as whoever starts it, root or not), stopped (killed) on
//! drop. Files without an extension are served as `application/statuslist+cwt`, as a status
//! host serves `warrant authority publish-status --out-dir`.

use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A running nginx.
pub struct Nginx {
    child: Option<Child>,
    dir: tempfile::TempDir,
    port: u16,
}

impl Nginx {
    /// Starts one serving an empty root ([`Nginx::root`]).
    pub fn start() -> Self {
        let dir = tempfile::Builder::new().prefix("nginx-").tempdir().expect("temporary directory");
        let port = free_port();
        std::fs::create_dir_all(dir.path().join("root")).unwrap();
        std::fs::create_dir_all(dir.path().join("temp")).unwrap();
        std::fs::write(dir.path().join("nginx.conf"), config(dir.path(), port)).unwrap();
        let mut nginx = Self { child: None, dir, port };
        nginx.restart();
        nginx
    }

    /// The directory it serves.
    pub fn root(&self) -> PathBuf {
        self.dir.path().join("root")
    }

    /// `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// The access log's lines so far (`$status $request_method $uri "$http_if_none_match"`).
    pub fn access_log(&self) -> Vec<String> {
        std::fs::read_to_string(self.dir.path().join("access.log"))
            .unwrap_or_default()
            .lines()
            .map(str::to_owned)
            .collect()
    }

    /// The error log.
    pub fn error_log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("error.log")).unwrap_or_default()
    }

    /// Stops it (SIGKILL): nothing listens on its port until [`Nginx::restart`].
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts it again on the same port, serving the same root.
    pub fn restart(&mut self) {
        self.stop();
        let dir = self.dir.path();
        let child = Command::new(binary())
            .arg("-p")
            .arg(dir)
            .arg("-c")
            .arg(dir.join("nginx.conf"))
            .arg("-e")
            .arg(dir.join("error.log"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("nginx (Debian package nginx-light) must be installed");
        self.child = Some(child);
        self.wait_listening();
    }

    fn wait_listening(&mut self) {
        let start = Instant::now();
        while TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            if let Some(Ok(Some(status))) = self.child.as_mut().map(Child::try_wait) {
                panic!("nginx exited ({status}): {}", self.error_log());
            }
            assert!(start.elapsed() < Duration::from_secs(20), "nginx did not start: {}", self.error_log());
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Nginx {
    fn drop(&mut self) {
        self.stop();
    }
}

/// `nginx` on the PATH, else Debian's /usr/sbin/nginx (not on a user's PATH).
fn binary() -> PathBuf {
    let sbin = Path::new("/usr/sbin/nginx");
    if sbin.exists() {
        sbin.to_owned()
    } else {
        PathBuf::from("nginx")
    }
}

fn config(dir: &Path, port: u16) -> String {
    let temp = dir.join("temp");
    format!(
        r#"daemon off;
master_process off;
worker_processes 1;
pid {pid};
error_log {dir}/error.log info;
events {{ worker_connections 64; }}
http {{
    log_format status '$status $request_method $uri "$http_if_none_match"';
    access_log {dir}/access.log status;
    client_body_temp_path {temp}/body;
    proxy_temp_path {temp}/proxy;
    fastcgi_temp_path {temp}/fastcgi;
    uwsgi_temp_path {temp}/uwsgi;
    scgi_temp_path {temp}/scgi;
    types {{ }}
    default_type application/statuslist+cwt;
    server {{
        listen 127.0.0.1:{port};
        root {dir}/root;
    }}
}}
"#,
        pid = dir.join("nginx.pid").display(),
        dir = dir.display(),
        temp = temp.display(),
    )
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).expect("a free port").port()
}
