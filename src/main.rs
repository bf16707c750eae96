//! The `jobforge` binary: all behaviour lives in the library's `cli` module.

/// mimalloc: a run allocates and frees many small buffers from several threads, where glibc's
/// allocator spent a fifth of the CPU time (see BENCHMARKS.md).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() {
    // Polars keeps 8 MiB of zeroes for columns of nulls, allocated at its first use (any empty
    // or null column). Allocated now, from memory fresh from the kernel, they are known to be
    // zero and left untouched; allocated in the middle of a run, the allocator writes every
    // byte of them: 2,048 page faults and 8 MiB more resident.
    let _ = polars::prelude::Series::full_null("".into(), 0, &polars::prelude::DataType::String);
    let code = jobforge::cli::main();
    // Everything the command does is done and written. `_exit` ends the process without the
    // teardown `exit` runs first (mimalloc handing each of its pages back to the kernel one call
    // at a time, DuckDB's C++ statics), which the kernel's taking the whole process back makes
    // moot; standard output is the one buffer left to flush.
    let _ = std::io::Write::flush(&mut std::io::stdout());
    // SAFETY: `_exit` only ends the process.
    unsafe { libc::_exit(code) }
}
