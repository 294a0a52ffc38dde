#!/bin/sh
# Run one libFuzzer target for a bounded time over its seed corpus.
# Usage: run-fuzz.sh BINARY CORPUS_DIR SECONDS
set -eu
bin=$(readlink -f "$1") corpus=$(readlink -f "$2" 2>/dev/null || echo "$2") secs=$3
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/corpus"
[ -d "$corpus" ] && cp -r "$corpus"/. "$work/corpus/" 2>/dev/null || true
cd "$work"
exec "$bin" -max_total_time="$secs" -max_len=4096 -timeout=5 -rss_limit_mb=1024 \
     -print_final_stats=1 "$work/corpus"
