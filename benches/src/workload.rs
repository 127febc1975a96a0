//! The benchmark workload: Q1–Q12 and the scan floors F1–F3. Each query is
//! written in every engine's best idiom in `benches/queries/<id>/<dialect>.sql`
//! (`plain.sql` where one text suits several), with `{events}`-style
//! placeholders for the engine's table references.

/// One query of the workload.
#[derive(Debug)]
pub(crate) struct Query {
    /// Folder name under `benches/queries`, e.g. `q1_funnel`.
    pub(crate) id: &'static str,
    /// What it answers, for the report.
    pub(crate) title: &'static str,
    /// The scan floor query whose time bounds this one's from below.
    pub(crate) floor: Option<&'static str>,
    /// (dialect, SQL text) pairs.
    files: &'static [(&'static str, &'static str)],
}

macro_rules! query {
    ($id:literal, $title:literal, $floor:expr, [$($dialect:literal),*]) => {
        Query {
            id: $id,
            title: $title,
            floor: $floor,
            files: &[$(($dialect, include_str!(concat!("../queries/", $id, "/", $dialect, ".sql")))),*],
        }
    };
}

/// Every query, in report order.
pub(crate) const WORKLOAD: &[Query] = &[
    query!(
        "q1_funnel",
        "4-step funnel view→cart→order→pay, 7 days",
        Some("f1_scan_funnel"),
        ["audience", "clickhouse", "duckdb", "datafusion"]
    ),
    query!(
        "q2_retention",
        "retention by first-pay week, weeks 1..4",
        None,
        ["audience", "clickhouse", "duckdb", "datafusion"]
    ),
    query!(
        "q3_rfm",
        "RFM scores, segment sizes",
        Some("f2_scan_rfm"),
        ["audience", "clickhouse", "duckdb", "datafusion"]
    ),
    query!(
        "q4_lifecycle",
        "lifecycle stage counts",
        None,
        ["audience", "clickhouse", "duckdb", "datafusion"]
    ),
    query!(
        "q5_segment",
        "gold/black in 10 cities, cart and no pay in 30 days",
        None,
        ["plain", "clickhouse", "duckdb"]
    ),
    query!(
        "q6_daily_gmv",
        "daily GMV and buyers by channel, 90 days",
        Some("f3_scan_gmv"),
        ["audience", "plain", "clickhouse"]
    ),
    query!(
        "q7_top_categories",
        "top 100 categories by buyers, 11.11 week",
        None,
        ["audience", "plain", "clickhouse"]
    ),
    query!(
        "q8_member_profile",
        "member profile and last 50 events",
        None,
        ["plain", "clickhouse"]
    ),
    query!(
        "q9_sequence_count",
        "view→pay within 1 h, count histogram",
        None,
        ["audience", "clickhouse", "duckdb", "datafusion"]
    ),
    query!(
        "q10_top_paths",
        "top 20 paths (4 steps) from the first product view",
        None,
        ["audience", "clickhouse", "duckdb", "datafusion"]
    ),
    query!(
        "q11_sessions",
        "sessions (30-minute gap) per day: sessions, members, events",
        None,
        ["audience", "clickhouse", "duckdb", "datafusion"]
    ),
    query!(
        "q12_attribution",
        "linear channel attribution of payments, 30-day lookback",
        None,
        ["audience", "clickhouse", "duckdb", "datafusion"]
    ),
    query!(
        "q13_time_to_convert",
        "4-step funnel time to convert, members per hour",
        None,
        ["audience", "clickhouse", "duckdb", "datafusion"]
    ),
    query!(
        "t1_tag_segment",
        "segment of 5 tag conditions: bitmap index vs SQL",
        None,
        ["audience", "plain"]
    ),
    query!(
        "f1_scan_funnel",
        "scan floor of Q1: events member_id, ts, event",
        None,
        ["plain", "clickhouse"]
    ),
    query!(
        "f2_scan_rfm",
        "scan floor of Q3: orders member_id, ts, amount",
        None,
        ["plain", "clickhouse"]
    ),
    query!(
        "f3_scan_gmv",
        "scan floor of Q6: orders ts, channel, amount, member_id",
        None,
        ["plain", "clickhouse"]
    ),
];

/// The tables the queries' placeholders name.
pub(crate) const TABLES: &[&str] = &["events", "orders", "members", "member_tags"];

impl Query {
    /// The query in `dialect` with each `{table}` replaced by `table_ref(table)`.
    pub(crate) fn sql(&self, dialect: &str, table_ref: impl Fn(&str) -> String) -> String {
        let text = self
            .files
            .iter()
            .find(|(d, _)| *d == dialect)
            .or_else(|| self.files.iter().find(|(d, _)| *d == "plain"))
            .map(|(_, text)| *text)
            .unwrap_or_default();
        TABLES.iter().fold(text.to_string(), |sql, table| {
            sql.replace(&format!("{{{table}}}"), &table_ref(table))
        })
    }
}

/// The queries `selection` names (ids or their prefixes such as `q1` or `f`);
/// all of them when it is empty.
pub(crate) fn select(selection: &[String]) -> Result<Vec<&'static Query>, String> {
    if selection.is_empty() {
        return Ok(WORKLOAD.iter().collect());
    }
    let mut chosen: Vec<&'static Query> = Vec::new();
    for name in selection {
        let matches: Vec<_> = WORKLOAD
            .iter()
            .filter(|q| {
                q.id == name
                    || q.id.starts_with(&format!("{name}_"))
                    || (name.len() == 1 && q.id.starts_with(name.as_str()))
            })
            .collect();
        if matches.is_empty() {
            let ids: Vec<_> = WORKLOAD.iter().map(|q| q.id).collect();
            return Err(format!(
                "unknown query '{name}'; the workload has {}",
                ids.join(", ")
            ));
        }
        for q in matches {
            if !chosen.iter().any(|c| c.id == q.id) {
                chosen.push(q);
            }
        }
    }
    Ok(chosen)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_query_has_a_text_for_every_dialect() {
        for q in WORKLOAD {
            for dialect in ["audience", "clickhouse", "duckdb", "datafusion"] {
                let sql = q.sql(dialect, |t| t.to_string());
                assert!(sql.contains("SELECT"), "{} has no {dialect} text", q.id);
                assert!(
                    !sql.contains('{'),
                    "{} ({dialect}) keeps a placeholder",
                    q.id
                );
            }
        }
    }

    #[test]
    fn selection_by_id_or_prefix() {
        let ids = |s: &[&str]| -> Vec<&str> {
            select(&s.iter().map(|x| x.to_string()).collect::<Vec<_>>())
                .unwrap()
                .iter()
                .map(|q| q.id)
                .collect()
        };
        assert_eq!(
            ids(&["q1", "q8_member_profile", "q1"]),
            ["q1_funnel", "q8_member_profile"]
        );
        assert_eq!(ids(&["t"]), ["t1_tag_segment"]);
        assert_eq!(
            ids(&["f"]),
            ["f1_scan_funnel", "f2_scan_rfm", "f3_scan_gmv"]
        );
        let err = select(&["q99".to_string()]).unwrap_err();
        assert!(
            err.contains("unknown query 'q99'") && err.contains("q9_sequence_count"),
            "{err}"
        );
    }
}
