//! Link options for the `jobforge` binary on Linux (GNU):
//! - packed relative relocations (DT_RELR) and no PIE: the dynamic loader then applies the
//!   binary's relocations in a fraction of the time, which every command pays at start (about
//!   2 ms of a 20 ms rerun; see BENCHMARKS.md);
//! - the functions a run calls laid out side by side (`link/symbol-order.txt`, written by
//!   `scripts/symbol-order`), so that a run maps about 9 MiB of the binary's code instead of
//!   about 50: only with rustc's own linker (rust-lld, the default on x86_64 Linux since Rust
//!   1.90), which reads the list; other linkers get the binary laid out as before.

use std::path::{Path, PathBuf};
use std::process::Command;

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-changed=link/symbol-order.txt");
    let linux = std::env::var("CARGO_CFG_TARGET_OS").is_ok_and(|os| os == "linux");
    let gnu = std::env::var("CARGO_CFG_TARGET_ENV").is_ok_and(|env| env == "gnu");
    if !(linux && gnu) {
        return;
    }
    println!("cargo:rustc-link-arg-bins=-Wl,-z,pack-relative-relocs");
    println!("cargo:rustc-link-arg-bins=-no-pie");
    if links_with_rust_lld() {
        if let Some(order) = symbol_order() {
            println!(
                "cargo:rustc-link-arg-bins=-Wl,--symbol-ordering-file={},--no-warn-symbol-ordering",
                order.display()
            );
        }
    }
}

/// The link order, copied into the build's own folder: the linker is handed a path inside the
/// target folder, which a checkout that shares it (and this script's output) always finds.
fn symbol_order() -> Option<PathBuf> {
    let source = Path::new(&std::env::var_os("CARGO_MANIFEST_DIR")?).join("link/symbol-order.txt");
    let copy = Path::new(&std::env::var_os("OUT_DIR")?).join("symbol-order.txt");
    std::fs::copy(source, &copy).ok()?;
    Some(copy)
}

/// Whether the binary is linked by rust-lld: x86_64 Linux (GNU) with rustc 1.90 or later, and no
/// linker chosen in the configuration or the flags.
fn links_with_rust_lld() -> bool {
    let x86_64 = std::env::var("TARGET").is_ok_and(|t| t == "x86_64-unknown-linux-gnu");
    let chosen = std::env::var_os("RUSTC_LINKER").is_some()
        || std::env::var("CARGO_ENCODED_RUSTFLAGS").is_ok_and(|f| f.contains("link") || f.contains("fuse-ld"));
    x86_64 && !chosen && rustc_minor().is_some_and(|minor| minor >= 90)
}

/// The minor version of the rustc that builds the crate (`rustc 1.95.0 (...)` -> 95).
fn rustc_minor() -> Option<u32> {
    let rustc = std::env::var_os("RUSTC")?;
    let out = Command::new(rustc).arg("--version").output().ok()?;
    let text = String::from_utf8(out.stdout).ok()?;
    text.split_whitespace().nth(1)?.split('.').nth(1)?.parse().ok()
}
