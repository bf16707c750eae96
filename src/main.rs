//! The `jobforge` binary: all behaviour lives in the library's `cli` module.

fn main() {
    std::process::exit(jobforge::cli::main());
}
