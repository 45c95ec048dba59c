//! The `sender` binary: glue around [`three_tier::cli::main`] for [`three_tier::Role::Sender`],
//! which reads the environment and runs [`three_tier::sender::run`].

fn main() -> std::process::ExitCode {
    three_tier::cli::main(three_tier::Role::Sender, three_tier::sender::run)
}
