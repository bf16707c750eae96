//! The `jobforge` binary: all behaviour lives in the library's `cli` module.

/// mimalloc: a run allocates and frees many small buffers from several threads, where glibc's
/// allocator spent a fifth of the CPU time (see BENCHMARKS.md).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() {
    std::process::exit(jobforge::cli::main());
}
