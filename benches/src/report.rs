//! The benchmark's report from its results file: a Markdown table with the
//! targets checked, an SVG chart (grouped bars per query, log scale), and the
//! side-by-side comparison of two results files.

use std::fmt::Write;

use crate::results::{QueryResult, Results};

/// Queries where Audience must beat the fastest peer by 1.5×.
const LEAD_QUERIES: &[&str] = &[
    "q1_funnel",
    "q2_retention",
    "q3_rfm",
    "q4_lifecycle",
    "q5_segment",
    "q9_sequence_count",
];
/// Queries of the second family, where Audience must beat the fastest peer
/// by 3× and stay within 1.5× of Q1's time (issue 20).
const SECOND_FAMILY: &[&str] = &[
    "q10_top_paths",
    "q11_sessions",
    "q12_attribution",
    "q13_time_to_convert",
];
/// Queries that must answer in under a second.
const SUBSECOND_QUERIES: &[&str] = &[
    "q1_funnel",
    "q2_retention",
    "q4_lifecycle",
    "q5_segment",
    "q8_member_profile",
];

fn median(result: &QueryResult, engine: &str) -> Option<f64> {
    Results::median(result, engine)
}

fn seconds(s: f64) -> String {
    if s < 0.1 {
        format!("{:.1} ms", s * 1e3)
    } else {
        format!("{s:.3} s")
    }
}

fn is_peer(engine: &str) -> bool {
    !engine.starts_with("audience")
}

/// The fastest peer's median over Audience's, for one query.
fn lead(result: &QueryResult, engines: &[String]) -> Option<f64> {
    let audience = median(result, "audience")?;
    let fastest = engines
        .iter()
        .filter(|e| is_peer(e))
        .filter_map(|e| median(result, e))
        .reduce(f64::min)?;
    Some(fastest / audience)
}

/// The Markdown report: times, peak memory, and the issue's targets.
pub(crate) fn markdown(results: &Results) -> String {
    let engines = &results.engines;
    let ctx = &results.context;
    let mut md = String::new();
    let _ = writeln!(md, "# Audience benchmark, scale {}\n", ctx.scale);
    let _ = writeln!(
        md,
        "{} · {} cores · {:.0} GiB · {} · runs {} (median; one warm-up first) · {}\n",
        ctx.date, ctx.cores, ctx.memory_gib, ctx.cpu, ctx.runs, ctx.data,
    );
    let versions: Vec<_> = ctx
        .versions
        .iter()
        .map(|(e, v)| format!("{e}: {v}"))
        .collect();
    let _ = writeln!(md, "Versions: {}\n", versions.join("; "));
    let _ = writeln!(
        md,
        "| query | {} | fastest peer ÷ Audience |",
        engines.join(" | ")
    );
    let _ = writeln!(md, "|---|{}---|", "---|".repeat(engines.len()));
    let list = &results.results;
    for r in list {
        let cells: Vec<_> = engines
            .iter()
            .map(|e| median(r, e).map(seconds).unwrap_or_else(|| "–".into()))
            .collect();
        let ratio = lead(r, engines)
            .map(|x| format!("{x:.2}×"))
            .unwrap_or_else(|| "–".into());
        let _ = writeln!(
            md,
            "| {} {} | {} | {ratio} |",
            r.query,
            r.title,
            cells.join(" | ")
        );
    }
    let _ = writeln!(
        md,
        "\nPeak memory of the engine's process during the query (MB):\n"
    );
    let _ = writeln!(md, "| query | {} |", engines.join(" | "));
    let _ = writeln!(md, "|---|{}", "---|".repeat(engines.len()));
    for r in list {
        let cells: Vec<_> = engines
            .iter()
            .map(|e| {
                r.engines
                    .get(e)
                    .and_then(|f| f.peak_memory_mb)
                    .map(|m| format!("{m:.0}"))
                    .unwrap_or_else(|| "–".into())
            })
            .collect();
        let _ = writeln!(md, "| {} | {} |", r.query, cells.join(" | "));
    }
    let targets = targets(list, engines);
    if !targets.is_empty() {
        let _ = writeln!(md, "\nTargets (set for scale m on 2 cores):\n");
        for line in targets {
            let _ = writeln!(md, "- {line}");
        }
    }
    md
}

/// Each target of the workload, met or missed, with its figures.
fn targets(list: &[QueryResult], engines: &[String]) -> Vec<String> {
    let find = |id: &str| list.iter().find(|r| r.query == id);
    let mark = |ok: bool| if ok { "met" } else { "**missed**" };
    let mut lines = Vec::new();
    for r in list.iter().filter(|r| r.query.starts_with('q')) {
        let id = r.query.as_str();
        let Some(ratio) = lead(r, engines) else {
            continue;
        };
        let need = if SECOND_FAMILY.contains(&id) {
            3.0
        } else if LEAD_QUERIES.contains(&id) {
            1.5
        } else {
            1.0
        };
        lines.push(format!(
            "{id}: fastest peer ÷ Audience {ratio:.2}× (target ≥ {need}×): {}",
            mark(ratio >= need)
        ));
        let floor = r.floor.as_deref().and_then(find);
        if let Some((floor, q, f)) =
            floor.and_then(|fl| Some((fl, median(r, "audience")?, median(fl, "audience")?)))
        {
            lines.push(format!(
                "{id}: {:.2}× Audience's scan floor {} (target ≤ 1.3×): {}",
                q / f,
                floor.query,
                mark(q / f <= 1.3)
            ));
        }
        if let Some(q) = median(r, "audience") {
            if SUBSECOND_QUERIES.contains(&id) {
                lines.push(format!(
                    "{id}: {} (target < 1 s): {}",
                    seconds(q),
                    mark(q < 1.0)
                ));
            }
            let q1 = find("q1_funnel").and_then(|q1| median(q1, "audience"));
            if let (true, Some(q1)) = (SECOND_FAMILY.contains(&id), q1) {
                lines.push(format!(
                    "{id}: {:.2}× Q1's time (target ≤ 1.5×): {}",
                    q / q1,
                    mark(q / q1 <= 1.5)
                ));
            }
            if id == "q8_member_profile" {
                lines.push(format!(
                    "{id}: {} (target < 20 ms): {}",
                    seconds(q),
                    mark(q < 0.02)
                ));
            }
        }
    }
    lines
}

