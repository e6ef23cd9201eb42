#!/usr/bin/env bash
# make demo: a real call over softspan.
# outcalld starts on examples/softspan.toml (a T1 softspan: our libpri CPE against a simulated
# carrier running libpri as NETWORK); outcallctl asks it to call +15550001, a scripted callee
# who listens to the synthesised prompt and presses 1 as in-band DTMF; the final request record
# is printed and the daemon stopped.
set -euo pipefail
cd "$(dirname "$0")/.."
bin=target/debug
demo=/tmp/outcall-demo
sock=$demo/outcalld.sock
rm -rf "$demo" && mkdir -p "$demo"

"$bin/outcalld" --check-config examples/softspan.toml
RUST_LOG=info "$bin/outcalld" --config examples/softspan.toml 2> "$demo/outcalld.log" &
daemon=$!
trap 'kill -TERM $daemon 2>/dev/null || true; wait $daemon 2>/dev/null || true' EXIT
for _ in $(seq 1 100); do [ -S "$sock" ] && break; sleep 0.1; done
[ -S "$sock" ] || { echo "outcalld did not start:"; cat "$demo/outcalld.log"; exit 1; }

echo "== spans"
"$bin/outcallctl" --socket "$sock" spans
echo "== calling +15550001 (the simulated callee listens, then presses 1)"
"$bin/outcallctl" --socket "$sock" call +15550001 \
    --say "Hello. You were outbid on lot nine hundred ninety one. Press 1 to raise your bid by ten dollars." \
    --collect 1 --user-data '{"auction":991,"raise":10}' --sender demo > "$demo/accepted.txt"
cat "$demo/accepted.txt"
id=$(sed -n 's/^request \([0-9]*\) accepted.*/\1/p' "$demo/accepted.txt")
for _ in $(seq 1 300); do
    state=$("$bin/outcallctl" --socket "$sock" --json status "$id" | sed -n 's/^  "state": "\(.*\)",\{0,1\}$/\1/p')
    case "$state" in queued|dialing|ringing|answered|"") sleep 0.2 ;; *) break ;; esac
done
echo "== final record: outcallctl status --json $id"
"$bin/outcallctl" --socket "$sock" status --json "$id"
echo "== what the callee heard: $demo/callee-15550001.wav; daemon log: $demo/outcalld.log"
kill -TERM $daemon
wait $daemon
trap - EXIT
echo "== outcalld stopped cleanly"
