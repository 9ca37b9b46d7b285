#!/usr/bin/env bash
# Fuzzes the event parser for a bounded time with cargo-fuzz (libFuzzer).
#
# Usage: services/ingest/fuzz/run.sh [SECONDS]   (default 60)
#
# Needs a nightly toolchain (`rustup toolchain install nightly`) and
# cargo-fuzz (`cargo install cargo-fuzz`). The corpus grows in
# services/ingest/fuzz/corpus/parse_event, starting from the files in
# seeds/parse_event; crashes are written to artifacts/parse_event and make
# this script exit non-zero.
set -euo pipefail

seconds="${1:-60}"
fuzz_dir="$(cd "$(dirname "$0")" && pwd)"
cd "$fuzz_dir"

if ! rustup toolchain list | grep -q '^nightly'; then
    echo "error: cargo fuzz needs a nightly toolchain; install it with: rustup toolchain install nightly" >&2
    exit 2
fi
if ! cargo +nightly fuzz --version >/dev/null 2>&1; then
    echo "error: cargo-fuzz is not installed; install it with: cargo install cargo-fuzz" >&2
    exit 2
fi

mkdir -p corpus/parse_event
# -max_len bounds inputs at 64 KiB, the target's message limit, so time goes
# to parsing rather than to the size check. -rss_limit_mb catches a parse
# whose memory grows with hostile input.
cargo +nightly fuzz run parse_event corpus/parse_event seeds/parse_event -- \
    -max_total_time="$seconds" -max_len=65536 -rss_limit_mb=1024 -timeout=10
