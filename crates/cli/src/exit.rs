//! Error reporting and exit status: 2 for usage errors (bad address, bad size, bad
//! option), 1 for target errors (missing file, corrupt dump, unreadable memory).

use std::fmt;

/// An error of the CLI with its exit class and an optional hint.
#[derive(Debug)]
pub enum CliError {
    /// The command line is wrong (exit 2).
    Usage {
        /// What is wrong.
        message: String,
        /// How to fix it.
        hint: Option<String>,
    },
    /// The target could not be opened or read (exit 1).
    Target {
        /// What went wrong, with its causes.
        error: anyhow::Error,
        /// How to fix it.
        hint: Option<String>,
    },
}

impl CliError {
    /// A usage error.
    pub fn usage(message: impl Into<String>, hint: Option<&str>) -> Self {
        CliError::Usage {
            message: message.into(),
            hint: hint.map(str::to_string),
        }
    }
    /// A target error.
    pub fn target(error: impl Into<anyhow::Error>) -> Self {
        CliError::Target {
            error: error.into(),
            hint: None,
        }
    }
    /// A target error with a hint.
    pub fn target_hint(error: impl Into<anyhow::Error>, hint: &str) -> Self {
        CliError::Target {
            error: error.into(),
            hint: Some(hint.to_string()),
        }
    }
}

impl fmt::Display for CliError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CliError::Usage { message, .. } => f.write_str(message),
            CliError::Target { error, .. } => {
                // One line: the error and its causes, joined.
                write!(f, "{error}")?;
                let mut src = error.source();
                while let Some(s) = src {
                    let text = s.to_string();
                    if !error.to_string().contains(&text) {
                        write!(f, ": {text}")?;
                    }
                    src = s.source();
                }
                Ok(())
            }
        }
    }
}

impl<E: Into<anyhow::Error>> From<E> for CliError {
    fn from(e: E) -> Self {
        CliError::target(e)
    }
}

/// Prints the error (and hint) to stderr and returns the exit status.
pub fn report(e: &CliError) -> i32 {
    eprintln!("{} {e}", crate::style::error_prefix());
    let (hint, code) = match e {
        CliError::Usage { hint, .. } => (hint, 2),
        CliError::Target { hint, .. } => (hint, 1),
    };
    if let Some(h) = hint {
        eprintln!("{} {h}", crate::style::hint_prefix());
    }
    code
}
