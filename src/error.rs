//! Library error type and the process exit codes the binary maps it to.
//!
//! Every variant says what was wrong and, where it came from a file, which file and line, so
//! that `main` can print it as is.

use std::path::{Path, PathBuf};

/// Exit codes, documented in docs/exit-codes.md. Scripts depend on these: never renumber.
pub mod exit_code {
    /// Everything worked.
    pub const OK: i32 = 0;
    /// A runtime failure: the API, the network, the disk.
    pub const RUNTIME: i32 = 1;
    /// Bad input or usage: arguments, snapshot, mapping file, output path.
    pub const BAD_INPUT: i32 = 2;
    /// `--fail-on` matched: the plan holds findings of that severity.
    pub const FINDINGS: i32 = 3;
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Input the user gave is wrong: the message names the file/line/field and what is valid.
    #[error("{0}")]
    Input(String),
    /// A file or line of input, with the reason.
    #[error("{}:{line}: {message}", path.display())]
    AtLine {
        path: PathBuf,
        line: usize,
        message: String,
    },
    /// Several problems found in one input file, reported together so the user can fix all at once.
    #[error("{}", .0.join("\n"))]
    Many(Vec<String>),
    #[error("cannot read {}: {source}", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot write {}: {source}", path.display())]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The Twilio API or the network failed after retries: the HTTP status and Twilio's
    /// error code stay readable (`ApiError::status`, `ApiError::code`).
    #[error(transparent)]
    Api(#[from] crate::client::ApiError),
    /// A failure at run time with its cause (polars, a task, the async runtime...).
    #[error("{what}: {source}")]
    Failed {
        what: String,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// Anything else at run time.
    #[error("{0}")]
    Runtime(String),
}

impl Error {
    pub fn at_line(path: &Path, line: usize, message: impl Into<String>) -> Self {
        Error::AtLine {
            path: path.to_path_buf(),
            line,
            message: message.into(),
        }
    }

    pub fn read(path: &Path, source: std::io::Error) -> Self {
        Error::Read {
            path: path.to_path_buf(),
            source,
        }
    }

    pub fn write(path: &Path, source: std::io::Error) -> Self {
        Error::Write {
            path: path.to_path_buf(),
            source,
        }
    }

    /// A run-time failure that keeps its cause: `what` says what was being done.
    pub fn failed(
        what: impl Into<String>,
        source: impl Into<Box<dyn std::error::Error + Send + Sync>>,
    ) -> Self {
        Error::Failed {
            what: what.into(),
            source: source.into(),
        }
    }

    /// True when standard output was closed by its reader (`| head -1`): not a failure.
    pub fn is_broken_pipe(&self) -> bool {
        use std::error::Error as _;
        let mut cause: Option<&(dyn std::error::Error + 'static)> = self.source();
        while let Some(e) = cause {
            if e.downcast_ref::<std::io::Error>()
                .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
            {
                return true;
            }
            cause = e.source();
        }
        false
    }

    /// The exit code `main` uses for this error.
    pub fn exit_code(&self) -> i32 {
        match self {
            Error::Input(_) | Error::AtLine { .. } | Error::Many(_) | Error::Read { .. } => {
                exit_code::BAD_INPUT
            }
            Error::Write { .. } | Error::Api(_) | Error::Failed { .. } | Error::Runtime(_) => {
                exit_code::RUNTIME
            }
        }
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
