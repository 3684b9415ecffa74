#!/usr/bin/env bash
# Runs OpenStack TaskFlow (serial engine) and `flow` (serial engine) on the
# same benchmark shapes and prints a markdown table with the ratio per case.
#
#   bash benches/taskflow/compare.sh [--repeat N] [SIZES...]
#
# SIZES defaults to 100 1000 2000. --repeat N (default 3) is how many times
# each case runs in its process; the medians are reported. `flow` always runs
# N times; TaskFlow runs N times up to 1,000 tasks and once above that (its
# engine is quadratic: a 2,000-task case takes minutes).
#
# TaskFlow is installed from PyPI into target/taskflow-venv (reused when it
# already imports the pinned version). The raw JSON lines of every case go
# to target/taskflow-compare.jsonl.
set -euo pipefail

TASKFLOW_VERSION=6.5.0
SHAPES=(linear_chain fan_out_in revert_chain)
DEFAULT_SIZES=(100 1000 2000)
# Above this many tasks TaskFlow runs each case once.
TASKFLOW_REPEAT_LIMIT=1000

die() {
    echo "compare.sh: $*" >&2
    exit 1
}

usage() {
    echo "usage: compare.sh [--repeat N] [SIZES...]"
}

repeat=3
sizes=()
while (($#)); do
    case "$1" in
        --repeat)
            [[ ${2:-} =~ ^[1-9][0-9]*$ ]] || die "--repeat needs a positive number"
            repeat=$2
            shift 2
            ;;
        -h | --help)
            usage
            exit 0
            ;;
        *)
            [[ $1 =~ ^[1-9][0-9]*$ ]] || { usage >&2; die "\`$1\` is not a size"; }
            sizes+=("$1")
            shift
            ;;
    esac
done
((${#sizes[@]})) || sizes=("${DEFAULT_SIZES[@]}")

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
target="${CARGO_TARGET_DIR:-$root/target}"
case "$target" in /*) ;; *) target="$root/$target" ;; esac
venv="$root/target/taskflow-venv"
py="$venv/bin/python"
out="$root/target/taskflow-compare.jsonl"
mkdir -p "$root/target"

# --- TaskFlow, in its own virtual environment --------------------------------

taskflow_ready() {
    [[ -x $py ]] && "$py" - "$TASKFLOW_VERSION" <<'EOF' 2>/dev/null
import sys
from importlib.metadata import version
import taskflow.engines  # noqa: F401
sys.exit(version("taskflow") != sys.argv[1])
EOF
}

if taskflow_ready; then
    echo "compare.sh: reusing $venv (taskflow $TASKFLOW_VERSION)" >&2
else
    command -v python3 >/dev/null || die "python3 is not installed; TaskFlow needs it (Debian: apt-get install python3 python3-venv)"
    python3 -c 'import venv, ensurepip' 2>/dev/null ||
        die "python3's venv module (with ensurepip) is missing (Debian: apt-get install python3-venv)"
    echo "compare.sh: creating $venv and installing taskflow $TASKFLOW_VERSION from PyPI" >&2
    started=$SECONDS
    rm -rf "$venv"
    python3 -m venv "$venv" || die "python3 -m venv $venv failed"
    "$py" -m pip install --quiet --disable-pip-version-check --upgrade pip ||
        echo "compare.sh: could not upgrade pip in the venv; going on with the one it has" >&2
    # The dependency set this was checked with; if it does not install here
    # (another Python version, say), fall back to taskflow alone.
    if ! "$py" -m pip install --quiet --disable-pip-version-check -r "$here/requirements.txt"; then
        echo "compare.sh: the pinned set in requirements.txt did not install; trying taskflow==$TASKFLOW_VERSION with its own dependency ranges" >&2
        "$py" -m pip install --quiet --disable-pip-version-check "taskflow==$TASKFLOW_VERSION" ||
            die "pip could not install taskflow==$TASKFLOW_VERSION into $venv (is PyPI reachable?)"
    fi
    taskflow_ready || die "taskflow $TASKFLOW_VERSION was installed into $venv but does not import"
    echo "compare.sh: venv ready in $((SECONDS - started)) s" >&2
fi

# --- flow ---------------------------------------------------------------------

command -v cargo >/dev/null || die "cargo is not installed"
echo "compare.sh: building the bench example (cargo build --release --example bench)" >&2
(cd "$root" && cargo build --release --quiet --example bench) || die "cargo build --release --example bench failed"
bench="$target/release/examples/bench"
[[ -x $bench ]] || die "the bench example is not at $bench"

# --- the cases ----------------------------------------------------------------

: >"$out"
for size in "${sizes[@]}"; do
    for shape in "${SHAPES[@]}"; do
        tf_repeat=$repeat
        ((size <= TASKFLOW_REPEAT_LIMIT)) || tf_repeat=1

        started=$SECONDS
        # Without the backtrace variables, as flow runs by default: with
        # RUST_BACKTRACE=1 it captures and symbolizes a backtrace for the
        # failure of revert_chain, which alone costs tens of milliseconds.
        flow_line="$(env -u RUST_BACKTRACE -u RUST_LIB_BACKTRACE \
            "$bench" "$shape" "$size" serial --repeat "$repeat")" ||
            die "flow failed on $shape $size"
        echo "$flow_line" >>"$out"

        tf_line="$("$py" "$here/shapes.py" "$shape" "$size" --repeat "$tf_repeat")" ||
            die "TaskFlow failed on $shape $size"
        echo "$tf_line" >>"$out"
        echo "compare.sh: $shape $size done in $((SECONDS - started)) s (flow x$repeat, TaskFlow x$tf_repeat)" >&2
    done
done

# --- the table ----------------------------------------------------------------

python3 - "$out" <<'EOF'
import json
import sys

cases = {}
order = []
with open(sys.argv[1]) as f:
    for line in f:
        r = json.loads(line)
        key = (r["shape"], r["size"])
        if key not in cases:
            cases[key] = {}
            order.append(key)
        side = "taskflow" if r["engine"].startswith("taskflow") else "flow"
        cases[key][side] = r


def ms(r, what):
    return r[what + "_ns_per_task"] * r["tasks"] / 1e6


def fmt(v):
    return "%.3f" % v if v < 10 else "%.1f" % v if v < 1000 else "%.0f" % v


print("| shape | tasks | TaskFlow build (ms) | TaskFlow run (ms) | flow build (ms) "
      "| flow run (ms) | ratio (TaskFlow total / flow total) |")
print("| --- | ---: | ---: | ---: | ---: | ---: | ---: |")
for key in order:
    tf, fl = cases[key]["taskflow"], cases[key]["flow"]
    ratio = tf["total_ns_per_task"] / max(fl["total_ns_per_task"], 1)
    print("| %s | %d | %s | %s | %s | %s | %.0fx |" % (
        key[0], fl["tasks"],
        fmt(ms(tf, "build")), fmt(ms(tf, "run")),
        fmt(ms(fl, "build")), fmt(ms(fl, "run")),
        ratio,
    ))
EOF
echo >&2
echo "compare.sh: raw JSON lines in $out" >&2
