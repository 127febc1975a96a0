//! The real `audience serve` on a random loopback port, configured by a builder
//! (`TestServer::spawn(TestConfig::default().with_tls(..))`), with its log kept
//! for assertions and the process killed when the test ends.

use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The test users: `(name, role, password)`.
pub const USERS: [(&str, &str, &str); 3] = [
    ("analyst", "analyst", "analyst-pw"),
    ("marketer", "marketer", "marketer-pw"),
    ("admin", "admin", "admin-pw"),
];

/// How to start the server.
#[derive(Debug, Default, Clone)]
pub struct TestConfig {
    tls: Option<(PathBuf, PathBuf)>,
    server_toml: Vec<String>,
    export_prefix: Option<PathBuf>,
    env: Vec<(String, String)>,
    data: Option<PathBuf>,
    addr: Option<String>,
}

impl TestConfig {
    /// Serve TLS with these PEM files.
    pub fn with_tls(mut self, cert: &Path, key: &Path) -> Self {
        self.tls = Some((cert.to_path_buf(), key.to_path_buf()));
        self
    }

    /// Adds a `key = value` line to `[server]`.
    pub fn with_server(mut self, line: &str) -> Self {
        self.server_toml.push(line.to_string());
        self
    }

    /// Serves the dataset at `dir` (as is) instead of a copy of the sample.
    pub fn with_data(mut self, dir: &Path) -> Self {
        self.data = Some(dir.to_path_buf());
        self
    }

    /// Listens on `addr` (`127.0.0.1:PORT`) instead of a port of its own choosing.
    pub fn with_addr(mut self, addr: &str) -> Self {
        self.addr = Some(addr.to_string());
        self
    }

    /// Sets an environment variable of the server process.
    pub fn with_env(mut self, key: &str, value: &str) -> Self {
        self.env.push((key.to_string(), value.to_string()));
        self
    }

    /// Lets marketers export under `dir`.
    pub fn with_export_prefix(mut self, dir: &Path) -> Self {
        self.export_prefix = Some(dir.to_path_buf());
        self
    }
}

/// A running server.
#[derive(Debug)]
pub struct TestServer {
    child: Child,
    /// `grpc://127.0.0.1:PORT` (or `grpc+tls://localhost:PORT`).
    pub url: String,
    /// The server's process id.
    pub pid: u32,
    /// A private copy of the sample dataset the server serves.
    pub data: PathBuf,
    log: Arc<Mutex<String>>,
    _dir: tempfile::TempDir,
}

impl TestServer {
    /// Starts the server on a copy of the sample data and waits until it listens.
    pub fn spawn(config: TestConfig) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let data = match &config.data {
            Some(data) => data.clone(),
            None => {
                let data = dir.path().join("data");
                copy_dir(&super::sample_dir(), &data);
                data
            }
        };
        let mut toml = format!("[data]\ndir = \"{}\"\n\n[server]\n", data.display());
        for line in &config.server_toml {
            toml.push_str(line);
            toml.push('\n');
        }
        for (name, role, password) in USERS {
            let hash = super::audience_with_stdin(&["hash-password"], Some(password)).ok();
            toml.push_str(&format!(
                "[[server.users]]\nname = \"{name}\"\nrole = \"{role}\"\npassword_hash = \"{}\"\n",
                hash.trim()
            ));
        }
        if let Some((cert, key)) = &config.tls {
            toml.push_str(&format!(
                "[server.tls]\ncert = \"{}\"\nkey = \"{}\"\n",
                cert.display(),
                key.display()
            ));
        }
        if let Some(prefix) = &config.export_prefix {
            toml.push_str(&format!(
                "[server.export]\nallowed_prefixes = [\"{}\"]\n",
                prefix.display()
            ));
        }
        let config_path = dir.path().join("audience.toml");
        std::fs::write(&config_path, toml).unwrap();

