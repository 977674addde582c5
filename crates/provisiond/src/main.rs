//! The `provisiond` binary: parses the command line and hands over to `provisiond::cli`.

fn main() -> std::process::ExitCode {
    provisiond::cli::main()
}
