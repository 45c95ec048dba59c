//! Log lines: one event per line on stdout, flushed, and the seed's message files.
//!
//! Every line starts with nothing but the seed's own text for message lines
//! (`Relaying from …`, `From …`, `********  Sending …`), so the case study still
//! reads true; other events are plain sentences. With `LOG_DIR` set, message
//! lines are also appended to `LOG_DIR/Relay_<ip>.txt` or `LOG_DIR/Sink_<ip>.txt`
//! as the seed's PHP pages did. The file is opened once at start-up, so a
//! directory that cannot be written is a configuration error, not a lost message.

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use crate::{Error, Role};

/// Writes log lines for one tier.
#[derive(Debug)]
pub struct Logger {
    file: Option<(PathBuf, Mutex<File>)>,
}

impl Logger {
    /// A logger for `role`; with `log_dir`, opens `<dir>/<Prefix>_<ip>.txt` for appending.
    pub fn new(role: Role, log_dir: Option<&Path>, ip: IpAddr) -> Result<Logger, Error> {
        let file = match log_dir {
            None => None,
            Some(dir) => {
                let path = dir.join(format!("{}_{}.txt", role.log_file_prefix(), ip));
                let file = OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(&path)
                    .map_err(|e| {
                        Error::config(
                            "LOG_DIR",
                            &dir.display().to_string(),
                            format!("a directory this user can write ({}: {e})", path.display()),
                        )
                    })?;
                Some((path, Mutex::new(file)))
            }
        };
        Ok(Logger { file })
    }

    /// Writes one event line to stdout.
    pub fn event(&self, line: &str) {
        let mut out = io::stdout().lock();
        // A closed stdout must not take a request down with it.
        let _ = writeln!(out, "{line}").and_then(|_| out.flush());
    }

    /// Writes one message line to stdout and, with `LOG_DIR`, to the message file.
    pub fn message(&self, line: &str) -> io::Result<()> {
        self.event(line);
        if let Some((path, file)) = &self.file {
            let mut file = file.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
            file.write_all(format!("{line}\n").as_bytes())
                .map_err(|e| {
                    io::Error::new(
                        e.kind(),
                        format!("cannot append to {}: {e}", path.display()),
                    )
                })?;
        }
        Ok(())
    }
}

/// The seed's `<date>`: an HTTP date such as `Tue, 24 Nov 2026 23:48:17 GMT`.
pub fn now_http_date() -> String {
    httpdate::fmt_http_date(std::time::SystemTime::now())
}

#[cfg(test)]
mod test {
    use super::*;

    #[test]
    fn message_lines_are_appended_to_the_seed_file_name() {
        let dir = std::env::temp_dir().join(format!("three-tier-logger-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let ip: IpAddr = "10.1.2.3".parse().unwrap();
        let logger = Logger::new(Role::Sink, Some(&dir), ip).unwrap();
        logger.message("From 1.2.3.4 at x : one").unwrap();
        logger.message("From 1.2.3.4 at x : two").unwrap();
        let text = std::fs::read_to_string(dir.join("Sink_10.1.2.3.txt")).unwrap();
        assert_eq!(text, "From 1.2.3.4 at x : one\nFrom 1.2.3.4 at x : two\n");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn unwritable_log_dir_is_a_config_error() {
        let missing = Path::new("/nonexistent/three-tier");
        let err = Logger::new(Role::Relay, Some(missing), "10.0.0.1".parse().unwrap()).unwrap_err();
        assert_eq!(err.exit_code(), 2);
        let text = err.to_string();
        assert!(text.starts_with(r#"config: LOG_DIR="/nonexistent/three-tier" is invalid: expected a directory this user can write (/nonexistent/three-tier/Relay_10.0.0.1.txt: "#), "{text}");
    }

    #[test]
    fn http_date_has_the_rfc_7231_shape() {
        let d = now_http_date();
        assert!(d.ends_with(" GMT") && d.len() == 29, "{d}");
    }
}
