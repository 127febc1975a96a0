//! Engine errors, classified by root cause so each front end (CLI exit codes,
//! Flight status codes) can tell the user's mistakes from the engine's bugs.

use datafusion::error::DataFusionError;

use crate::spill::is_spill_limit_error;

/// What kind of failure an error is, by root cause.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// Bad SQL, arguments, configuration or input files: the user can fix it.
    InvalidInput,
    /// A table, file or path that does not exist.
    NotFound,
    /// A query needed more than a configured limit (memory, spill disk).
    ResourcesExhausted,
    /// A broken invariant inside the engine: a bug.
    Internal,
}

/// An error from the engine.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    /// The configuration is unusable.
    #[error("configuration error: {0}")]
    Config(String),
    /// A table location or file does not exist.
    #[error("{0}")]
    NotFound(String),
    /// A request the engine does not support or cannot accept.
    #[error("{0}")]
    Invalid(String),
    /// A bug.
    #[error("internal error: {0}")]
    Internal(String),
    /// An error from DataFusion, classified by [`EngineError::kind`].
    #[error("{}", describe(.0))]
    DataFusion(#[from] DataFusionError),
}

impl EngineError {
    /// The root-cause class of this error.
    pub fn kind(&self) -> ErrorKind {
        match self {
            EngineError::Config(_) | EngineError::Invalid(_) => ErrorKind::InvalidInput,
            EngineError::NotFound(_) => ErrorKind::NotFound,
            EngineError::Internal(_) => ErrorKind::Internal,
            EngineError::DataFusion(e) => classify(e),
        }
    }
}

/// The pool's message of a Ballista task refused for memory: the task's
/// error reaches the client as text, DataFusion's error printed with Debug
/// (`… DataFusionError(ResourcesExhausted("…")) …`).
fn executor_memory_message(message: &str) -> Option<String> {
    let (_, inner) = message.split_once("ResourcesExhausted(\"")?;
    let inner = inner.rsplit_once("\")")?.0;
    Some(inner.replace("\\n", "\n").replace("\\\"", "\""))
}

/// Classifies a DataFusion error by its innermost cause.
pub fn classify(e: &DataFusionError) -> ErrorKind {
    let root = e.find_root().to_string();
    if is_spill_limit_error(&root) || executor_memory_message(&root).is_some() {
        return ErrorKind::ResourcesExhausted;
    }
    if unsupported_query(&root).is_some() {
        return ErrorKind::InvalidInput;
    }
    match e.find_root() {
        DataFusionError::ResourcesExhausted(_) => ErrorKind::ResourcesExhausted,
        DataFusionError::Internal(_) => ErrorKind::Internal,
        DataFusionError::IoError(io) if io.kind() == std::io::ErrorKind::NotFound => {
            ErrorKind::NotFound
        }
        DataFusionError::ObjectStore(os)
            if matches!(**os, object_store::Error::NotFound { .. }) =>
        {
            ErrorKind::NotFound
        }
        DataFusionError::Plan(msg) if msg.contains("not found") => ErrorKind::NotFound,
        // Parser, planner, schema, argument, unsupported-feature and file-decoding
        // errors all come from what the user asked or pointed at.
        _ => ErrorKind::InvalidInput,
    }
}

