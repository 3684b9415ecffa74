//! The `flow` command: run pipelines, watch them, and inspect and steer runs
//! in a store. See `flow --help`.

mod cli;

fn main() -> std::process::ExitCode {
    cli::main()
}
