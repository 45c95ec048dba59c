//! The `relay` binary: glue around [`three_tier::cli::main`] for [`three_tier::Role::Relay`],
//! which reads the environment and runs [`three_tier::relay::run`].

fn main() -> std::process::ExitCode {
    three_tier::cli::main(three_tier::Role::Relay, three_tier::relay::run)
}
