#!/usr/bin/env bash
# Builds the fuzz targets (nightly + cargo-fuzz) and runs each one for
# SECONDS (default 60) on its committed corpus; stops at the first crash,
# which leaves its input under tests/fuzz/artifacts/<target>/ (turn it into
# a regression test before fixing).
#
# Usage: tests/fuzz/run.sh [SECONDS] [TARGET...]  (default: every target)
#   FUZZ_PARALLEL=1 runs the targets side by side instead of one by one.
#   FUZZ_GROW=1 adds what the run finds to the committed corpus (then
#   minimise it with `cargo +nightly fuzz cmin --fuzz-dir tests/fuzz T`);
#   by default new inputs go to a scratch directory and the tree stays
#   as committed.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
SECONDS_EACH="${1:-60}"
shift || true
TARGETS=("$@")
[ ${#TARGETS[@]} -eq 0 ] && TARGETS=(client_protocol connect_json subjects config_file monitor_request route_protocol jwt_login tls_records)
cd "$ROOT"
command -v cargo-fuzz >/dev/null || cargo install --locked cargo-fuzz
cargo +nightly fuzz build --fuzz-dir tests/fuzz
run_one() {
  local target="$1" corpora
  mkdir -p "tests/fuzz/corpus/$target"
  if [ "${FUZZ_GROW:-0}" = 1 ]; then
    corpora=("tests/fuzz/corpus/$target")
  else
    # libFuzzer writes new inputs into its first corpus directory.
    corpora=("$(mktemp -d)" "tests/fuzz/corpus/$target")
  fi
  if cargo +nightly fuzz run --fuzz-dir tests/fuzz "$target" "${corpora[@]}" -- \
    -max_total_time="$SECONDS_EACH" -rss_limit_mb=2048 -print_final_stats=1 \
    >"tests/fuzz/artifacts/$target.log" 2>&1; then
    echo "fuzz $target: $(grep -E '^Done' "tests/fuzz/artifacts/$target.log" | tail -1)"
  else
    echo "fuzz $target: FAILED, see tests/fuzz/artifacts/$target.log"
    tail -30 "tests/fuzz/artifacts/$target.log"
    return 1
  fi
}
mkdir -p tests/fuzz/artifacts
status=0
if [ "${FUZZ_PARALLEL:-0}" = 1 ]; then
  pids=()
  for target in "${TARGETS[@]}"; do run_one "$target" & pids+=($!); done
  for pid in "${pids[@]}"; do wait "$pid" || status=1; done
else
  for target in "${TARGETS[@]}"; do run_one "$target" || status=1; done
fi
exit $status
