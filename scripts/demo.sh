#!/usr/bin/env bash
# make demo: places a real call over softspan once the daemon exists; until then it says what the
# demo will do and shows the parts that already work.
set -euo pipefail
cd "$(dirname "$0")/.."
bin=target/debug
if [ -x "$bin/outcalld" ] && "$bin/outcalld" --help 2>/dev/null | grep -q -- '--config'; then
    exec bash scripts/demo-call.sh
fi
cat <<'MSG'
outcall demo
============
When the daemon lands (issue "outcalld and outcallctl"), this command will:
  1. start outcalld on examples/softspan.toml (a T1 softspan: our libpri CPE against a simulated
     carrier running libpri as NETWORK, B-channels on a 20 ms clock);
  2. outcallctl call +15550001 --say "You were outbid. Press 1 to raise your bid." --collect 1;
  3. the scripted callee answers, hears the synthesised prompt and presses 1 as in-band DTMF;
  4. print the final request record (outcallctl status --json) and stop the daemon.
What runs today:
MSG
"$bin/outcalld" --version
"$bin/outcallctl" version
cargo test -q -p outcall-pri-sys -p outcall-espeak-sys -p outcall-dahdi-sys 2>&1 | grep -E '^test result' | head -3
