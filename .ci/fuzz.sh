#!/usr/bin/env bash
# Bounded fuzzing of the policy engine: the Graph JSON import and the device-filter parser.
# Each target runs for FUZZ_SECONDS (default 30). cargo-fuzz needs nightly flags; RUSTC_BOOTSTRAP
# lets the stable toolchain accept them. Seeds come from the policy crate's export fixtures.
set -euo pipefail
cd "$(dirname "$0")/.."

seconds="${FUZZ_SECONDS:-30}"
if ! cargo fuzz --version >/dev/null 2>&1; then
    cargo install cargo-fuzz --locked
fi

export RUSTC_BOOTSTRAP=1
corpus_root=fuzz/corpus
mkdir -p "$corpus_root/graph_import" "$corpus_root/device_filter"
cp crates/policy/tests/fixtures/entra-export/*.json "$corpus_root/graph_import/"
cp fuzz/seeds/device_filter/* "$corpus_root/device_filter/" 2>/dev/null || true

for target in graph_import device_filter; do
    echo "fuzzing $target for ${seconds}s"
    (cd fuzz && cargo fuzz run "$target" --sanitizer none "corpus/$target" -- \
        -max_total_time="$seconds" -max_len=65536 -timeout=10)
done
