#!/usr/bin/env bash
# Runs the `bench` example on every shape of the performance plan at every
# size, with the serial and the parallel (2 worker threads) engine, one process per
# case (peak RSS is the process's high-water mark), and prints a markdown
# table of the figures per task followed by the checks against the bar.
#
# usage: benches/run-shapes.sh [--repeat N] [--quick] [--engine serial|parallel|both] [--max N] [--pairs N] [--keep-memory] [SHAPE...]
#
#   --repeat N   runs of each case in its process, medians reported
#                (default: 25 up to 10,000 tasks, whose runs take
#                milliseconds and drift most between runs; 5 up to 100,000;
#                3 above)
#   --quick      only the sizes up to 10,000 tasks, to try the script
#   --engine E   serial, parallel or both (default both)
#   --max N      atoms in flight at once for the parallel engine (default
#                256, shared by its 2 worker threads, each taking up to 128
#                at a time under the scheduler's lock)
#   --pairs N    for the parallel speedup, N more processes of each engine
#                on `embarrassing` at its largest size, serial and parallel
#                alternating, and the median of the N ratios (default 5;
#                0 takes the ratio of the table's two rows alone); after
#                each pair, one process measures the host's ceiling: the
#                same arithmetic in 1 and in 2 plain threads, no engine
#   --keep-memory  mimalloc keeps the memory a run frees for the next run
#                in the process (MIMALLOC_PURGE_DELAY=-1) instead of giving
#                it back to the kernel after a few milliseconds: the repeats
#                then measure the engine on memory it already has, where by
#                default each one faults its memory in again
#   SHAPE...     only these shapes (linear_chain binary_tree fan_out_in
#                wavefront embarrassing revert_chain)
#
# The table goes to stdout, progress to stderr, and the raw JSON lines of the
# example to target/shapes.jsonl, those of the speedup's pairs to
# target/speedup.jsonl (under CARGO_TARGET_DIR if set).
# RUST_BACKTRACE and RUST_LIB_BACKTRACE are unset for the runs.
set -euo pipefail

usage() {
    sed -n '7,29s/^# \{0,1\}//p' "$0"
}

all_shapes=(linear_chain binary_tree fan_out_in wavefront embarrassing revert_chain)

sizes_of() {
    case "$1" in
        linear_chain) echo 1000 10000 100000 1000000 ;;
        binary_tree) echo 1024 4096 16384 65536 262144 1048576 ;;
        fan_out_in) echo 1000 10000 100000 ;;
        wavefront) echo 1024 4096 16384 65536 262144 1048576 ;;
        embarrassing) echo 1000 10000 100000 ;;
        revert_chain) echo 1000 10000 100000 ;;
    esac
}

repeat=""
pairs=5
quick=0
engines=(serial parallel)
max=256
shapes=()
while [[ $# -gt 0 ]]; do
    case "$1" in
        --repeat)
            [[ $# -ge 2 && "$2" =~ ^[1-9][0-9]*$ ]] || { echo "run-shapes: --repeat needs a positive number" >&2; exit 2; }
            repeat="$2"
            shift 2
            ;;
        --quick)
            quick=1
            shift
            ;;
        --keep-memory)
            export MIMALLOC_PURGE_DELAY=-1
            shift
            ;;
        --pairs)
            [[ $# -ge 2 && "$2" =~ ^[0-9]+$ ]] || { echo "run-shapes: --pairs needs a number" >&2; exit 2; }
            pairs="$2"
            shift 2
            ;;
        --max)
            [[ $# -ge 2 && "$2" =~ ^[1-9][0-9]*$ ]] || { echo "run-shapes: --max needs a positive number" >&2; exit 2; }
            max="$2"
            shift 2
            ;;
        --engine)
            case "${2:-}" in
                serial) engines=(serial) ;;
                parallel) engines=(parallel) ;;
                both) engines=(serial parallel) ;;
                *) echo "run-shapes: --engine is serial, parallel or both" >&2; exit 2 ;;
            esac
            shift 2
            ;;
        -h | --help)
            usage
            exit 0
            ;;
        -*)
            echo "run-shapes: unknown option $1" >&2
            usage >&2
            exit 2
            ;;
        *)
            if [[ " ${all_shapes[*]} " != *" $1 "* ]]; then
                echo "run-shapes: unknown shape $1; the shapes are ${all_shapes[*]}" >&2
                exit 2
            fi
            shapes+=("$1")
            shift
            ;;
    esac
