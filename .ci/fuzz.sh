#!/usr/bin/env bash
# Bounded fuzzing of the policy engine: the Graph JSON import and the device-filter parser.
# Each target runs for FUZZ_SECONDS (default 30). cargo-fuzz needs nightly flags; RUSTC_BOOTSTRAP
# lets the stable toolchain accept them. Seeds come from the policy crate's export fixtures.
set -euo pipefail
cd "$(dirname "$0")/.."

seconds="${FUZZ_SECONDS:-60}"
if ! cargo fuzz --version >/dev/null 2>&1; then
    cargo install cargo-fuzz --locked
fi

export RUSTC_BOOTSTRAP=1
corpus_root=fuzz/corpus
mkdir -p "$corpus_root/graph_import" "$corpus_root/device_filter"
cp crates/policy/tests/fixtures/entra-export/*.json crates/policy/tests/fixtures/fuzz-regressions/* "$corpus_root/graph_import/"
cp fuzz/seeds/device_filter/* "$corpus_root/device_filter/" 2>/dev/null || true

# A fixed seed and a fixed number of runs make CI's fuzzing the same on every run of the same
# code: a submission is not failed at random by a lucky find (fuzz longer, with other seeds, by
# hand: FUZZ_SEED=0 picks a random one). The time limit only caps a slow machine.
seed="${FUZZ_SEED:-1}"
for target in graph_import device_filter; do
    case "$target" in
        graph_import) runs="${FUZZ_RUNS:-200000}" ;;
        *) runs="${FUZZ_RUNS:-1000000}" ;;
    esac
    echo "fuzzing $target: seed $seed, $runs runs, at most ${seconds}s"
    (cd fuzz && cargo fuzz run "$target" --sanitizer none "corpus/$target" -- \
        -seed="$seed" -runs="$runs" -max_total_time="$seconds" -max_len=65536 -timeout=10)
done
