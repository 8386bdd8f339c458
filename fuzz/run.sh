#!/usr/bin/env bash
# Runs every cargo-fuzz target for FUZZ_SECONDS (default 30) each, starting
# from the checked-in seeds in fuzz/seeds/<target>. Exits non-zero if any
# target crashes; the reproducer lands in fuzz/artifacts/<target>/.
#
#   FUZZ_SECONDS=20 bash fuzz/run.sh            # all targets
#   bash fuzz/run.sh jwk                        # only the named targets
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

seconds="${FUZZ_SECONDS:-30}"
targets=("$@")
if [ "${#targets[@]}" -eq 0 ]; then
    targets=(jws_compact jws_json jwk mime smtp_session checkpoint_note m365 jmap_api)
fi

if ! cargo fuzz --version >/dev/null 2>&1; then
    echo "== installing cargo-fuzz"
    cargo install cargo-fuzz --locked
fi

# cargo-fuzz passes nightly-only -Z flags (sanitizers, sancov); this lets the
# stable toolchain accept them.
export RUSTC_BOOTSTRAP=1

failed=()
for target in "${targets[@]}"; do
    seeds="fuzz/seeds/$target"
    corpus="fuzz/corpus/$target"
    if [ ! -d "$seeds" ]; then
        echo "== no seeds for $target at $seeds" >&2
        exit 2
    fi
    mkdir -p "$corpus"
    cp -f "$seeds"/* "$corpus"/
    echo "== fuzzing $target for ${seconds}s"
    start=$SECONDS
    if cargo fuzz run "$target" "$corpus" -- \
        -max_total_time="$seconds" -max_len=16384 -rss_limit_mb=2048; then
        echo "== $target: no crash ($((SECONDS - start))s including build)"
    else
        echo "== $target: FAILED (see fuzz/artifacts/$target/)" >&2
        failed+=("$target")
    fi
done

if [ "${#failed[@]}" -ne 0 ]; then
    echo "== crashed: ${failed[*]}" >&2
    exit 1
fi
echo "== all targets ran ${seconds}s without a crash: ${targets[*]}"
