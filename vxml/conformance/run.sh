#!/usr/bin/env bash
# Runs the W3C VoiceXML 2.0/2.1 Implementation Report tests (.txml) through vxml-run.
#
#   vxml/conformance/run.sh SUITE_DIR [XSLT] [OUT_DIR]
#
# SUITE_DIR: a fetched copy of the tests, one directory per test (N/N.txml plus the files it
#   uses), possibly grouped under irp_vxml20/ and irp_vxml21/. Not committed: CI has no network.
# XSLT: the stylesheet that turns conf:* elements into VoiceXML (default: conf.xslt beside this
#   script; the W3C one works too).
# OUT_DIR: where converted documents and logs go (default: a temporary directory).
#
# Each .txml is converted to .vxml beside its files (tests refer to each other as *.vxml).
# A test's start document is a .txml that no other document of its directory references.
# Tests that need speech (conf:speech, conf:recording, conf:grammar, which builds a voice
# grammar) are skipped; the others get their conf:dtmf values in document order as --input,
# and conf:noinput as "noinput". A test passes when the caller hears "pass" before the exit.
# Needs: xsltproc (Debian package xsltproc), cargo.
set -euo pipefail

suite=${1:?usage: run.sh SUITE_DIR [XSLT] [OUT_DIR]}
xslt=${2:-$(dirname "$0")/conf.xslt}
out=${3:-$(mktemp -d)}
here=$(cd "$(dirname "$0")/../.." && pwd)

cargo build -q -p outcall-vxml --bin vxml-run --manifest-path "$here/Cargo.toml"
run="$here/target/debug/vxml-run"

mkdir -p "$out"
cp -r "$suite"/. "$out/tests"
results="$out/results.tsv"
: > "$results"

find "$out/tests" -name '*.txml' | while read -r t; do
    xsltproc "$xslt" "$t" > "${t%.txml}.vxml" 2>/dev/null || echo "xslt failed: $t" >&2
done

find "$out/tests" -name '*.txml' | sort -V | while read -r t; do
    dir=$(dirname "$t")
    base=$(basename "$t" .txml)
    # referenced by a sibling? then it is not a start document
    if grep -l -E "[\"'/]${base}\.(vxml|txml)[\"'#]" "$dir"/*.txml 2>/dev/null | grep -v -x "$t" | grep -q .; then
        continue
    fi
    rel=${t#"$out/tests/"}
    suite_name=$(echo "$rel" | cut -d/ -f1)
    case "$suite_name" in irp_vxml20|irp_vxml21) ;; *) suite_name=tests ;; esac
    if grep -q -E "conf:(speech|recording|grammar)" "$t"; then
        printf '%s\t%s\tskip\tneeds speech input\n' "$suite_name" "$rel" >> "$results"
        continue
    fi
    args=()
    while read -r tok; do
        case "$tok" in
            noinput) args+=(--input noinput) ;;
            *) args+=(--input "$tok") ;;
        esac
    done < <(grep -o -E '<conf:(dtmf value="[^"]*"|noinput)' "$t" | sed -E 's/<conf:dtmf value="([^"]*)"/\1/; s/<conf:noinput/noinput/')
    # a reprompted test hears "Press X" again: repeat the last key string a few times, unless
    # the test wants the caller to hang up when its inputs are over
    if [ ${#args[@]} -gt 0 ] && ! grep -q "conf:hangup" "$t"; then
        last=${args[${#args[@]}-1]}
        args+=(--input "$last" --input "$last" --input "$last")
    fi
    log="$out/$(echo "$rel" | tr / _).log"
    timeout 20 "$run" "${t%.txml}.vxml" "${args[@]}" --json > "$log" 2>&1 || true
    if grep -q -E '"text":"([^"]* )?pass"' "$log"; then
        printf '%s\t%s\tpass\t\n' "$suite_name" "$rel" >> "$results"
    else
        why=$(grep -o -E '"event":"(error|throw)"[^}]*|"text":"fail[^"]*"|"text":"[^"]*"' "$log" | tail -3 | tr '\n' ' ' | cut -c1-200)
        printf '%s\t%s\tfail\t%s\n' "$suite_name" "$rel" "$why" >> "$results"
    fi
done

echo "per suite (pass/run; skipped):"
awk -F'\t' '{ n[$1]++; if ($3=="pass") p[$1]++; if ($3=="skip") s[$1]++ }
    END { for (k in n) printf "  %-12s %d/%d passed, %d skipped\n", k, p[k], n[k]-s[k], s[k] }' "$results" | sort
echo "failing:"
awk -F'\t' '$3=="fail" { printf "  %s: %s\n", $2, $4 }' "$results"
echo "results: $results"
