//! The `sender` binary: glue around [`three_tier::cli::main`], which reads
//! the sender's settings from the environment and runs [`three_tier::sender::run`].

fn main() -> std::process::ExitCode {
    three_tier::cli::main(three_tier::sender::run)
}
