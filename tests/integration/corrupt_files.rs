//! Reliability F5: a seeded corruptor damages one file of a table — truncations,
//! bit flips in the footer, near page headers and in the data, a zero-byte
//! file, bad magic, a file of another table, a folder named like a file — and
//! every query over it ends within 10 s without a panic: an answer (a flip
//! that still decodes), or a one-line error naming the file. The table answers
//! correctly again once the file is gone, after every case.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use parquet::file::reader::{FileReader, SerializedFileReader};

use crate::common::reliability::{Seeded, record, size};
use crate::common::sample_dir;

/// Reads every column of `orders`.
const QUERY: &str = "SELECT count(*), sum(order_id), sum(member_id), min(ts), max(channel), \
                     sum(store_id), sum(amount), sum(discount), sum(item_count), sum(coupon_id) \
                     FROM orders";
const VICTIM: &str = "part-00001.parquet";

struct Outcome {
    code: i32,
    stdout: String,
    stderr: String,
    seconds: f64,
}

/// `audience query` over `dir`, killed if it runs past 30 s.
fn query(dir: &Path) -> Outcome {
    let started = Instant::now();
    let mut child = Command::new(env!("CARGO_BIN_EXE_audience"))
        .args(["query", "--format", "csv", "--data"])
        .arg(dir)
        .arg(QUERY)
        .env("AUDIENCE_LOG", "error")
        .env_remove("AUDIENCE_DATA_DIR")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    while child.try_wait().unwrap().is_none() && started.elapsed() < Duration::from_secs(30) {
        std::thread::sleep(Duration::from_millis(5));
    }
    let _ = child.kill();
    let out = child.wait_with_output().unwrap();
    Outcome {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        seconds: started.elapsed().as_secs_f64(),
    }
}

/// Where to damage a Parquet file: its footer and the first bytes of each
/// column chunk's first page (its header).
struct Layout {
    footer: std::ops::Range<usize>,
    pages: Vec<usize>,
}

fn layout(path: &Path) -> Layout {
    let bytes = std::fs::read(path).unwrap();
    let n = bytes.len();
    let footer_len = u32::from_le_bytes(bytes[n - 8..n - 4].try_into().unwrap()) as usize;
    let reader = SerializedFileReader::new(std::fs::File::open(path).unwrap()).unwrap();
    let pages = reader
        .metadata()
        .row_groups()
        .iter()
        .flat_map(|rg| rg.columns())
        .flat_map(|c| [c.dictionary_page_offset(), Some(c.data_page_offset())])
        .flatten()
        .map(|offset| offset as usize)
        .collect();
    Layout {
        footer: n - 8 - footer_len..n - 8,
        pages,
    }
}

/// One damaged copy of `clean`: what was done, and the bytes.
fn damage(clean: &[u8], layout: &Layout, rng: &mut Seeded, case: usize) -> (String, Vec<u8>) {
    let mut bytes = clean.to_vec();
    let flip = |bytes: &mut Vec<u8>, rng: &mut Seeded, at: usize| {
        bytes[at] ^= 1 << rng.below(8);
        at
    };
    // one truncation in eleven, the flips spread over footer, headers and data
    match case % 11 {
        0 => {
            let keep = rng.below(clean.len());
            bytes.truncate(keep);
            (format!("truncated to {keep} bytes"), bytes)
        }
        1..=5 => {
            let at = layout.footer.start + rng.below(layout.footer.len());
            let at = flip(&mut bytes, rng, at);
            (format!("footer bit flip at {at}"), bytes)
        }
        6..=8 => {
            let at = layout.pages[rng.below(layout.pages.len())] + rng.below(24);
            let at = flip(&mut bytes, rng, at);
            (format!("page header bit flip at {at}"), bytes)
        }
        _ => {
            let mut places = vec![];
            for _ in 0..1 + rng.below(4) {
                let at = 4 + rng.below(layout.footer.start - 4);
                places.push(flip(&mut bytes, rng, at));
            }
            (format!("data bit flips at {places:?}"), bytes)
        }
    }
}

#[test]
fn corrupt_files_are_named_errors_never_panics_or_hangs() {
    let source = sample_dir().join("orders");
    let clean = std::fs::read(source.join(VICTIM)).unwrap();
    let layout = layout(&source.join(VICTIM));
    let dir = tempfile::tempdir().unwrap();
    let table = dir.path().join("orders");
    std::fs::create_dir(&table).unwrap();
    for file in std::fs::read_dir(&source).unwrap() {
        // the data files only: the copy is a plain Parquet folder
        let file = file.unwrap().path();
        if file.is_file() {
            std::fs::copy(&file, table.join(file.file_name().unwrap())).unwrap();
        }
    }
    let victim = table.join(VICTIM);
    let full_answer = query(dir.path());
    assert_eq!(full_answer.code, 0, "{}", full_answer.stderr);
    std::fs::remove_file(&victim).unwrap();
    let without = query(dir.path()).stdout;
    assert_ne!(without, full_answer.stdout);

    let other_table = std::fs::read(sample_dir().join("events").join(VICTIM)).unwrap();
    let mut bad_magic = clean.clone();
    let n = bad_magic.len();
    bad_magic[n - 4..].copy_from_slice(b"PAR2");
    let mut cases: Vec<(String, Option<Vec<u8>>)> = vec![
        ("zero-length file".into(), Some(vec![])),
        ("bad magic".into(), Some(bad_magic)),
        ("a file of another table".into(), Some(other_table)),
        ("a folder named like a file".into(), None),
    ];
    let mut rng = Seeded::new("corrupt_files", 20261129);
    for case in 0..size(96, 330) {
        let (what, bytes) = damage(&clean, &layout, &mut rng, case);
        cases.push((what, Some(bytes)));
    }

    let (mut errors, mut answers, mut slowest) = (0, 0, 0f64);
    for (what, bytes) in &cases {
        match bytes {
            Some(bytes) => std::fs::write(&victim, bytes).unwrap(),
            None => std::fs::create_dir(&victim).unwrap(),
        }
        let run = query(dir.path());
        let context = format!("{what}: exit {}\n{}", run.code, run.stderr);
        assert!(!run.stderr.contains("panicked"), "panic — {context}");
        assert!(run.seconds <= 10.0, "{:.1} s — {context}", run.seconds);
        slowest = slowest.max(run.seconds);
        match run.code {
            0 => answers += 1,
            2 => {
                errors += 1;
                assert!(run.stderr.contains(VICTIM), "file not named — {context}");
                assert_eq!(run.stderr.trim_end().lines().count(), 1, "{context}");
            }
            _ => panic!("neither an answer nor a user error — {context}"),
        }
        if victim.is_dir() {
            std::fs::remove_dir(&victim).unwrap();
        } else {
            std::fs::remove_file(&victim).unwrap();
        }
        let after = query(dir.path());
        assert_eq!(after.stdout, without, "after {what}: {}", after.stderr);
    }
    println!(
        "{} cases: {errors} named errors, {answers} answered, slowest {slowest:.2} s",
        cases.len()
    );
    assert!(errors > cases.len() / 2, "the corruptor hardly corrupted");
    record(
        "F5",
        serde_json::json!({
            "cases": cases.len(), "named_errors": errors, "answered": answers,
            "panics": 0, "slowest_s": slowest,
        }),
    );
}
