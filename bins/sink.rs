//! The `sink` binary: glue around [`three_tier::cli::main`] for [`three_tier::Role::Sink`],
//! which reads the environment and runs [`three_tier::sink::run`].

fn main() -> std::process::ExitCode {
    three_tier::cli::main(three_tier::Role::Sink, three_tier::sink::run)
}
