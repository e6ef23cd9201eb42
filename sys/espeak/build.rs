//! Generates Rust declarations from the system's `espeak-ng/speak_lib.h` and links libespeak-ng.

use std::env;
use std::path::PathBuf;

fn main() {
    println!("cargo:rerun-if-env-changed=ESPEAK_INCLUDE_DIR");
    let include = env::var_os("ESPEAK_INCLUDE_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/usr/include"));
    let header = include.join("espeak-ng/speak_lib.h");
    println!("cargo:rerun-if-changed={}", header.display());
    if !header.is_file() {
        panic!(
            "outcall-espeak-sys: {} not found. Install the Debian package `libespeak-ng-dev` \
             (`sudo scripts/setup.sh` does), or set ESPEAK_INCLUDE_DIR to the directory that \
             holds espeak-ng/speak_lib.h.",
            header.display()
        );
    }
    println!("cargo:rustc-link-lib=dylib=espeak-ng");

    let bindings = bindgen::Builder::default()
        .header_contents("wrapper.h", "#include <espeak-ng/speak_lib.h>\n")
        .clang_arg(format!("-I{}", include.display()))
        .allowlist_function("espeak_.*")
        .allowlist_type("espeak_.*")
        .allowlist_var("espeak.*")
        .allowlist_var("ESPEAK.*")
        .derive_debug(true)
        .derive_default(true)
        .layout_tests(true)
        .parse_callbacks(Box::new(bindgen::CargoCallbacks::new()))
        .generate()
        .unwrap_or_else(|e| {
            panic!(
                "outcall-espeak-sys: bindgen failed on {}: {e}",
                header.display()
            )
        });
    let out = PathBuf::from(env::var("OUT_DIR").expect("cargo sets OUT_DIR")).join("espeak.rs");
    bindings
        .write_to_file(&out)
        .unwrap_or_else(|e| panic!("outcall-espeak-sys: writing {}: {e}", out.display()));
}
