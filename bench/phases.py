#!/usr/bin/env python3
"""Where the time of a WiQ run from nothing goes, phase by phase: each build given runs from
nothing on the real files (../shared/data), the builds in turn, RUNS times (default 11), with
`JOBFORGE_LOG=jobforge=debug`; prints the medians of the spans between the run's own debug
lines (milliseconds): the build (decided -> built), what the commit does before its barrier
(built -> records, config and manifest written), the barrier, and the whole run (first line ->
pruned). Each build works in a project folder of its own. SYNC=1 empties the disk's queue
(`sync`) before each run, as bench/compare.sh does; without it a run starts while the disk may
still be writing the run before, as runs one after the other do.

Usage: bench/phases.py BINARY... (release builds). Builds nothing.
"""
import datetime
import os
import shutil
import statistics
import subprocess
import sys
import tempfile

SPANS = [
    ("build", "run: decided", "run: built"),
    ("commit before barrier", "run: built", "commit: records, config and manifest written"),
    ("barrier", "commit: records, config and manifest written", "commit: durable"),
    ("whole run", None, "commit: pruned"),
]


def stamp(line):
    return datetime.datetime.strptime(line[:26], "%Y-%m-%dT%H:%M:%S.%f").timestamp() * 1000


def spans(log):
    lines = [line for line in log.splitlines() if line[:4].isdigit()]
    if not lines:
        raise SystemExit("no debug lines in the run's log:\n" + log[-2000:])

    def at(marker):
        if marker is None:
            return stamp(lines[0])
        for line in lines:
            if marker in line:
                return stamp(line)
        raise SystemExit(f"no `{marker}` in the run's log")

    return [at(end) - at(start) for _, start, end in SPANS]


def main():
    builds = sys.argv[1:]
    if not builds:
        raise SystemExit("usage: bench/phases.py BINARY...")
    for b in builds:
        if not (os.path.isfile(b) and os.access(b, os.X_OK)):
            raise SystemExit(f"not an executable: {b}")
    repo = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    runs = int(os.environ.get("RUNS", "11"))
    env = dict(os.environ, JOBFORGE_LOG="jobforge=debug",
               JOBFORGE_SOURCE_DIR=os.path.realpath(os.path.join(repo, "..", "shared", "data")))
    with tempfile.TemporaryDirectory() as work:
        projects = {}
        for n, b in enumerate(builds):
            projects[b] = os.path.join(work, f"project-{n}")
            os.makedirs(projects[b])
            shutil.copy(os.path.join(repo, "sources.yml"), projects[b])
            shutil.copytree(os.path.join(repo, "pipelines"), os.path.join(projects[b], "pipelines"))
        measured = {b: [] for b in builds}
        for _ in range(runs):
            for b in builds:
                shutil.rmtree(os.path.join(projects[b], "data"), ignore_errors=True)
                if os.environ.get("SYNC") == "1":
                    os.sync()
                run = subprocess.run([b, "--project", projects[b], "run", "pipelines"],
                                     capture_output=True, text=True, env=env)
                if run.returncode != 0:
                    raise SystemExit(f"{b} failed:\n{run.stderr[-2000:]}")
                measured[b].append(spans(run.stderr))
    print(f"WiQ from nothing, {runs} runs of each build in turn, medians (ms)"
          + (", the disk synced before each run" if os.environ.get("SYNC") == "1" else ""))
    for b in builds:
        cells = "  ".join(f"{name} {statistics.median(r[i] for r in measured[b]):6.1f}"
                          for i, (name, _, _) in enumerate(SPANS))
        print(f"{b:36s} {cells}")


if __name__ == "__main__":
    main()
