#!/usr/bin/env bash
# Builds the fuzz targets (fuzz/, a workspace of its own) and runs each of them, one after
# the other, for a bounded time: scripts/fuzz.sh [seconds per target, default 60] [target...]
#
# Needs cargo-fuzz (`cargo install cargo-fuzz`). Only a stable toolchain is required:
# RUSTC_BOOTSTRAP=1 lets cargo-fuzz pass the flags libFuzzer needs. The targets are built
# without a sanitizer (-s none): the crates have no unsafe code outside openssl-keyhome, and
# libFuzzer itself catches panics, timeouts and memory exhaustion.
#
# The seeds in fuzz/corpus/<target> are read only; what libFuzzer learns goes to
# fuzz/work/<target> and a crashing input to fuzz/artifacts/<target> (both ignored by git).
# Exits non-zero if any target found a crash, a hang or an out-of-memory input.
set -euo pipefail
cd "$(dirname "$0")/../fuzz"

seconds=${1:-60}
shift || true
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
  targets=(codec http_request acp_rules filter_query config_files credentials chunk_framing admin_query)
fi

export RUSTC_BOOTSTRAP=1
nice -n 15 cargo fuzz build -s none
failed=()
for t in "${targets[@]}"; do
  mkdir -p "work/$t"
  echo "== $t: ${seconds}s"
  # One process on one core (libFuzzer's default; -jobs=N would fork workers and move the
  # output to fuzz-N.log). -timeout: an input taking over 10 s is a hang; -rss_limit_mb:
  # over 2 GB is an out-of-memory.
  if ! nice -n 15 cargo fuzz run -s none "$t" "work/$t" "corpus/$t" -- \
      -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 \
      -print_final_stats=1 2>&1 | tee "work/$t.log" | grep -E '^(stat::|==|SUMMARY|Done)|panicked'; then
    :
  fi
  if ls "artifacts/$t"/* >/dev/null 2>&1; then
    failed+=("$t")
  fi
done
if [ ${#failed[@]} -gt 0 ]; then
  echo "findings in: ${failed[*]} (inputs in fuzz/artifacts/)" >&2
  exit 1
fi
