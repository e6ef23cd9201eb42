#!/usr/bin/env bash
# Licence gate: cargo deny, plus a check that every crate deny.toml lets in under a
# build-time-only exception really stays out of what our binaries link.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo deny --log-level warn check licenses
for krate in $(sed -n 's/^name = "\(.*\)"$/\1/p' deny.toml); do
    # -e normal: only the dependencies compiled into the artefacts, not build scripts' tools.
    users=$(cargo tree --workspace -e normal --target all -i "$krate" 2>/dev/null || true)
    if [ -n "$users" ]; then
        echo "licences: $krate is allowed only as a build-time tool, but a binary links it:" >&2
        echo "$users" >&2
        exit 1
    fi
done
echo "licences: ok (GPL-2.0 compatible; build-time-only exceptions stay out of the binaries)"
