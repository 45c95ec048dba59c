//! The `relay` binary: glue around [`three_tier::tiers::cli::main`], which reads
//! the relay's settings from the environment and runs [`three_tier::tiers::relay::run`].

fn main() -> std::process::ExitCode {
    three_tier::tiers::cli::main(three_tier::tiers::relay::run)
}
