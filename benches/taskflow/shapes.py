#!/usr/bin/env python3
"""The benchmark shapes of benches/shapes/mod.rs, built and run with OpenStack
TaskFlow's serial engine; prints one JSON line per case, with the same keys
as the `bench` example.

    python shapes.py SHAPE SIZE [--repeat N]
    python shapes.py linear_chain 1000
    {"shape": "linear_chain", "size": 1000, "tasks": 1000,
     "engine": "taskflow-serial", ...}

SHAPE is one of linear_chain, fan_out_in, revert_chain:

- linear_chain: task t{i} requires v{i} and provides v{i+1} = v{i} + 1,
  with the input v0 = 0; the run must leave v{SIZE} == SIZE.
- fan_out_in: a source providing s = 0, SIZE independent workers (in an
  unordered flow) each requiring s and providing w{i} = s + 1, then a sink
  requiring all of w0..w{SIZE-1} and providing sum; the run must leave
  sum == SIZE. SIZE + 2 tasks.
- revert_chain: linear_chain whose last task fails; every task has a no-op
  revert, so the whole flow reverts and must end REVERTED.

Build is constructing the flow, `taskflow.engines.load(..., engine='serial')`
and the engine's compile(), prepare() and validate(); run is engine.run().
Before the first case, an engine is loaded and run for a one-task flow,
untimed, so that importing the engine's plugin is not counted. With
--repeat N the case runs N times in this process and the medians are
printed. Run one case per process: peak_rss_bytes is the process's
high-water mark.
"""

import json
import logging
import resource
import sys
import time

# TaskFlow logs every failure and revert at WARNING with a traceback; the
# revert_chain shape would print thousands of lines. Keep it quiet before
# TaskFlow is imported.
for _name in ("taskflow", "stevedore", "oslo_utils"):
    _logger = logging.getLogger(_name)
    _logger.addHandler(logging.NullHandler())
    _logger.setLevel(logging.CRITICAL + 1)
    _logger.propagate = False

import taskflow.engines  # noqa: E402
from taskflow import task  # noqa: E402
from taskflow.patterns import linear_flow, unordered_flow  # noqa: E402

SHAPES = ("linear_chain", "fan_out_in", "revert_chain")
USAGE = "usage: shapes.py SHAPE SIZE [--repeat N]"


class Inc(task.Task):
    """Requires one value (bound by name through `rebind`), provides it + 1."""

    def execute(self, value):
        return value + 1

    def revert(self, *args, **kwargs):
        pass


class FailLast(task.Task):
    """The last task of revert_chain: takes its input and fails."""

    def execute(self, value):
        raise RuntimeError("the last task fails")

    def revert(self, *args, **kwargs):
        pass


class Source(task.Task):
    def execute(self):
        return 0


class Sink(task.Task):
    """Sums every value it requires. The names come from `requires=[...]`;
    TaskFlow passes them as keyword arguments, hence **parts."""

    def execute(self, **parts):
        return sum(parts.values())


def linear_chain(n, fail_last):
    flow = linear_flow.Flow("linear_chain")
    for i in range(n):
        cls = FailLast if fail_last and i + 1 == n else Inc
        flow.add(cls("t%d" % i, rebind=["v%d" % i], provides="v%d" % (i + 1)))
    return flow


def fan_out_in(n):
    names = ["w%d" % i for i in range(n)]
    workers = unordered_flow.Flow("workers")
    for name in names:
        workers.add(Inc(name, rebind=["s"], provides=name))
    flow = linear_flow.Flow("fan_out_in")
    flow.add(Source("source", provides="s"))
    flow.add(workers)
    flow.add(Sink("sink", requires=names, provides="sum"))
    return flow


def build(shape, size):
    """The flow, the exact number of tasks and the inputs of `shape`."""
    if shape == "linear_chain":
        return linear_chain(size, False), size, {"v0": 0}
    if shape == "revert_chain":
        return linear_chain(size, True), size, {"v0": 0}
    if shape == "fan_out_in":
        return fan_out_in(size), size + 2, {}
    raise ValueError(shape)


def median(values):
    values = sorted(values)
    return values[len(values) // 2]


def fail(message, code=1):
    print("shapes.py: %s" % message, file=sys.stderr)
    sys.exit(code)


def parse(argv):
    positional = []
    repeat = 1
    args = iter(argv)
    for arg in args:
        if arg == "--repeat":
            value = next(args, "")
            if not value.isdigit() or int(value) < 1:
                fail("--repeat needs a positive number\n" + USAGE, 2)
            repeat = int(value)
        elif arg in ("-h", "--help"):
            print(USAGE)
            sys.exit(0)
        else:
            positional.append(arg)
    if len(positional) != 2:
        fail("expected SHAPE SIZE\n" + USAGE, 2)
    shape, size = positional
    if shape not in SHAPES:
        fail("unknown shape `%s`; the shapes are %s" % (shape, ", ".join(SHAPES)), 2)
    try:
        size = int(float(size.replace("_", "")))
    except ValueError:
        size = 0
    if size < 1:
        fail("`%s` is not a size (1000, 1e3, 1_000)" % positional[1], 2)
    return shape, size, repeat


def run_once(shape, size):
    """Builds and runs one case; returns (build_ns, run_ns, tasks)."""
    start = time.perf_counter_ns()
    flow, tasks, store = build(shape, size)
    engine = taskflow.engines.load(flow, store=store, engine="serial")
    engine.compile()
    engine.prepare()
    engine.validate()
    built = time.perf_counter_ns()

    error = None
    try:
        engine.run()
    except Exception as e:  # the revert_chain failure, re-raised by run()
        error = e
    ran = time.perf_counter_ns()

    state = engine.storage.get_flow_state()
    if shape == "revert_chain":
        if error is None or state != "REVERTED":
            fail("revert_chain did not revert: state %s, error %r" % (state, error))
        first = engine.storage.get_atom_state("t0")
        if first != "REVERTED":
            fail("revert_chain: the first task ended %s, not REVERTED" % first)
    else:
        if error is not None:
            fail("the run failed (state %s): %r" % (state, error))
        symbol = "sum" if shape == "fan_out_in" else "v%d" % size
        got = engine.storage.fetch(symbol)
        if got != size:
            fail("wrong result %s = %r, expected %d" % (symbol, got, size))
    return built - start, ran - built, tasks


def warm_up():
    """Loads an engine for a one-task flow, untimed. The first
    taskflow.engines.load() in a process finds the engine plugin through
    stevedore's entry point scan and imports the engine's modules, which
    takes about a second; that is start-up, not building."""
    flow = linear_flow.Flow("warm_up")
    flow.add(Inc("t0", rebind=["v0"], provides="v1"))
    engine = taskflow.engines.load(flow, store={"v0": 0}, engine="serial")
    engine.run()


def main(argv):
    shape, size, repeat = parse(argv)
    warm_up()
    builds, runs, tasks = [], [], 0
    for _ in range(repeat):
        build_ns, run_ns, tasks = run_once(shape, size)
        builds.append(build_ns)
        runs.append(run_ns)
    build = median(builds) / tasks
    run = median(runs) / tasks
    line = {
        "shape": shape,
        "size": size,
        "tasks": tasks,
        "engine": "taskflow-serial",
        "workers": 1,
        "build_ns_per_task": round(build),
        "run_ns_per_task": round(run),
        "total_ns_per_task": round(build + run),
        # ru_maxrss is in kilobytes on Linux.
        "peak_rss_bytes": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024,
        "repeat": repeat,
    }
    print(json.dumps(line))


if __name__ == "__main__":
    main(sys.argv[1:])
