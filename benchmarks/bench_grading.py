"""Grading throughput: N submissions of lab00 with ``--jobs J`` (wall time), one of them stuck.

The submissions are the correct solution, the unsolved lab and a partly correct one, repeated; with
``--stuck`` one of them ignores interrupts and loops forever, to show that it costs one worker slot for
the wall-clock limit and never blocks the rest.

    python benchmarks/bench_grading.py --n 30 --jobs 2 --json benchmarks/results/bench_grading.json

``--sandboxes docker,bwrap,none`` grades the same submissions once per sandbox in one run (no stuck one),
to compare the seconds per submission the sandbox costs; the figures record the commit and the load.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import shutil
import tempfile
import time
from collections import Counter
from pathlib import Path

import nbformat
from shipml.timing import Measurement, describe

ROOT = Path(__file__).resolve().parent.parent


def make_submissions(folder: Path, n: int, stuck: bool) -> None:
    spec = importlib.util.spec_from_file_location("make_corpus", ROOT / "tests/grading/corpus/make_corpus.py")
    corpus = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(corpus)
    cases = corpus.cases("lab00")
    kinds = ["correct", "empty", "partly_correct"]
    folder.mkdir(parents=True)
    for i in range(n):
        kind = "stuck_ignores_interrupt" if stuck and i == 0 else kinds[i % len(kinds)]
        nbformat.write(cases[kind], folder / f"student{i:02d}_{kind}.ipynb")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=30)
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--timeout", type=float, default=60)
    parser.add_argument("--wall-timeout", type=float, default=120)
    parser.add_argument("--stuck", action=argparse.BooleanOptionalAction, default=True)
    parser.add_argument("--json", type=Path)
    parser.add_argument("--sandboxes", help="compare these sandboxes on the same submissions, e.g. docker,none")
    args = parser.parse_args()
    if args.sandboxes:
        compare(args)
        return

    from shipml.grading import GradeOptions, grade

    measurement = Measurement()
    work = Path(tempfile.mkdtemp(prefix="bench-grading-"))
    try:
        make_submissions(work / "subs", args.n, args.stuck)
        settings = GradeOptions(cell_timeout=args.timeout, wall_timeout=args.wall_timeout, jobs=args.jobs)
        started = time.perf_counter()
        results = grade("lab00", work / "subs", work / "out", settings, progress=True)
        wall = time.perf_counter() - started
    finally:
        shutil.rmtree(work, ignore_errors=True)
    per = sorted(r.seconds for r in results)
    figures = {
        "lab": "lab00", "submissions": len(results), "jobs": args.jobs, "stuck_submissions": int(args.stuck),
        "cell_timeout_s": args.timeout, "wall_timeout_s": args.wall_timeout,
        "wall_time_s": round(wall, 1), "seconds_per_submission": round(wall / len(results), 2),
        "median_notebook_s": round(per[len(per) // 2], 1), "max_notebook_s": round(per[-1], 1),
        "statuses": dict(Counter(r.status for r in results)),
    }
    print(json.dumps(measurement.write(figures, args.json, markdown=markdown), indent=1))


def markdown(figures: dict) -> str:
    table = ["| submissions | jobs | stuck | wall time | per submission | median notebook | statuses |",
             "|---|---|---|---|---|---|---|",
             f"| {figures['submissions']} | {figures['jobs']} | {figures['stuck_submissions']} "
             f"(wall limit {figures['wall_timeout_s']:g} s) | {figures['wall_time_s']} s | "
             f"{figures['seconds_per_submission']} s | {figures['median_notebook_s']} s | "
             + ", ".join(f"{k} {v}" for k, v in sorted(figures["statuses"].items())) + " |"]
    return (f"Grading lab00 with `shipml grade --jobs {figures['jobs']}`. {describe(figures['context'])}\n\n"
            + "\n".join(table) + "\n")


def compare(args: argparse.Namespace) -> None:
    """Seconds per submission with each sandbox, same submissions, one run (rounds alternate sandboxes)."""
    from shipml.grading import GradeOptions, grade

    kinds = args.sandboxes.split(",")
    measurement = Measurement()
    work = Path(tempfile.mkdtemp(prefix="bench-grading-"))
    seconds: dict[str, list[float]] = {k: [] for k in kinds}
    statuses: dict[str, Counter] = {k: Counter() for k in kinds}
    loads = []
    try:
        make_submissions(work / "subs", args.n, stuck=False)
        for round_ in range(2):  # alternate, so a change of load hits every sandbox alike
            for kind in kinds if round_ == 0 else kinds[::-1]:
                settings = GradeOptions(cell_timeout=args.timeout, wall_timeout=args.wall_timeout, jobs=args.jobs,
                                    sandbox=kind)
                started = time.perf_counter()
                results = grade("lab00", work / "subs", work / f"out-{kind}-{round_}", settings, progress=False)
                seconds[kind].append((time.perf_counter() - started) / len(results))
                statuses[kind].update(r.status for r in results)
                loads.append(os.getloadavg()[0])
    finally:
        shutil.rmtree(work, ignore_errors=True)
    figures = {
        "lab": "lab00", "submissions": args.n, "jobs": args.jobs,
        "seconds_per_submission": {k: [round(x, 2) for x in v] for k, v in seconds.items()},
        "mean_seconds_per_submission": {k: round(sum(v) / len(v), 2) for k, v in seconds.items()},
        "statuses": {k: dict(v) for k, v in statuses.items()},
        "load_average_1m": [round(x, 1) for x in loads],  # after each sandbox's run
    }
    print(json.dumps(measurement.write(figures, args.json), indent=1))


if __name__ == "__main__":
    main()
