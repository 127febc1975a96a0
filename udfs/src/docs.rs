//! The function reference (`docs/functions.md`), generated from the
//! documentation attached to each function.

use datafusion::logical_expr::Documentation;

use crate::all_functions;

/// Every function's `(name, documentation)`, sorted by name.
pub fn documented_functions() -> Vec<(String, Documentation)> {
    let f = all_functions();
    let scalar = f
        .scalar
        .iter()
        .map(|u| (u.name().to_string(), u.documentation().cloned()));
    let aggregate = f
        .aggregate
        .iter()
        .map(|u| (u.name().to_string(), u.documentation().cloned()));
    let window = f
        .window
        .iter()
        .map(|u| (u.name().to_string(), u.documentation().cloned()));
    let table = f
        .table
        .into_iter()
        .map(|t| (t.name.to_string(), t.documentation));
    let mut docs: Vec<(String, Documentation)> = scalar
        .chain(aggregate)
        .chain(window)
        .chain(table)
        .filter_map(|(name, doc)| doc.map(|d| (name, d)))
        .collect();
    docs.sort_by(|a, b| a.0.cmp(&b.0));
    docs
}

/// The Markdown reference page.
pub fn reference_markdown() -> String {
    let mut out = String::from(
        "# Audience function reference\n\n\
         <!-- Generated from the documentation on each function in udfs/src; do not edit by hand.\n     \
         Regenerate with: UPDATE_DOCS=1 cargo nextest run --workspace -E 'test(function_reference)' -->\n\n\
         Semantics are specified in `shared/SPEC.md`; these pages are the user's view of them.\n",
    );
    for (name, doc) in documented_functions() {
        out.push_str(&format!("\n## `{name}`\n\n{}\n\n", doc.description));
        out.push_str(&format!("```sql\n{}\n```\n", doc.syntax_example));
        if let Some(args) = &doc.arguments {
            out.push_str("\n| argument | meaning |\n|---|---|\n");
            for (arg, meaning) in args {
                out.push_str(&format!(
                    "| `{arg}` | {} |\n",
                    meaning.replace('\n', " ").replace('|', "\\|")
                ));
            }
        }
        if let Some(example) = &doc.sql_example {
            out.push_str(&format!("\nExample:\n\n{example}\n"));
        }
    }
    out
}

/// The SQL statements of each function's example (the lines after `> `, up to `;`).
pub fn example_queries() -> Vec<(String, String)> {
    documented_functions()
        .into_iter()
        .filter_map(|(name, doc)| {
            let example = doc.sql_example?;
            let mut sql = String::new();
            let mut inside = false;
            for line in example.lines() {
                if let Some(rest) = line.strip_prefix("> ") {
                    inside = true;
                    sql.push_str(rest);
                } else if inside
                    && !line.starts_with("```")
                    && !line.starts_with('+')
                    && !line.starts_with('|')
                {
                    sql.push('\n');
                    sql.push_str(line);
                }
                if inside && sql.trim_end().ends_with(';') {
                    break;
                }
            }
            (!sql.is_empty()).then(|| (name, sql.trim_end().trim_end_matches(';').to_string()))
        })
        .collect()
}