const COLORS: &[&str] = &[
    "#1f6feb", "#79c0ff", "#d29922", "#2da44e", "#8250df", "#cf222e",
];

/// Grouped bars of each query's median per engine, on a log scale.
pub(crate) fn svg(results: &Results) -> String {
    let engines = &results.engines;
    let list = &results.results;
    let values: Vec<f64> = list
        .iter()
        .flat_map(|r| engines.iter().filter_map(|e| median(r, e)))
        .filter(|v| *v > 0.0)
        .collect();
    let lo = values
        .iter()
        .cloned()
        .fold(f64::INFINITY, f64::min)
        .max(1e-4)
        .log10()
        .floor();
    let hi = values
        .iter()
        .cloned()
        .fold(0.0, f64::max)
        .max(1e-3)
        .log10()
        .ceil()
        .max(lo + 1.0);
    let (left, top, height, bar) = (60.0, 40.0, 300.0, 12.0);
    let group = bar * engines.len() as f64 + 16.0;
    let width = left + group * list.len() as f64 + 20.0;
    let y = |v: f64| top + height * (1.0 - (v.log10() - lo) / (hi - lo));
    let mut s = String::new();
    let _ = writeln!(
        s,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{width:.0}" height="{:.0}" font-family="sans-serif" font-size="11">"#,
        top + height + 90.0
    );
    let _ = writeln!(s, r#"<rect width="100%" height="100%" fill="white"/>"#);
    let _ = writeln!(
        s,
        r#"<text x="{left}" y="20" font-size="14">Median query time, scale {} (log scale; lower is better)</text>"#,
        results.context.scale
    );
    let mut decade = lo;
    while decade <= hi {
        let v = 10f64.powf(decade);
        let _ = writeln!(
            s,
            r##"<line x1="{left}" x2="{:.0}" y1="{:.1}" y2="{:.1}" stroke="#ddd"/><text x="{:.0}" y="{:.1}" text-anchor="end">{}</text>"##,
            width - 20.0,
            y(v),
            y(v),
            left - 4.0,
            y(v) + 4.0,
            seconds(v)
        );
        decade += 1.0;
    }
    for (i, r) in list.iter().enumerate() {
        let x0 = left + group * i as f64 + 8.0;
        for (j, e) in engines.iter().enumerate() {
            if let Some(v) = median(r, e).filter(|v| *v > 0.0) {
                let (x, yv) = (x0 + bar * j as f64, y(v));
                let _ = writeln!(
                    s,
                    r#"<rect x="{x:.1}" y="{yv:.1}" width="{:.1}" height="{:.1}" fill="{}"><title>{e}: {}</title></rect>"#,
                    bar - 1.0,
                    top + height - yv,
                    COLORS[j % COLORS.len()],
                    seconds(v)
                );
            }
        }
        let label = r.query.split('_').next().unwrap_or("");
        let _ = writeln!(
            s,
            r#"<text x="{:.1}" y="{:.0}" text-anchor="middle">{label}</text>"#,
            x0 + bar * engines.len() as f64 / 2.0,
            top + height + 16.0
        );
    }
    for (j, e) in engines.iter().enumerate() {
        let x = left + 130.0 * j as f64;
        let _ = writeln!(
            s,
            r#"<rect x="{x}" y="{:.0}" width="10" height="10" fill="{}"/><text x="{:.0}" y="{:.0}">{e}</text>"#,
            top + height + 40.0,
            COLORS[j % COLORS.len()],
            x + 14.0,
            top + height + 49.0
        );
    }
    s.push_str("</svg>\n");
    s
}

/// Two results files side by side: each engine's median per query, old → new.
pub(crate) fn compare(old: &Results, new: &Results) -> String {
    let mut md = String::new();
    let _ = writeln!(
        md,
        "old: {} {} · new: {} {}\n",
        old.context.date,
        old.context.commit.as_deref().unwrap_or(""),
        new.context.date,
        new.context.commit.as_deref().unwrap_or(""),
    );
    let _ = writeln!(md, "| query | engine | old | new | new ÷ old |");
    let _ = writeln!(md, "|---|---|---|---|---|");
    for r in &new.results {
        let before = old.results.iter().find(|o| o.query == r.query);
        for e in &new.engines {
            let Some(n) = median(r, e) else { continue };
            let (old_cell, ratio) = match before.and_then(|b| median(b, e)) {
                Some(o) => (seconds(o), format!("{:.2}×", n / o)),
                None => ("–".into(), "–".into()),
            };
            let _ = writeln!(
                md,
                "| {} | {e} | {old_cell} | {} | {ratio} |",
                r.query,
                seconds(n)
            );
        }
    }
    md
}
