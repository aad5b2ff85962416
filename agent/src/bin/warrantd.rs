fn main() -> std::process::ExitCode {
    warrant_agent::daemon::main()
}
