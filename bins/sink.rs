//! The `sink` binary: glue around [`three_tier::cli::main`], which reads
//! the sink's settings from the environment and runs [`three_tier::sink::run`].

fn main() -> std::process::ExitCode {
    three_tier::cli::main(three_tier::sink::run)
}
