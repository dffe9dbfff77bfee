//! The `trm-train` binary; see [`trm_train::cli`].

fn main() -> std::process::ExitCode {
    trm_train::cli::run()
}
