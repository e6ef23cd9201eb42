#!/usr/bin/env bash
# Installs everything outcall needs to build, test and run its demo on Debian 12, and checks the
# Rust toolchain. Idempotent: `apt-get update` runs only when a package is missing, and cargo-deny
# is built only when the wanted version is absent. Run as root (CI and the dev machines are root);
# otherwise it uses sudo.
set -euo pipefail

# Debian packages, each with the reason it is here.
PACKAGES=(
    build-essential   # gcc for the C probes (DAHDI ioctl layout test) and for -sys crates
    pkg-config        # finding libopus
    libclang-dev      # bindgen (sys/*) reads the C headers through libclang
    dahdi-source      # /usr/include/dahdi/user.h for outcall-dahdi-sys
    libpri-dev        # libpri.h + libpri.so for outcall-pri-sys (Q.931 over PRI and softspan)
    libespeak-ng-dev  # espeak-ng/speak_lib.h + libespeak-ng.so for TTS
    espeak-ng         # espeak-ng voices data at run time
    libopus-dev       # Opus for SIP trunks (audiopus)
    libspandsp-dev    # the reference DTMF detector dtmf-bench compares against
    sox               # measuring and converting recorded audio in tests
    sip-tester        # sipp, a real SIP peer in the interop tests
    baresip           # a real SIP user agent in the interop tests
    systemd           # systemd-analyze / systemd-sysusers / systemd-tmpfiles for the unit tests
    udev              # udevadm for the rules test
    curl              # HTTP checks in the demo
)

CARGO_DENY_VERSION=0.20.2

SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi

missing=()
for p in "${PACKAGES[@]}"; do
    if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
        missing+=("$p")
    fi
done
if [ ${#missing[@]} -gt 0 ]; then
    echo "setup: installing Debian packages: ${missing[*]}"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
else
    echo "setup: all ${#PACKAGES[@]} Debian packages present"
fi

# Rust toolchain: cargo, rustc >= the workspace rust-version, rustfmt and clippy.
need_rust="1.87"
if ! command -v cargo >/dev/null; then
    echo "setup: cargo not found. Install Rust ${need_rust} or newer with rustup (https://rustup.rs)." >&2
    exit 1
fi
have_rust=$(rustc --version | awk '{print $2}')
if [ "$(printf '%s\n%s\n' "$need_rust" "$have_rust" | sort -V | head -1)" != "$need_rust" ]; then
    echo "setup: rustc $have_rust is older than the required $need_rust: run 'rustup update'." >&2
    exit 1
fi
cargo fmt --version >/dev/null || { echo "setup: run 'rustup component add rustfmt'" >&2; exit 1; }
cargo clippy --version >/dev/null || { echo "setup: run 'rustup component add clippy'" >&2; exit 1; }

# cargo-deny keeps the licences of everything linked into outcalld compatible with libpri's GPL.
if ! cargo deny --version 2>/dev/null | grep -q "$CARGO_DENY_VERSION"; then
    echo "setup: building cargo-deny $CARGO_DENY_VERSION (a few minutes, once)"
    cargo install --locked --quiet cargo-deny --version "$CARGO_DENY_VERSION"
fi
echo "setup: rustc $have_rust, $(cargo deny --version)"
