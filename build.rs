//! Link-time settings for the `pincer` binary (docs/PERFORMANCE.md, "Start-up and idle
//! memory").
//!
//! On glibc Linux, release builds:
//! - `-z pack-relative-relocs` (DT_RELR): the ~50,000 relative relocations shrink from
//!   1.2 MB of RELA entries, which the dynamic loader reads (and keeps resident) at every
//!   start, to a few KB. Needs glibc 2.36 or newer at run time (Debian 12, Ubuntu 22.10);
//!   set `PINCER_NO_RELR=1` when building for an older system.
//! - On x86_64 (where rustc links with its bundled lld),
//!   `--symbol-ordering-file=deploy/startup-order.txt`: the ~1,700 functions start-up runs
//!   are placed together at the front of `.text`, so the kernel maps about 3 MB of the
//!   binary at start instead of about 10 MB (each first touch of code maps a 64 KB window
//!   around it). `scripts/startup-order.sh` regenerates the list; names it has that the
//!   build no longer has are ignored. `PINCER_NO_SYMBOL_ORDER=1` turns it off (for a
//!   linker other than lld).

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-changed=deploy/startup-order.txt");
    println!("cargo:rerun-if-env-changed=PINCER_NO_RELR");
    println!("cargo:rerun-if-env-changed=PINCER_NO_SYMBOL_ORDER");
    let var = |k: &str| std::env::var(k).unwrap_or_default();
    let off = |k: &str| std::env::var_os(k).is_some_and(|v| v != "0");
    if var("CARGO_CFG_TARGET_OS") != "linux" || var("CARGO_CFG_TARGET_ENV") != "gnu" {
        return;
    }
    // Release builds only: a debug binary (`cargo run`, the tests) starts on any glibc.
    if var("PROFILE") == "release" && !off("PINCER_NO_RELR") {
        println!("cargo:rustc-link-arg-bins=-Wl,-z,pack-relative-relocs");
    }
    let order = std::path::Path::new(&var("CARGO_MANIFEST_DIR")).join("deploy/startup-order.txt");
    if var("PROFILE") == "release"
        && var("CARGO_CFG_TARGET_ARCH") == "x86_64"
        && !off("PINCER_NO_SYMBOL_ORDER")
        && order.exists()
    {
        println!(
            "cargo:rustc-link-arg-bins=-Wl,--symbol-ordering-file={}",
            order.display()
        );
        println!("cargo:rustc-link-arg-bins=-Wl,--no-warn-symbol-ordering");
    }
}
