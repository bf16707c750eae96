//! Links the `jobforge` binary with packed relative relocations (DT_RELR) where the platform
//! has them: the dynamic loader then applies the binary's relocations in a fraction of the time,
//! which every command pays at start (about 2 ms of a 20 ms rerun; see BENCHMARKS.md).

fn main() {
    let linux = std::env::var("CARGO_CFG_TARGET_OS").is_ok_and(|os| os == "linux");
    let gnu = std::env::var("CARGO_CFG_TARGET_ENV").is_ok_and(|env| env == "gnu");
    if linux && gnu {
        println!("cargo:rustc-link-arg-bins=-Wl,-z,pack-relative-relocs");
        println!("cargo:rustc-link-arg-bins=-no-pie");
    }
}
