#!/usr/bin/env bash
# Compile-time cost of `flow!`: generates crates holding a linear chain of N
# tasks (each needs the previous task's output and the flow input `step`) and
# times a clean debug build of that crate, without and with the `flow!` call.
#
#   benches/compile-time/run.sh            # N = 100, 1000, 5000
#   benches/compile-time/run.sh 100 1000   # chosen sizes
#
# Dependencies are built once first and are not part of the times. Prints one
# line per size: tasks, seconds without, seconds with, ratio.
set -euo pipefail

root="$(cd "$(dirname "$0")/../.." && pwd)"
work="${COMPILE_TIME_DIR:-$root/target/compile-time}"
sizes=("$@")
[ ${#sizes[@]} -eq 0 ] && sizes=(100 1000 5000)
mkdir -p "$work"
export CARGO_TARGET_DIR="$work/target"

generate() {
    local n=$1 dir=$2
    mkdir -p "$dir/src"
    cat > "$dir/Cargo.toml" <<TOML
[package]
name = "chain-$n"
version = "0.0.0"
edition = "2024"
publish = false

[features]
checked = []

[dependencies]
flow = { path = "$root" }

[workspace]
TOML
    {
        echo '#![allow(missing_docs)]'
        echo 'use flow::task;'
        echo
        echo '#[task(provides = v0)]'
        echo 'pub fn t0(start: &u64, step: &u64) -> u64 { start + step }'
        for ((i = 1; i < n; i++)); do
            echo "#[task(provides = v$i)]"
            echo "pub fn t$i(v$((i - 1)): &u64, step: &u64) -> u64 { v$((i - 1)) + step }"
        done
        echo
        echo '#[cfg(feature = "checked")]'
        echo "pub fn chain() -> flow::TypedFlow<(u64, u64), (u64,)> {"
        echo "    flow::flow! {"
        echo "        chain(start: u64, step: u64) -> (v$((n - 1)): u64) {"
        for ((i = 0; i < n; i++)); do
            echo "            t$i,"
        done
        echo "        }"
        echo "    }"
        echo "}"
    } > "$dir/src/lib.rs"
}

build_time() {
    local dir=$1 features=$2
    # Warm the dependencies, then time the crate alone.
    (cd "$dir" && cargo build --quiet $features >/dev/null 2>&1 || cargo build $features)
    touch "$dir/src/lib.rs"
    local start end
    start=$(date +%s.%N)
    (cd "$dir" && cargo build --quiet $features)
    end=$(date +%s.%N)
    echo "$end - $start" | bc
}

printf '%-8s %-14s %-14s %s\n' tasks without_s with_s ratio
[ -n "${GENERATE_ONLY:-}" ] && { for n in "${sizes[@]}"; do generate "$n" "$work/chain-$n"; done; exit 0; }
for n in "${sizes[@]}"; do
    dir="$work/chain-$n"
    generate "$n" "$dir"
    without=$(build_time "$dir" "")
    with=$(build_time "$dir" "--features checked")
    ratio=$(echo "scale=2; $with / $without" | bc)
    printf '%-8s %-14.2f %-14.2f %s\n' "$n" "$without" "$with" "$ratio"
done
