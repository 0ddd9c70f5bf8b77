"""Grade a folder of submissions: rebuild, run in parallel child processes, judge here, write reports."""

from __future__ import annotations

import secrets
import shutil
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path

from tqdm.auto import tqdm

from shipml.grading import hidden as hidden_mod
from shipml.grading import report, submission, verdicts
from shipml.grading.limits import Limits
from shipml.grading.sandbox import WorkerRun, run_worker


@dataclass(frozen=True)
class Settings:
    cell_timeout: float = 120.0
    wall_timeout: float = 900.0
    jobs: int = 2
    seed: int = 0
    sandbox: str = "none"
    limits: Limits = Limits()
    output_cap: int = 200_000  # bytes of outputs kept per cell in the executed notebook
    kernel: str = "shipml"


def _run_one(lab: submission.LabLayout, sub: submission.Submission, out: Path, settings: Settings) -> WorkerRun:
    job_dir = out / "work" / lab.lab / sub.student
    shutil.rmtree(job_dir, ignore_errors=True)
    scratch = job_dir / "scratch"
    scratch.mkdir(parents=True)
    rebuilt = job_dir / "rebuilt.ipynb"
    import nbformat

    nbformat.write(submission.rebuild(lab, sub), rebuilt)
    executed = out / "executed" / lab.lab / f"{sub.student}.ipynb"
    executed.parent.mkdir(parents=True, exist_ok=True)
    executed.unlink(missing_ok=True)
    partial = job_dir / "executed.ipynb"  # inside the job folder: the only one a container can write
    answers = job_dir / f"answers-{secrets.token_hex(8)}.jsonl"
    job = {
        "input": str(rebuilt), "output": str(partial), "answers": str(answers), "cwd": str(scratch),
        "log": str(job_dir / "worker.log"), "kernel": settings.kernel, "cell_timeout": settings.cell_timeout,
        "output_cap": settings.output_cap, "limits": settings.limits.to_dict(),
        "parameters": {"seed": settings.seed, "answers_path": str(answers), "grading": True},
    }
    try:
        return run_worker(job, job_dir, settings.wall_timeout, settings.sandbox)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
        if partial.is_file() and not partial.is_symlink():
            shutil.copyfile(partial, executed)


def grade(lab_id: str, submissions_dir: Path, out: Path, settings: Settings = Settings(),
          hidden_path: Path | None = None, progress: bool = True) -> list[verdicts.SubmissionResult]:
    """Grade every submission in ``submissions_dir``; write gradebook, feedback and executed notebooks."""
    lab = submission.layout(lab_id)
    hidden = hidden_mod.load_hidden(hidden_path)
    subs = [submission.read(s, lab_id) for s in submission.find_submissions(Path(submissions_dir))]
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    results: list[verdicts.SubmissionResult] = []
    runnable = [s for s in subs if not s.problem]
    for s in subs:
        if s.problem:
            results.append(verdicts.not_graded(s.student, lab_id, lab, s.status, s.problem, hidden))
    bar = tqdm(total=len(subs), desc=f"grading {lab_id}", unit="submission", disable=not progress)
    bar.update(len(subs) - len(runnable))
    with ThreadPoolExecutor(max_workers=max(1, settings.jobs)) as pool:
        futures = {pool.submit(_run_one, lab, s, out, settings): s for s in runnable}
        for future in as_completed(futures):
            s = futures[future]
            try:
                result = verdicts.judge(lab, s.student, future.result(), settings.seed, hidden)
            except Exception as exc:  # a grader bug must not lose the other students' rows
                result = verdicts.not_graded(s.student, lab_id, lab, "grader_error",
                                             f"{type(exc).__name__}: {exc}", hidden)
            result.notes = s.notes + result.notes
            results.append(result)
            report.write_result(out, result)
            bar.update(1)
    bar.close()
    for r in results:
        if r.status in ("invalid", "wrong_lab"):
            report.write_result(out, r)
    results.sort(key=lambda r: r.student)
    report.write_gradebook(out / "gradebook.csv", results)
    return results
