"""``shipml grade LAB SUBMISSIONS_DIR --out DIR``: grade handed-in notebooks (instructors)."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import typer

from shipml.errors import ShipmlError


def grade(
    lab: str = typer.Argument(..., help="Lab id, e.g. lab00 (its notebook is labs/lab00_*.ipynb)."),
    submissions: Path = typer.Argument(..., help="Folder of <student>.ipynb (or <student>/<any>.ipynb)."),
    out: Path = typer.Option(..., "--out", help="Where gradebook.csv, feedback/, executed/ go."),
    jobs: int = typer.Option(2, "--jobs", min=1, help="Submissions graded at once."),
    timeout: float = typer.Option(120, "--timeout", min=1, help="Seconds one cell may run (then interrupted)."),
    wall_timeout: float = typer.Option(900, "--wall-timeout", min=5,
                                       help="Seconds the whole notebook may run (then its processes are killed)."),
    memory: int = typer.Option(4096, "--memory", min=256, help="Address-space limit per process, MiB."),
    nproc: int = typer.Option(256, "--nproc", min=16, help="Processes/threads the notebook may add."),
    hidden: Path | None = typer.Option(None, "--hidden", help="Python file defining HIDDEN checks (grader only)."),
    sandbox: str = typer.Option("auto", "--sandbox",
                                help="auto (docker if an engine answers, else bwrap), docker, bwrap, or none "
                                     "(unsafe: trusted submissions only)."),
    job_mib: int = typer.Option(256, "--job-mib", min=16, help="Size cap of each submission's job folder, MiB."),
    seed: int = typer.Option(0, "--seed", help="Seed injected into every notebook (the lab's `seed`)."),
    quiet: bool = typer.Option(False, "--quiet", help="No progress bar."),
) -> None:
    """Rebuild each submission from the lab, run it boxed in, and grade it outside the student's kernel."""
    import signal

    from shipml.grading import GradeOptions
    from shipml.grading import grade as run_grade
    from shipml.grading.limits import Limits
    from shipml.grading.run import KIT_CHANGED
    from shipml.grading.sandbox import UNSAFE, choose

    signal.signal(signal.SIGTERM, signal.default_int_handler)  # SIGTERM unwinds like Ctrl-C: sandboxes killed
    kind = choose(sandbox)
    if kind == "none":
        typer.echo(f"WARNING {UNSAFE}", err=True)
    submissions, out = submissions.resolve(), out.resolve()  # relative paths: from where you stand
    hidden = hidden.resolve() if hidden else None
    settings = GradeOptions(cell_timeout=timeout, wall_timeout=wall_timeout, jobs=jobs, seed=seed, sandbox=kind,
                        limits=Limits(memory_mib=memory, nproc=nproc), job_mib=job_mib)
    results = run_grade(lab, submissions, out, settings, hidden_path=hidden, progress=not quiet)
    counts = Counter(r.status for r in results)
    mean = sum(r.total for r in results) / len(results)
    typer.echo(f"{lab}: {len(results)} submissions graded in the {kind} sandbox, mean "
               f"{mean:.2f}/{results[0].max_total:g}; " + ", ".join(f"{k} {v}" for k, v in sorted(counts.items())))
    typer.echo(f"gradebook: {out / 'gradebook.csv'}  feedback: {out / 'feedback' / lab}/  "
               f"executed: {out / 'executed' / lab}/")
    if any(r.detail.startswith(KIT_CHANGED) for r in results):
        raise ShipmlError("the kit or labs/ changed while grading: rows after that were not judged "
                          "(see the gradebook's detail); restore the checkout and grade again")
    broken = counts["kernel_died"] + counts["grader_error"]
    if broken * 2 > len(results):
        raise ShipmlError(f"{broken} of {len(results)} rows are kernel_died/grader_error: the grader, not the "
                          f"students, is probably at fault; see {out / 'work' / lab}/*/worker.log")
