//! Generates Rust types from the system's `dahdi/user.h` at build time.
//!
//! DAHDI is a kernel interface: there is no library to link, only a header (Debian package
//! `dahdi-source`). Its ioctl request numbers are function-like macros that bindgen cannot expand;
//! `src/ioctl.rs` defines them and `tests/layout.rs` proves them against a C compiler.

use std::env;
use std::path::PathBuf;

fn main() {
    let include = env::var_os("DAHDI_INCLUDE_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/usr/include"));
    let header = include.join("dahdi/user.h");
    println!("cargo:rerun-if-env-changed=DAHDI_INCLUDE_DIR");
    println!("cargo:rerun-if-changed={}", header.display());
    if !header.is_file() {
        panic!(
            "outcall-dahdi-sys: {} not found. Install the Debian package `dahdi-source` \
             (`sudo scripts/setup.sh` does), or set DAHDI_INCLUDE_DIR to the directory that \
             holds dahdi/user.h.",
            header.display()
        );
    }
    // Tell dependants (and tests) where the header is.
    println!("cargo:include={}", include.display());

    let bindings = bindgen::Builder::default()
        .header_contents("wrapper.h", "#include <dahdi/user.h>\n")
        .clang_arg(format!("-I{}", include.display()))
        .allowlist_type("dahdi_.*")
        .allowlist_var("DAHDI_.*")
        .derive_default(true)
        .derive_debug(true)
        .layout_tests(true)
        .parse_callbacks(Box::new(bindgen::CargoCallbacks::new()))
        .generate()
        .unwrap_or_else(|e| {
            panic!(
                "outcall-dahdi-sys: bindgen failed on {}: {e}",
                header.display()
            )
        });
    let out = PathBuf::from(env::var("OUT_DIR").expect("cargo sets OUT_DIR")).join("dahdi.rs");
    bindings
        .write_to_file(&out)
        .unwrap_or_else(|e| panic!("outcall-dahdi-sys: writing {}: {e}", out.display()));
    println!("cargo:rustc-env=OUTCALL_DAHDI_HEADER={}", header.display());
}
