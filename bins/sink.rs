//! The `sink` binary: glue around [`three_tier::tiers::cli::main`], which reads
//! the sink's settings from the environment and runs [`three_tier::tiers::sink::run`].

fn main() -> std::process::ExitCode {
    three_tier::tiers::cli::main(three_tier::tiers::sink::run)
}
