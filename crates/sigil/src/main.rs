//! The `sigil` binary: parse the command line and dispatch. Everything else is in the library.

fn main() {
    let cli = sigil::cli::parse();
    std::process::exit(sigil::cli::run(cli));
}