/// DataFusion's message, with a hint where the raw one is unclear, capped at ~2,000 characters.
fn describe(e: &DataFusionError) -> String {
    let mut msg = match e.find_root() {
        // DataFusion prints parser errors with Debug; the parser's own Display is clearer
        DataFusionError::SQL(parser, _) => format!("SQL error: {parser}"),
        // an argument error raised inside an optimizer rule reads best without the rule's name
        root @ DataFusionError::Plan(_) => root.to_string(),
        // the root names the operator; DataFusion's context around it names
        // DataFusion's settings, which Audience users do not set (the hint
        // below names ours)
        root @ DataFusionError::ResourcesExhausted(_) => root.to_string(),
        // so does any other error an optimizer rule met (constant folding that overflows)
        root if matches!(e, DataFusionError::Context(context, _) if context.starts_with("Optimizer rule")) => {
            root.to_string()
        }
        _ => e.to_string(),
    };
    let mut hint = "";
    if let Some(mismatch) = signature_mismatch(&msg) {
        msg = mismatch;
    } else if let Some(unsupported) = unsupported_query(&e.find_root().to_string()) {
        msg = unsupported.to_string();
    } else if is_spill_limit_error(&msg) {
        // DataFusion's message names its own setting, which Audience users do not set
        let limit = msg
            .split("allowable limit of ")
            .nth(1)
            .and_then(|rest| rest.split(". ").next())
            .unwrap_or("its limit");
        msg = format!(
            "Resources exhausted: the spill files of the running queries would take more than \
             engine.spill_limit ({limit})\nhint: raise the limit (AUDIENCE_SPILL_LIMIT) or the \
             memory limit, or narrow the query"
        );
    } else if let Some(query_hint) = crate::query_memory::refusal_hint(&msg) {
        hint = query_hint;
    } else if let DataFusionError::ResourcesExhausted(_) = e.find_root() {
        hint = "\nhint: the query needs more memory than engine.memory_limit allows; raise the \
                limit (--memory-limit, AUDIENCE_MEMORY_LIMIT) or narrow the query";
    } else if let Some(refused) = executor_memory_message(&msg) {
        msg = format!("Resources exhausted on a cluster executor: {refused}");
        hint = "\nhint: the query needs more memory than the executors' engine.memory_limit \
                allows; raise it there (audience executor --memory-limit) or narrow the query";
    }
    // the hint survives the cap (the pool's message lists its consumers at length)
    let cap = 2000 - hint.len();
    if msg.len() > cap {
        let cut = (0..=cap)
            .rev()
            .find(|&i| msg.is_char_boundary(i))
            .unwrap_or(0);
        msg.truncate(cut);
        msg.push('…');
    }
    msg.push_str(hint);
    msg
}

/// DataFusion's error for a built-in function called with arguments none of
/// its signatures takes reads "Internal error" and repeats each signature's
/// reason: said as the user's mistake, each reason once.
fn signature_mismatch(msg: &str) -> Option<String> {
    let (_, rest) = msg.split_once("Internal error: Function '")?;
    let (name, reasons) = rest.split_once("' failed to match any signature, errors: ")?;
    let function = format!("Function '{name}' ");
    let mut distinct: Vec<&str> = Vec::new();
    for reason in reasons.split(",Error during planning: ") {
        let reason = reason.trim_start_matches("Error during planning: ");
        let reason = reason.strip_prefix(&function).unwrap_or(reason);
        let reason = reason.trim_end_matches('.');
        if !distinct.contains(&reason) {
            distinct.push(reason);
        }
    }
    Some(format!(
        "Error during planning: function '{name}' does not take these arguments: it {}",
        distinct.join("; it ")
    ))
}

