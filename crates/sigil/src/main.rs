//! The `sigil` binary: parse the command line and dispatch. Everything else is in the library.

use clap::Parser;

fn main() {
    let cli = sigil::cli::Cli::parse();
    std::process::exit(sigil::cli::run(cli));
}
