//! Generates Rust declarations from the system's `libpri.h` and links libpri.
//!
//! Debian's `libpri-dev` installs the header in /usr/include and the library in /usr/lib with no
//! pkg-config file, so the library is linked explicitly (override with LIBPRI_LIB_DIR and
//! LIBPRI_INCLUDE_DIR).

use std::env;
use std::path::PathBuf;

fn main() {
    println!("cargo:rerun-if-env-changed=LIBPRI_INCLUDE_DIR");
    println!("cargo:rerun-if-env-changed=LIBPRI_LIB_DIR");
    let include = env::var_os("LIBPRI_INCLUDE_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/usr/include"));
    let header = include.join("libpri.h");
    println!("cargo:rerun-if-changed={}", header.display());
    if !header.is_file() {
        panic!(
            "outcall-pri-sys: {} not found. Install the Debian package `libpri-dev` \
             (`sudo scripts/setup.sh` does), or set LIBPRI_INCLUDE_DIR to the directory that \
             holds libpri.h.",
            header.display()
        );
    }
    let lib_dir = env::var_os("LIBPRI_LIB_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/usr/lib"));
    if !lib_dir.join("libpri.so").exists() && !lib_dir.join("libpri.a").exists() {
        panic!(
            "outcall-pri-sys: no libpri.so or libpri.a in {}. Install the Debian package \
             `libpri-dev`, or set LIBPRI_LIB_DIR.",
            lib_dir.display()
        );
    }
    println!("cargo:rustc-link-search=native={}", lib_dir.display());
    println!("cargo:rustc-link-lib=dylib=pri");

    let bindings = bindgen::Builder::default()
        .header_contents("wrapper.h", "#include <libpri.h>\n")
        .clang_arg(format!("-I{}", include.display()))
        .allowlist_function("pri_.*")
        .allowlist_type("pri_.*")
        .allowlist_var("PRI_.*")
        .allowlist_var("PRI_EVENT_.*")
        .opaque_type("pri")
        .derive_debug(true)
        .derive_default(true)
        .layout_tests(true)
        .parse_callbacks(Box::new(bindgen::CargoCallbacks::new()))
        .generate()
        .unwrap_or_else(|e| {
            panic!(
                "outcall-pri-sys: bindgen failed on {}: {e}",
                header.display()
            )
        });
    let out = PathBuf::from(env::var("OUT_DIR").expect("cargo sets OUT_DIR")).join("pri.rs");
    bindings
        .write_to_file(&out)
        .unwrap_or_else(|e| panic!("outcall-pri-sys: writing {}: {e}", out.display()));
}
