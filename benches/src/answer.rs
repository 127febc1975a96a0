//! Query answers as text rows, and the cross-engine comparison: numbers equal
//! to a relative 1e-9 (float sums differ in their last bits between engines),
//! timestamps equal whatever their spelling (`T` or space, trailing zero
//! fractions, midnight timestamps against dates), everything else exactly.

use arrow::array::RecordBatch;
use arrow::util::display::{ArrayFormatter, FormatOptions};

/// An answer: rows of values as text, `None` for NULL.
pub(crate) type Rows = Vec<Vec<Option<String>>>;

/// The rows of `batches` as text.
pub(crate) fn rows_of(batches: &[RecordBatch]) -> Result<Rows, String> {
    let options = FormatOptions::default();
    let mut rows = Vec::new();
    for batch in batches {
        let formatters = batch
            .columns()
            .iter()
            .map(|c| ArrayFormatter::try_new(c.as_ref(), &options).map_err(|e| e.to_string()))
            .collect::<Result<Vec<_>, _>>()?;
        for i in 0..batch.num_rows() {
            rows.push(
                batch
                    .columns()
                    .iter()
                    .zip(&formatters)
                    .map(|(c, f)| (!c.is_null(i)).then(|| f.value(i).to_string()))
                    .collect(),
            );
        }
    }
    Ok(rows)
}

/// A value in a form that compares equal across engines.
#[derive(Debug, PartialEq)]
enum Value {
    Null,
    Number(f64),
    Text(String),
}

fn value(v: &Option<String>) -> Value {
    let Some(text) = v else {
        return Value::Null;
    };
    if let Ok(n) = text.parse::<f64>() {
        return Value::Number(n);
    }
    Value::Text(timestamp(text).unwrap_or_else(|| text.clone()))
}

/// `2026-11-09T00:00:00.120000` → `2026-11-09 00:00:00.12`, midnight → the date.
fn timestamp(text: &str) -> Option<String> {
    let bytes = text.as_bytes();
    let is_date = bytes.len() >= 10 && bytes[4] == b'-' && bytes[7] == b'-';
    if !is_date || bytes.len() < 19 || !(bytes[10] == b'T' || bytes[10] == b' ') {
        return None;
    }
    let (date, time) = (&text[..10], &text[11..]);
    let time = match time.split_once('.') {
        Some((whole, fraction)) => match fraction.trim_end_matches('0') {
            "" => whole.to_string(),
            f => format!("{whole}.{f}"),
        },
        None => time.to_string(),
    };
    Some(if time == "00:00:00" {
        date.to_string()
    } else {
        format!("{date} {time}")
    })
}

fn same(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => {
            x == y || (x - y).abs() <= 1e-9 * x.abs().max(y.abs())
        }
        _ => a == b,
    }
}

/// `Ok` when `answer` equals `reference` row for row; otherwise the first difference.
pub(crate) fn compare(reference: &Rows, answer: &Rows) -> Result<(), String> {
    if reference.len() != answer.len() {
        return Err(format!(
            "{} rows instead of {}",
            answer.len(),
            reference.len()
        ));
    }
    for (i, (r, a)) in reference.iter().zip(answer).enumerate() {
        let differs =
            r.len() != a.len() || r.iter().zip(a).any(|(x, y)| !same(&value(x), &value(y)));
        if differs {
            return Err(format!(
                "row {} is {} instead of {}",
                i + 1,
                show(a),
                show(r)
            ));
        }
    }
    Ok(())
}

fn show(row: &[Option<String>]) -> String {
    let values: Vec<_> = row.iter().map(|v| v.as_deref().unwrap_or("NULL")).collect();
    format!("({})", values.join(", "))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rows(values: &[&[Option<&str>]]) -> Rows {
        values
            .iter()
            .map(|r| r.iter().map(|v| v.map(str::to_string)).collect())
            .collect()
    }

    #[test]
    fn spellings_of_one_answer_agree() {
        let audience = rows(&[&[
            Some("2025-12-01T00:00:00"),
            Some("108711.48"),
            Some("Can't Lose Them"),
            None,
        ]]);
        let peer = rows(&[&[
            Some("2025-12-01"),
            Some("108711.48000000001"),
            Some("Can't Lose Them"),
            None,
        ]]);
        assert_eq!(compare(&audience, &peer), Ok(()));
        let a = rows(&[&[Some("2026-10-09T07:08:12.034200")]]);
        let b = rows(&[&[Some("2026-10-09 07:08:12.0342")]]);
        assert_eq!(compare(&a, &b), Ok(()));
    }

    #[test]
    fn differences_are_named() {
        let a = rows(&[&[Some("1"), Some("8461")], &[Some("2"), Some("24120")]]);
        let b = rows(&[&[Some("1"), Some("8461")], &[Some("2"), Some("24121")]]);
        assert_eq!(
            compare(&a, &b),
            Err("row 2 is (2, 24121) instead of (2, 24120)".into())
        );
        assert_eq!(
            compare(&a, &b[..1].to_vec()),
            Err("1 rows instead of 2".into())
        );
        let null = rows(&[&[Some("1"), None], &[Some("2"), Some("24120")]]);
        assert!(compare(&a, &null).is_err());
        let text = rows(&[&[Some("At Risk")]]);
        assert!(compare(&text, &rows(&[&[Some("At risk")]])).is_err());
    }
}