/// What the user is told for a query DataFusion 55 cannot run and reports
/// as its own internal error (found by the AST fuzzer, reliability B2): the
/// query is the user's to change.
fn unsupported_query(root: &str) -> Option<&'static str> {
    const UNSUPPORTED: [(&str, &str); 3] = [
        (
            "Cannot run range queries on datatype: Interval",
            "Error during planning: a window ordered by an INTERVAL cannot have a RANGE frame \
             (the default with ORDER BY): order it by a number, date or timestamp, or give \
             ROWS BETWEEN …",
        ),
        (
            "unnest on struct can only be applied at the root level",
            "Error during planning: unnest of a struct (as in unnest(unnest(list of structs))) \
             must be the whole SELECT item: unnest the list in a subquery, then the struct",
        ),
        (
            "DISTINCT aggregate should have exactly one argument",
            "Error during planning: an aggregate with DISTINCT takes one argument: for distinct \
             pairs, count(DISTINCT struct(a, b))",
        ),
    ];
    let internal = root.strip_prefix("Internal error: ")?;
    UNSUPPORTED
        .iter()
        .find(|(cause, _)| internal.contains(cause))
        .map(|(_, said)| *said)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_executors_memory_refusal_is_resources_exhausted_with_its_hint() {
        // as a Ballista client receives it
        let e = DataFusionError::Execution(
            "Job 038HBYAJHG000 failed: Job failed due to stage 1 failed: Task failed due to \
             runtime execution error: DataFusionError(Shared(External(DataFusionError(\
             ResourcesExhausted(\"Additional allocation failed for AggregateStream[0] with top \
             memory consumers (across reservations) as:\\n  AggregateStream[0]#0(can spill: \
             false) consumed 491.9 KB, peak 491.9 KB.\\nError: Failed to allocate additional \
             248.0 KB\")))))"
                .into(),
        );
        assert_eq!(classify(&e), ErrorKind::ResourcesExhausted);
        let msg = describe(&e);
        assert!(
            msg.starts_with(
                "Resources exhausted on a cluster executor: Additional allocation failed for \
                 AggregateStream[0] with top memory consumers (across reservations) as:\n  \
                 AggregateStream[0]#0"
            ),
            "{msg}"
        );
        assert!(
            msg.ends_with("or narrow the query")
                && msg.contains("audience executor --memory-limit"),
            "{msg}"
        );
        assert!(!msg.contains("Shared(") && !msg.contains("\\n"), "{msg}");
        // any other execution error stays as it is
        let other = DataFusionError::Execution("Job failed: stage 1: file not found".into());
        assert_eq!(classify(&other), ErrorKind::InvalidInput);
    }

    #[test]
    fn a_query_datafusion_calls_its_own_bug_is_the_users_to_change() {
        // as DataFusion 55 words `… OVER (ORDER BY INTERVAL '1 day')`
        let e = DataFusionError::Context(
            "type_coercion".into(),
            Box::new(DataFusionError::Internal(
                "Cannot run range queries on datatype: Interval(MonthDayNano)".into(),
            )),
        );
        assert_eq!(classify(&e), ErrorKind::InvalidInput);
        let msg = describe(&e);
        assert!(
            msg.starts_with("Error during planning: a window ordered by an INTERVAL")
                && !msg.contains("type_coercion")
                && !msg.contains("bug"),
            "{msg}"
        );
        // any other internal error stays a bug
        let other = DataFusionError::Internal("Assertion failed: something else".into());
        assert_eq!(classify(&other), ErrorKind::Internal);
    }

    #[test]
    fn a_built_in_called_with_wrong_arguments_is_the_users_mistake_said_once() {
        // as DataFusion 55 words `round(DATE '2026-11-05', 4)`
        let e = DataFusionError::Plan(
            "Internal error: Function 'round' failed to match any signature, errors: Error \
             during planning: Function 'round' requires Decimal, but received Date (DataType: \
             Date32).,Error during planning: Function 'round' expects 1 arguments but received \
             2,Error during planning: Function 'round' requires Integer, but received Date \
             (DataType: Date32).,Error during planning: Function 'round' expects 1 arguments \
             but received 2."
                .into(),
        );
        assert_eq!(classify(&e), ErrorKind::InvalidInput);
        assert_eq!(
            describe(&e),
            "Error during planning: function 'round' does not take these arguments: it requires \
             Decimal, but received Date (DataType: Date32); it expects 1 arguments but received \
             2; it requires Integer, but received Date (DataType: Date32)"
        );
    }

    #[test]
    fn a_long_resources_exhausted_message_keeps_its_hint() {
        let consumers = "GroupedHashAggregateStream[0] (window_funnel(…)) ".repeat(100);
        let e = DataFusionError::ResourcesExhausted(format!(
            "Additional allocation failed: {consumers}"
        ));
        let msg = describe(&e);
        assert!(
            msg.chars().count() <= 2001,
            "{} characters",
            msg.chars().count()
        );
        assert!(
            msg.starts_with("Resources exhausted: Additional allocation failed"),
            "{msg}"
        );
        assert!(
            msg.contains("…\nhint: ") && msg.contains("engine.memory_limit"),
            "{msg}"
        );
    }
}
