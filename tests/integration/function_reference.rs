//! `docs/functions.md` is generated from the functions' own documentation (a
//! drift check), and every documented example runs on the sample dataset.

use crate::common;

use std::path::PathBuf;

#[test]
fn function_reference_is_current() {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("docs/functions.md");
    let generated = audience_udfs::reference_markdown();
    if std::env::var_os("UPDATE_DOCS").is_some() {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, &generated).unwrap();
    }
    let current = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        current == generated,
        "{} is out of date: regenerate it with UPDATE_DOCS=1 cargo nextest run --workspace -E 'test(function_reference)'",
        path.display()
    );
}

#[test]
fn documented_examples_run() {
    let examples = audience_udfs::example_queries();
    assert_eq!(
        examples.len(),
        audience_udfs::documented_functions().len(),
        "every function has an example"
    );
    for (name, sql) in examples {
        let out = common::audience(&["query", "--format", "csv", &sql]).ok();
        assert!(
            out.lines().count() > 1,
            "{name}: example returned no rows:\n{sql}"
        );
    }
}
