//! The crate's one error type and the exit code each kind maps to.
//!
//! Messages are short, lower-case and shaped "area: detail"; a configuration
//! error names the variable, the value it had and the form that is accepted.

use std::fmt;
use std::io;
use std::net::SocketAddr;

/// Everything that can stop a tier.
#[derive(Debug)]
#[non_exhaustive]
pub enum Error {
    /// A configuration variable is missing or malformed (exit code 2).
    Config {
        /// The environment variable, e.g. `SEND_INTERVAL`.
        name: &'static str,
        /// What it held, or `None` when it was not set.
        value: Option<String>,
        /// The accepted form, e.g. "a duration such as 250ms, 5s or 1m".
        expected: String,
    },
    /// A variable that is no longer read was set (exit code 2).
    Removed {
        /// The variable, e.g. `UPSTREAM_KEEPALIVE`.
        name: &'static str,
        /// What to set instead.
        replacement: &'static str,
    },
    /// The listening socket could not be opened (exit code 1).
    Bind {
        /// The address taken from `LISTEN_ADDR`.
        addr: SocketAddr,
        /// Why the bind failed.
        source: io::Error,
    },
    /// Another I/O failure while running, with what was being done (exit code 1).
    Io {
        /// What was being done, e.g. "installing the SIGTERM handler".
        context: String,
        /// The underlying failure.
        source: io::Error,
    },
    /// Requests were still being handled when `SHUTDOWN_TIMEOUT` ran out (exit code 1).
    ShutdownTimeout {
        /// How many were left.
        in_flight: usize,
    },
    /// A sender with `SEND_COUNT` finished and some messages were not answered 2xx (exit code 1).
    SendFailures {
        /// Messages that failed after every retry.
        failed: u64,
        /// Messages sent in all.
        total: u64,
    },
}

impl Error {
    /// A configuration error for `name`, which held `value`.
    pub fn config(name: &'static str, value: &str, expected: impl Into<String>) -> Error {
        Error::Config {
            name,
            value: Some(value.to_string()),
            expected: expected.into(),
        }
    }

    /// An I/O error with what was being done.
    pub fn io(context: impl Into<String>, source: io::Error) -> Error {
        Error::Io {
            context: context.into(),
            source,
        }
    }

    /// The process exit code: 2 for configuration errors, 1 for everything else.
    pub fn exit_code(&self) -> u8 {
        match self {
            Error::Config { .. } | Error::Removed { .. } => 2,
            _ => 1,
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Config {
                name,
                value: Some(value),
                expected,
            } => write!(
                f,
                "config: {name}={value:?} is invalid: expected {expected}"
            ),
            Error::Config {
                name,
                value: None,
                expected,
            } => write!(f, "config: {name} is not set: expected {expected}"),
            Error::Removed { name, replacement } => {
                write!(f, "config: {name} is no longer read: use {replacement}")
            }
            Error::Bind { addr, source } => {
                write!(f, "listen: cannot bind LISTEN_ADDR={addr}: {source}")
            }
            Error::Io { context, source } => write!(f, "io: {context}: {source}"),
            Error::ShutdownTimeout { in_flight } => write!(
                f,
                "shutdown: {in_flight} request(s) still in flight when SHUTDOWN_TIMEOUT ran out"
            ),
            Error::SendFailures { failed, total } => {
                write!(
                    f,
                    "send: {failed} of {total} message(s) were not answered 2xx"
                )
            }
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Bind { source, .. } | Error::Io { source, .. } => Some(source),
            _ => None,
        }
    }
}

#[cfg(test)]
mod test {
    use super::*;

    #[test]
    fn config_errors_name_variable_value_and_form() {
        let e = Error::config("SEND_INTERVAL", "5x", "a duration such as 5s");
        assert_eq!(
            e.to_string(),
            r#"config: SEND_INTERVAL="5x" is invalid: expected a duration such as 5s"#
        );
        assert_eq!(e.exit_code(), 2);
        let missing = Error::Config {
            name: "RELAY_URL",
            value: None,
            expected: "a URL".into(),
        };
        assert_eq!(
            missing.to_string(),
            "config: RELAY_URL is not set: expected a URL"
        );
    }

    #[test]
    fn runtime_errors_exit_1() {
        let e = Error::ShutdownTimeout { in_flight: 3 };
        assert_eq!(e.exit_code(), 1);
        assert!(e.to_string().starts_with("shutdown: 3 request(s)"));
    }
}
