//! What a subcommand can fail with, and the code printed for it.

use std::fmt;
use std::io;
use std::path::Path;

/// A failed subcommand.
#[derive(Debug)]
pub enum CliError {
    /// The engine refused or failed; `context` (a path, usually) is printed before its message.
    Engine {
        error: strata_engine::Error,
        context: Option<String>,
    },
    /// Reading input or writing output failed outside the engine.
    Io { context: String, error: io::Error },
    /// Stdout was closed by its reader: stop quietly.
    BrokenPipe,
    /// A message of the CLI's own under a given code (an engine code, usually, reworded for the
    /// situation).
    Message { code: &'static str, message: String },
    /// An error followed by a note on what was done before it (printed after the error line).
    WithNote(Box<CliError>, String),
}

impl CliError {
    /// The code shown as `error[CODE]`: the engine's for engine errors, `IO` otherwise.
    pub fn code(&self) -> &'static str {
        match self {
            CliError::Engine { error, .. } => error.code(),
            CliError::Io { .. } | CliError::BrokenPipe => "IO",
            CliError::WithNote(error, _) => error.code(),
            CliError::Message { code, .. } => code,
        }
    }

    /// An engine error about the store or file at `path`.
    pub fn at(path: &Path, error: strata_engine::Error) -> Self {
        CliError::Engine {
            error,
            context: Some(path.display().to_string()),
        }
    }

    /// An I/O error while doing `context` (a broken pipe becomes [`CliError::BrokenPipe`]).
    pub fn io(context: impl Into<String>, error: io::Error) -> Self {
        if error.kind() == io::ErrorKind::BrokenPipe {
            CliError::BrokenPipe
        } else {
            CliError::Io {
                context: context.into(),
                error,
            }
        }
    }
}

impl From<strata_engine::Error> for CliError {
    fn from(error: strata_engine::Error) -> Self {
        CliError::Engine {
            error,
            context: None,
        }
    }
}

impl From<strata_engine::storage::StorageError> for CliError {
    fn from(error: strata_engine::storage::StorageError) -> Self {
        strata_engine::Error::from(error).into()
    }
}

impl fmt::Display for CliError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CliError::Engine {
                error,
                context: Some(context),
            } => write!(f, "{context}: {error}"),
            CliError::Engine {
                error,
                context: None,
            } => write!(f, "{error}"),
            CliError::Io { context, error } => write!(f, "{context}: {error}"),
            CliError::BrokenPipe => write!(f, "output closed"),
            CliError::WithNote(error, note) => write!(f, "{error}\nnote: {note}"),
            CliError::Message { message, .. } => write!(f, "{message}"),
        }
    }
}