done
if [[ ${#shapes[@]} -eq 0 ]]; then
    shapes=("${all_shapes[@]}")
fi

cd "$(dirname "$0")/.."
target="${CARGO_TARGET_DIR:-target}"
echo "run-shapes: cargo build --release --example bench" >&2
cargo build --release --example bench >&2
bench="$target/release/examples/bench"
out="$target/shapes.jsonl"
paired="$target/speedup.jsonl"
# A failing task captures and formats a backtrace when RUST_BACKTRACE or
# RUST_LIB_BACKTRACE asks for one (tens of MB and milliseconds in
# revert_chain): measure the default, without.
unset RUST_BACKTRACE RUST_LIB_BACKTRACE
: >"$out"
: >"$paired"

failed=()
# Runs one case of the bench example and appends its line to file $1;
# a failure is noted under the name $2.
run_case() {
    local file="$1" name="$2" shape="$3" size="$4" engine="$5" n="$6" line
    local args=("$shape" "$size" "$engine" --repeat "$n")
    if [[ $engine == parallel ]]; then
        args+=(--workers 2 --max "$max")
    elif [[ $engine == ceiling ]]; then
        args=("$shape" "$size" --ceiling --repeat "$n" --workers 2)
    fi
    if line="$("$bench" "${args[@]}")"; then
        echo "$line" >>"$file"
    else
        echo "run-shapes: $name FAILED" >&2
        failed+=("$name")
    fi
}

for shape in "${shapes[@]}"; do
    for size in $(sizes_of "$shape"); do
        if [[ $quick -eq 1 && $size -gt 10000 ]]; then
            continue
        fi
        n="$repeat"
        if [[ -z "$n" ]]; then
            if [[ $size -le 10000 ]]; then
                n=25
            elif [[ $size -le 100000 ]]; then
                n=5
            else
                n=3
            fi
        fi
        for engine in "${engines[@]}"; do
            echo "run-shapes: $shape $size $engine (repeat $n)" >&2
            run_case "$out" "$shape/$size/$engine" "$shape" "$size" "$engine" "$n"
        done
    done
done

# The speedup compares two processes; on a shared host their speed drifts
# by more than the margin to the bar between one process and the next, so
# the engines alternate and each ratio is taken within one pair.
if [[ $pairs -gt 0 && " ${shapes[*]} " == *" embarrassing "* && ${#engines[@]} -eq 2 ]]; then
    size=100000
    if [[ $quick -eq 1 ]]; then size=10000; fi
    for p in $(seq "$pairs"); do
        echo "run-shapes: speedup pair $p of $pairs (embarrassing $size)" >&2
        for engine in serial parallel ceiling; do
            run_case "$paired" "speedup/$p/$engine" embarrassing "$size" "$engine" 5
        done
    done
fi

python3 - "$out" "$paired" "${all_shapes[@]}" <<'EOF'
import json
import os
import sys

path, paired, order = sys.argv[1], sys.argv[2], sys.argv[3:]
rows = [json.loads(l) for l in open(path) if l.strip()]
pairs = [json.loads(l) for l in open(paired) if l.strip()]
ceilings = sorted(r["ceiling"] for r in pairs if r["engine"] == "none")
pairs = [r for r in pairs if r["engine"] != "none"]
rank = {s: i for i, s in enumerate(order)}
rows.sort(key=lambda r: (rank.get(r["shape"], len(order)), r["tasks"], r["engine"] != "serial"))


def num(x):
    return f"{x:,.0f}"


print("| shape | tasks | engine | build ns/task | run ns/task | teardown ns/task | total ns/task | peak RSS bytes/task |")
print("|---|---:|---|---:|---:|---:|---:|---:|")
for r in rows:
    print(
        f"| {r['shape']} | {num(r['tasks'])} | {r['engine']} | {num(r['build_ns_per_task'])} "
        f"| {num(r['run_ns_per_task'])} | {num(r.get('teardown_ns_per_task', 0))} "
        f"| {num(r['total_ns_per_task'])} "
        f"| {num(r['peak_rss_bytes'] / r['tasks'])} |"
    )

# (shape, engine) -> {size: row}
by = {}
for r in rows:
    by.setdefault((r["shape"], r["engine"]), {})[r["size"]] = r


def sizes(shape, engine="serial"):
    return sorted(by.get((shape, engine), {}))


print()
print("| check | size | value | bar | verdict |")
print("|---|---:|---:|---|---|")


def line(check, size, value, bar, ok):
    if value is None:
        print(f"| {check} | {size} | n/a | {bar} | not measured |")
    else:
        print(f"| {check} | {num(size)} | {value} | {bar} | {'met' if ok else 'not met'} |")


# The bar is build + run; C++ Taskflow's own figures per shape are given
# beside it (performance.md).
taskflow = {"linear_chain": 200, "binary_tree": 250, "wavefront": 300}
for shape, theirs in taskflow.items():
    s = sizes(shape)
    check = f"{shape}: serial build + run ns/task at the largest size"
    bar = f"<= 200 (C++ Taskflow: {theirs})"
    if not s:
        line(check, "", None, bar, False)
        continue
    r = by[(shape, "serial")][s[-1]]
    v = r["build_ns_per_task"] + r["run_ns_per_task"]
    verdict = "met" if v <= 200 else "not met"
    print(f"| {check} | {num(s[-1])} | {num(v)} | {bar} | {verdict}; {v / theirs:.2f}x C++ Taskflow's |")

for shape in order:
    s = sizes(shape)
    if len(s) < 2:
        line(f"{shape}: serial total ns/task, largest / smallest size", "", None, "<= 1.5", False)
        continue
    small = by[(shape, "serial")][s[0]]["total_ns_per_task"]
    large = by[(shape, "serial")][s[-1]]["total_ns_per_task"]
    ratio = large / small
    check = f"{shape}: serial total ns/task at {s[-1]:,} / at {s[0]:,}"
    line(check, s[-1], f"{ratio:.2f}", "<= 1.5", ratio <= 1.5)

common = sorted(set(sizes("embarrassing")) & set(sizes("embarrassing", "parallel")))
check = "embarrassing: serial run / parallel run at the largest size"
ratios = sorted(
    s["run_ns_per_task"] / p["run_ns_per_task"]
    for s, p in zip(pairs[0::2], pairs[1::2])
    if s["engine"] == "serial" and p["engine"] == "parallel"
)
if ratios:
    median = ratios[len(ratios) // 2]
    check = f"embarrassing: serial run / parallel run, median of {len(ratios)} alternating pairs"
    line(
        check,
        pairs[0]["size"],
        f"{median:.2f} ({ratios[0]:.2f}-{ratios[-1]:.2f})",
        ">= 1.8",
        median >= 1.8,
    )
    if ceilings:
        top = ceilings[len(ceilings) // 2]
        print(
            f"| embarrassing: the same arithmetic, no engine, 2 plain threads / 1 "
            f"(this host's ceiling), median of {len(ceilings)} processes | {num(pairs[0]['size'])} "
            f"| {top:.2f} ({ceilings[0]:.2f}-{ceilings[-1]:.2f}) | (for reference) | "
            f"the engine's speedup is {median / top:.2f} of it |"
        )
elif common:
    size = common[-1]
    ratio = (
        by[("embarrassing", "serial")][size]["run_ns_per_task"]
        / by[("embarrassing", "parallel")][size]["run_ns_per_task"]
    )
    line(check, size, f"{ratio:.2f}", ">= 1.8", ratio >= 1.8)
else:
    line(check, "", None, ">= 1.8", False)

common = sorted(sizes("revert_chain"))
# The bench splits a revert_chain run at the failure of its last task: the
# forward run of the chain, then its revert, in the same run.
check = "revert / forward: revert_chain revert_ns_per_task / forward_ns_per_task, serial"
if common:
    size = common[-1]
    row = by[("revert_chain", "serial")][size]
    ratio = row["revert_ns_per_task"] / row["forward_ns_per_task"]
    line(check, size, f"{ratio:.2f} ({row['revert_ns_per_task']:.0f} / {row['forward_ns_per_task']:.0f} ns)", "<= 1.0", ratio <= 1.0)
else:
    line(check, "", None, "<= 1.0", False)

if os.environ.get("MIMALLOC_PURGE_DELAY") == "-1":
    print()
    print("Memory kept between the runs of a process (`--keep-memory`).")
EOF

echo "run-shapes: raw lines in $out and $paired" >&2
if [[ ${#failed[@]} -gt 0 ]]; then
    echo "run-shapes: failed cases: ${failed[*]}" >&2
    exit 1
fi
