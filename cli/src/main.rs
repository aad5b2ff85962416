//! `warrant`: the command-line tool. See `warrant --help`.

fn main() -> std::process::ExitCode {
    warrant_cli::run()
}
