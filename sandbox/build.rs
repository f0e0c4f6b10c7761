//! Builds `execd/execd.c` (the exec server run inside every sandbox container) as a static
//! executable into `$OUT_DIR/pincer-execd`, for `include_bytes!` in `src/execd/`.
//! Static, so it runs in any image, even one without a libc (the busybox test image);
//! glibc's `libc.a` comes with Debian's libc6-dev. The compiler is `$CC`, else `cc`.

use std::path::PathBuf;
use std::process::Command;

fn main() {
    let src = "execd/execd.c";
    println!("cargo:rerun-if-changed={src}");
    println!("cargo:rerun-if-env-changed=CC");
    let out = PathBuf::from(std::env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"))
        .join("pincer-execd");
    let cc = std::env::var("CC")
        .ok()
        .filter(|c| !c.trim().is_empty())
        .unwrap_or_else(|| "cc".into());
    let status = Command::new(&cc)
        .args(["-static", "-O2", "-s", "-Wall", "-Wextra", "-o"])
        .arg(&out)
        .arg(src)
        .status();
    match status {
        Ok(s) if s.success() => {}
        Ok(s) => panic!(
            "{cc} failed ({s}) building the sandbox exec server {src} statically; install a C compiler and glibc's static library (Debian: gcc libc6-dev)"
        ),
        Err(e) => panic!(
            "cannot run the C compiler `{cc}` to build the sandbox exec server {src}: {e}; install gcc (or set CC)"
        ),
    }
}
