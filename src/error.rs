//! CLI errors and exit codes: 0 success, 2 a user error, 1 an internal error.

use std::process::ExitCode;

use audience_engine::{EngineError, ErrorKind};

/// A failed command: a one-line (or short) message and whose fault it is.
#[derive(Debug)]
pub(crate) struct CliError {
    internal: bool,
    message: String,
}

impl CliError {
    /// The user's mistake: bad SQL, arguments, files or paths.
    pub(crate) fn user(message: impl Into<String>) -> Self {
        CliError {
            internal: false,
            message: message.into(),
        }
    }

    /// A bug or an environment failure the user did not cause.
    pub(crate) fn internal(message: impl Into<String>) -> Self {
        CliError {
            internal: true,
            message: message.into(),
        }
    }

    /// Prints the message and returns the exit code.
    pub(crate) fn report(self) -> ExitCode {
        if self.internal {
            eprintln!("internal error: {}", self.message);
            ExitCode::from(1)
        } else {
            eprintln!("error: {}", self.message);
            ExitCode::from(2)
        }
    }
}

impl std::fmt::Display for CliError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl From<EngineError> for CliError {
    fn from(e: EngineError) -> Self {
        match e.kind() {
            ErrorKind::Internal => CliError::internal(e.to_string()),
            _ => CliError::user(e.to_string()),
        }
    }
}

impl From<datafusion::error::DataFusionError> for CliError {
    fn from(e: datafusion::error::DataFusionError) -> Self {
        EngineError::from(e).into()
    }
}

/// Replaces the panic trace with a one-line internal error (a trace only with RUST_BACKTRACE).
pub(crate) fn install_panic_hook() {
    if std::env::var_os("RUST_BACKTRACE").is_some() {
        return;
    }
    std::panic::set_hook(Box::new(|info| {
        let location = info
            .location()
            .map(|l| format!(" at {}:{}", l.file(), l.line()))
            .unwrap_or_default();
        let payload = info
            .payload()
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| info.payload().downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "unknown panic".into());
        eprintln!(
            "internal error: {payload}{location} (this is a bug; please report it with the command that caused it)"
        );
    }));
}
