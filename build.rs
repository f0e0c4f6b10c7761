//! Link-time settings for the `pincer` binary.
//!
//! On glibc Linux the binary is linked with `-z pack-relative-relocs` (DT_RELR): its
//! ~50,000 relative relocations shrink from 1.2 MB of RELA entries, which the dynamic
//! loader reads (and keeps resident) at every start, to a few KB. That cuts idle RSS and
//! start-up time (docs/PERFORMANCE.md). It needs glibc 2.36 or newer at run time (Debian 12,
//! Ubuntu 22.10); set `PINCER_NO_RELR=1` when building for an older system.

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-env-changed=PINCER_NO_RELR");
    let os = std::env::var("CARGO_CFG_TARGET_OS").unwrap_or_default();
    let env = std::env::var("CARGO_CFG_TARGET_ENV").unwrap_or_default();
    let opted_out = std::env::var_os("PINCER_NO_RELR").is_some_and(|v| v != "0");
    if os == "linux" && env == "gnu" && !opted_out {
        println!("cargo:rustc-link-arg-bins=-Wl,-z,pack-relative-relocs");
    }
}
