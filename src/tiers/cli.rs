//! What the three binaries share: arguments, the panic hook, errors and exit codes.
//!
//! Configuration is by environment only, so the only arguments are `--help`,
//! `--version`, and for the sink `--loss-report [--json] [FILE ...]`. Errors print once, as `<tier>: error: <area>: <detail>`, and
//! map to fixed exit codes: 0 clean stop, 1 runtime failure, 2 configuration.

use std::process::ExitCode;

use crate::config::{help, TierSettings};
use crate::error::Error;
use crate::role::Role;

/// Runs a tier as a program: parses arguments, reads the tier's settings
/// (`C`, such as [`crate::config::SinkConfig`]) from the environment, calls
/// `run`, exits.
///
/// Each binary passes its own tier's `run` (such as [`crate::tiers::sink::run`]), so
/// it links only that tier's code: a `match` on the role here would link all
/// three tiers into each binary whenever the optimiser chose not to inline
/// this function (the sink once grew from 444 KB to 715 KB that way).
pub fn main<C: TierSettings>(run: fn(C) -> Result<(), Error>) -> ExitCode {
    let role = C::ROLE;
    let args: Vec<String> = std::env::args().skip(1).collect();
    if role == Role::Sink && args.first().map(String::as_str) == Some("--loss-report") {
        let json = args.get(1).map(String::as_str) == Some("--json");
        let files = &args[if json { 2 } else { 1 }..];
        return match crate::record::loss_report::run(files, json) {
            Ok(true) => ExitCode::SUCCESS,
            Ok(false) => ExitCode::from(1),
            Err(e) => {
                eprintln!("{role}: error: {e}");
                ExitCode::from(2)
            }
        };
    }
    let mut args = args.into_iter();
    match (args.next().as_deref(), args.next()) {
        (None, _) => {}
        (Some("--help" | "-h"), None) => {
            print!("{}", help(role));
            return ExitCode::SUCCESS;
        }
        (Some("--version" | "-V"), None) => {
            println!(
                "{} {} (revision {})",
                role.name(),
                crate::version::VERSION,
                crate::version::REVISION
            );
            return ExitCode::SUCCESS;
        }
        (Some(arg), _) => {
            eprintln!(
                "{role}: error: unexpected argument {arg:?}: {role} is configured by environment variables (see {role} --help)"
            );
            return ExitCode::from(2);
        }
    }
    install_panic_hook(role);
    let result = C::from_env().and_then(run);
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("{role}: error: {e}");
            ExitCode::from(e.exit_code())
        }
    }
}

/// One line per panic, on stderr, in our own shape, and a backtrace when
/// `RUST_BACKTRACE` asks for one; the request that panicked is answered 500.
/// It runs on the panicking thread: a connection thread's stack must hold it
/// (see `CONNECTION_STACK` in src/http/server.rs).
fn install_panic_hook(role: Role) {
    std::panic::set_hook(Box::new(move |info| {
        let thread = std::thread::current();
        let backtrace = std::backtrace::Backtrace::capture();
        let trace = match backtrace.status() {
            std::backtrace::BacktraceStatus::Captured => format!("\n{backtrace}"),
            _ => String::new(),
        };
        eprintln!(
            "{role}: internal error in thread {}: {info}{trace}",
            thread.name().unwrap_or("unnamed")
        );
    }));
}
