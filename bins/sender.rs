//! The `sender` binary: glue around [`three_tier::tiers::cli::main`], which reads
//! the sender's settings from the environment and runs [`three_tier::tiers::sender::run`].

fn main() -> std::process::ExitCode {
    three_tier::tiers::cli::main(three_tier::tiers::sender::run)
}
