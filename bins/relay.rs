//! The `relay` binary: glue around [`three_tier::cli::main`], which reads
//! the relay's settings from the environment and runs [`three_tier::relay::run`].

fn main() -> std::process::ExitCode {
    three_tier::cli::main(three_tier::relay::run)
}