        let mut child = Command::new(env!("CARGO_BIN_EXE_audience"))
            .args(["--log-format", "json", "serve", "--config"])
            .arg(&config_path)
            .args(["--addr", config.addr.as_deref().unwrap_or("127.0.0.1:0")])
            .env("AUDIENCE_LOG", "info")
            .env_remove("AUDIENCE_DATA_DIR")
            .envs(config.env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start audience serve");
        let log = Arc::new(Mutex::new(String::new()));
        let mut stderr = child.stderr.take().unwrap();
        let sink = Arc::clone(&log);
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while let Ok(n) = stderr.read(&mut buf) {
                if n == 0 {
                    break;
                }
                sink.lock()
                    .unwrap()
                    .push_str(&String::from_utf8_lossy(&buf[..n]));
            }
        });
        let mut stdout = BufReader::new(child.stdout.take().unwrap());
        let mut line = String::new();
        let listening = loop {
            line.clear();
            if stdout.read_line(&mut line).unwrap() == 0 {
                let _ = child.wait();
                panic!(
                    "audience serve exited before listening:\n{}",
                    log.lock().unwrap()
                );
            }
            if let Some(rest) = line
                .trim()
                .strip_prefix("Audience Flight SQL server listening on ")
            {
                break rest.to_string();
            }
        };
        // drain the rest of stdout so the server never blocks on a full pipe
        std::thread::spawn(move || std::io::copy(&mut stdout, &mut std::io::sink()));
        let url = match &config.tls {
            Some(_) => listening.replace("127.0.0.1", "localhost"),
            None => listening,
        };
        let pid = child.id();
        TestServer {
            child,
            url,
            pid,
            data,
            log,
            _dir: dir,
        }
    }

    /// The arguments the Python checks take.
    pub fn client_args(&self) -> serde_json::Value {
        let users: serde_json::Map<String, serde_json::Value> = USERS
            .iter()
            .map(|(name, _, password)| (name.to_string(), (*password).into()))
            .collect();
        serde_json::json!({
            "url": self.url,
            "users": users,
            "pid": self.pid,
            "data": self.data,
            "binary": env!("CARGO_BIN_EXE_audience"),
        })
    }

    /// The server's log so far (JSON lines).
    pub fn log(&self) -> String {
        self.log.lock().unwrap().clone()
    }

    /// Waits up to `timeout` for a log line containing every one of `needles`.
    pub fn wait_for_log(&self, needles: &[&str], timeout: Duration) -> Option<String> {
        let started = Instant::now();
        while started.elapsed() < timeout {
            if let Some(line) = self
                .log()
                .lines()
                .find(|l| needles.iter().all(|n| l.contains(n)))
            {
                return Some(line.to_string());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        None
    }

    /// A line of the server's `/proc/PID/status` (`VmRSS`, `Threads`) as a number.
    pub fn status_value(&self, key: &str) -> u64 {
        status_value(self.pid, key)
    }

    /// Open file descriptors of the server.
    pub fn open_fds(&self) -> usize {
        open_fds(self.pid)
    }

    /// CPU seconds the server has used (user + system).
    pub fn cpu_seconds(&self) -> f64 {
        let stat = std::fs::read_to_string(format!("/proc/{}/stat", self.pid)).unwrap();
        let after_name = &stat[stat.rfind(')').unwrap() + 2..];
        let fields: Vec<&str> = after_name.split_whitespace().collect();
        let ticks: f64 = fields[11].parse::<f64>().unwrap() + fields[12].parse::<f64>().unwrap();
        ticks / 100.0
    }

    /// Kills the server with SIGKILL (no chance to clean up) and waits for it to go.
    pub fn kill(&mut self) {
        self.child.kill().unwrap();
        let status = self.child.wait().unwrap();
        assert_eq!(
            std::os::unix::process::ExitStatusExt::signal(&status),
            Some(9),
            "the server was not killed: {status}"
        );
    }

    /// Sends SIGTERM and waits for the exit code.
    pub fn terminate(mut self) -> i32 {
        let _ = Command::new("kill")
            .args(["-TERM", &self.pid.to_string()])
            .status();
        self.child.wait().unwrap().code().unwrap_or(-1)
    }
}

/// A loopback address with a port free now, for a server that must come back on it.
pub fn free_addr() -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().to_string()
}

/// A line of process `pid`'s `/proc/PID/status` (`VmRSS`, `Threads`) as a number.
pub fn status_value(pid: u32, key: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let line = status.lines().find(|l| l.starts_with(key)).unwrap();
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

/// Open file descriptors of process `pid`.
pub fn open_fds(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .unwrap()
        .count()
}

impl Drop for TestServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}
