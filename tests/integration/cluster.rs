//! The same SQL on a Ballista cluster: one `audience scheduler` and two
//! `audience executor` processes on loopback run the analysts' recipes
//! (funnel, retention, sequences, RFM, lifecycle) over scale s data, and every
//! answer equals the local engine's, row for row; the in-process
//! (standalone) Ballista mode; and an executor's memory limit.

use crate::common;

use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use common::{audience, csv_rows};

/// The recipes compared, from `sql/recipes/`.
const RECIPES: &[&str] = &[
    "funnel_conversion",
    "retention_cohorts",
    "path_checks",
    "rfm_segments",
    "lifecycle_stages",
    "lifecycle_series",
];

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A cluster process, killed when dropped; its stderr lines arrive on `lines`.
struct Process {
    child: Child,
    lines: mpsc::Receiver<String>,
    seen: Vec<String>,
}

impl Process {
    fn start(args: &[&str]) -> Process {
        let mut child = Command::new(env!("CARGO_BIN_EXE_audience"))
            .args(args)
            .env("AUDIENCE_LOG", "warn,ballista_executor=info")
            .env_remove("AUDIENCE_DATA_DIR")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start audience");
        let stderr = child.stderr.take().unwrap();
        let (send, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if send.send(line).is_err() {
                    break;
                }
            }
        });
        Process {
            child,
            lines,
            seen: Vec::new(),
        }
    }

    /// Waits up to `timeout` for a stderr line containing `needle`.
    fn wait_for(&mut self, needle: &str, timeout: Duration) {
        let deadline = std::time::Instant::now() + timeout;
        while let Some(left) = deadline.checked_duration_since(std::time::Instant::now()) {
            match self.lines.recv_timeout(left) {
                Ok(line) if line.contains(needle) => return,
                Ok(line) => self.seen.push(line),
                Err(_) => break,
            }
        }
        let status = self.child.try_wait().ok().flatten();
        panic!(
            "no '{needle}' within {timeout:?} (exited: {status:?}); stderr:\n{}",
            self.seen.join("\n")
        );
    }

    /// Every stderr line so far.
    fn log(&mut self) -> String {
        self.seen.extend(self.lines.try_iter());
        self.seen.join("\n")
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// An executor registered with the scheduler at `scheduler_addr`.
fn start_executor(scheduler_addr: &str, work: &Path, tasks: &str, memory: &str) -> Process {
    let mut executor = Process::start(&[
        "executor",
        "--addr",
        &format!("127.0.0.1:{}", free_port()),
        "--grpc-port",
        &free_port().to_string(),
        "--scheduler",
        scheduler_addr,
        "--tasks",
        tasks,
        "--memory-limit",
        memory,
        "--work-dir",
        work.to_str().unwrap(),
    ]);
    executor.wait_for("Executor registration succeed", Duration::from_secs(60));
    executor
}

/// Runs `sql` (or, with `file`, the SQL file `sql`) and returns the CSV answer.
fn run(data: &Path, remote: Option<&str>, sql: &str, file: bool) -> String {
    let mut args = vec!["query", "--format", "csv", "--data", data.to_str().unwrap()];
    if let Some(remote) = remote {
        // a stuck job fails the test instead of hanging it
        args.extend(["--remote", remote, "--timeout", "180s"]);
    }
    if file {
        args.push("-f");
    }
    args.push(sql);
    audience(&args).ok()
}

fn query(data: &Path, remote: Option<&str>, sql: &str) -> String {
    run(data, remote, sql, false)
}

#[test]
fn recipes_on_a_two_executor_cluster_answer_like_the_local_engine() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("s");
    audience(&["gen", "--scale", "s", "--out", data.to_str().unwrap()]).ok();

    let scheduler_addr = format!("127.0.0.1:{}", free_port());
    let _scheduler = Process::start(&["scheduler", "--addr", &scheduler_addr]);
    let mut executors: Vec<Process> = (0..2)
        .map(|i| {
            let work = dir.path().join(format!("executor-{i}"));
            std::fs::create_dir_all(&work).unwrap();
            start_executor(&scheduler_addr, &work, "1", "2GB")
        })
        .collect();

    let remote = format!("df://{scheduler_addr}");
    for recipe in RECIPES {
        let file = Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("sql/recipes/{recipe}.sql"));
        let file = file.to_str().unwrap();
        let local = run(&data, None, file, true);
        assert!(!csv_rows(&local).is_empty(), "{recipe}: no answer: {local}");
        let distributed = run(&data, Some(&remote), file, true);
        assert_eq!(
            csv_rows(&distributed),
            csv_rows(&local),
            "{recipe}: the cluster's answer differs from the local one"
        );
    }
    // the work was spread: both executors ran tasks
    for (i, executor) in executors.iter_mut().enumerate() {
        let log = executor.log();
        assert!(
            log.contains("Execute task"),
            "executor {i} ran no task:\n{log}"
        );
    }
}

#[test]
fn our_functions_run_on_an_in_process_ballista_cluster() {
    // (that every function is registered there: engine/src/cluster.rs)
    let data = common::sample_dir();
    let funnel = "SELECT level, count(*) FROM (SELECT member_id, \
         window_funnel(INTERVAL '7 days', '', ts, event = 'view', event = 'cart') AS level \
         FROM events GROUP BY member_id) GROUP BY level ORDER BY level";
    let local = csv_rows(&query(&data, None, funnel));
    assert_eq!(local.len(), 2, "levels 1 and 2: {local:?}");
    assert_eq!(csv_rows(&query(&data, Some("standalone"), funnel)), local);
}

#[test]
fn a_bad_remote_is_named() {
    let data = common::sample_dir();
    audience(&[
        "query",
        "--data",
        data.to_str().unwrap(),
        "--remote",
        "cluster-7",
        "SELECT 1",
    ])
    .user_error("must be \"\" (local), \"standalone\" or \"df://host:port\"");
}

#[test]
fn an_executor_refuses_over_its_memory_limit_through_the_engines_pool() {
    let data = common::sample_dir();
    let work = tempfile::tempdir().unwrap();
    let scheduler_addr = format!("127.0.0.1:{}", free_port());
    let _scheduler = Process::start(&["scheduler", "--addr", &scheduler_addr]);
    let _executor = start_executor(&scheduler_addr, work.path(), "2", "1MB");
    let remote = format!("df://{scheduler_addr}");
    let data = data.to_str().unwrap();
    let run = |sql: &str| {
        let args = [
            "query",
            "--format",
            "csv",
            "--data",
            data,
            "--remote",
            &remote,
            "--timeout",
            "180s",
            sql,
        ];
        audience(&args)
    };
    // a query within the limit answers
    assert_eq!(
        csv_rows(&run("SELECT count(*) FROM members").ok()),
        csv_rows(&query(
            &common::sample_dir(),
            None,
            "SELECT count(*) FROM members"
        ))
    );
    // a state that cannot spill (~4 MB of strings), over the limit: refused by
    // Audience's pool, which names its largest consumers (Ballista's per-task
    // pool does not) across the executor's tasks
    let refused = run("SELECT cardinality(array_agg(concat(member_id, event, ts))) FROM events");
    assert_ne!(refused.code, 0, "answered under 1MB: {}", refused.stdout);
    assert!(
        refused.stderr.contains("top memory consumers")
            && refused.stderr.contains("hint: ")
            && refused.stderr.contains("audience executor --memory-limit"),
        "not refused by Audience's pool: {}",
        refused.stderr
    );
    assert!(!refused.stderr.contains("panicked"), "{}", refused.stderr);
}
