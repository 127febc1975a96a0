//! Errors to gRPC statuses by root cause (CONVENTIONS §7): the user's mistakes
//! are `INVALID_ARGUMENT`, missing tables `NOT_FOUND`, limits
//! `RESOURCE_EXHAUSTED`, and only bugs `INTERNAL`; messages use `Display`.

use audience_engine::{EngineError, ErrorKind};
use datafusion::error::DataFusionError;
use tonic::Status;

/// The status for an engine error.
pub(crate) fn engine_status(e: EngineError) -> Status {
    let message = e.to_string();
    match e.kind() {
        ErrorKind::InvalidInput => Status::invalid_argument(message),
        ErrorKind::NotFound => Status::not_found(message),
        ErrorKind::ResourcesExhausted => Status::resource_exhausted(message),
        ErrorKind::Internal => Status::internal(message),
    }
}

/// The status for an error raised while a query runs.
pub(crate) fn datafusion_status(e: DataFusionError) -> Status {
    engine_status(EngineError::from(e))
}

/// The status for an Arrow or Flight error at the boundary (encoding, casting): a bug.
pub(crate) fn arrow_status(e: impl std::fmt::Display) -> Status {
    Status::internal(format!("cannot encode the result for Flight: {e}"))
}

/// A request the protocol does not allow here.
pub(crate) fn bad_request(message: impl Into<String>) -> Status {
    Status::invalid_argument(message.into())
}

#[cfg(test)]
mod tests {
    use super::*;
    use tonic::Code;

    #[test]
    fn codes_follow_the_root_cause() {
        let plan = DataFusionError::Plan("table 'nope' not found".into());
        assert_eq!(datafusion_status(plan).code(), Code::NotFound);
        let sql = DataFusionError::Plan("Invalid function 'foo'".into());
        assert_eq!(datafusion_status(sql).code(), Code::InvalidArgument);
        let limit = DataFusionError::ResourcesExhausted("pool".into());
        let s = datafusion_status(DataFusionError::Context("agg".into(), Box::new(limit)));
        assert_eq!(s.code(), Code::ResourceExhausted);
        assert!(s.message().contains("memory_limit"), "{}", s.message());
        let bug = DataFusionError::Internal("oops".into());
        assert_eq!(datafusion_status(bug).code(), Code::Internal);
    }
}
