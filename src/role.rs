//! The three tiers, as a value.
//!
//! A [`Role`] picks which settings apply, how log lines and error messages are
//! prefixed, and which file a `LOG_DIR` log goes to.

use std::fmt;

/// Which tier a process plays.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// Tier 1: posts a message to the relay every `SEND_INTERVAL`.
    Sender,
    /// Tier 2: logs each message and forwards it to the sink.
    Relay,
    /// Tier 3: logs each message and answers `Logged message from <peer ip>`.
    Sink,
}

impl Role {
    /// The program name: `sender`, `relay` or `sink`.
    pub fn name(self) -> &'static str {
        match self {
            Role::Sender => "sender",
            Role::Relay => "relay",
            Role::Sink => "sink",
        }
    }

    /// The seed's log file prefix under `LOG_DIR` (`Relay_<ip>.txt`, `Sink_<ip>.txt`).
    pub fn log_file_prefix(self) -> &'static str {
        match self {
            Role::Sender => "Sender",
            Role::Relay => "Relay",
            Role::Sink => "Sink",
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}
