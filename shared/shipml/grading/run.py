"""Grade a folder of submissions: rebuild, run each in its sandbox (in parallel), judge here, write reports.

Before any submission runs the grader imports every module it will use and hashes the package and
``labs/``; before judging each row it hashes them again and refuses to judge once anything changed.
The gradebook is rewritten as each row finishes, so a crash keeps what was graded.
"""

from __future__ import annotations

import queue
import shutil
import tempfile
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, replace
from pathlib import Path

import nbformat
from tqdm.auto import tqdm

from shipml.errors import ShipmlError
from shipml.grading import hidden as hidden_mod
from shipml.grading import keys, kit, report, submission, verdicts
from shipml.grading.limits import Limits
from shipml.grading.results import SubmissionResult
from shipml.grading.runner import WorkerRun, kill_all, run_worker
from shipml.grading.sandbox import Box, choose, etc_files, slot_uids

KIT_CHANGED = "not judged: the kit or labs/ changed during the run"


@dataclass(frozen=True)
class GradeOptions:
    cell_timeout: float = 120.0
    wall_timeout: float = 900.0
    jobs: int = 2
    seed: int = 0
    sandbox: str = "auto"
    limits: Limits = Limits()
    output_cap: int = 200_000  # bytes of outputs kept per cell in the executed notebook
    kernel: str = "shipml"
    job_mib: int = 256  # size cap of a sandbox's job folder


def _run_one(lab: submission.LabLayout, sub: submission.Submission, out: Path, settings: GradeOptions,
             box: Box, uids: queue.Queue) -> WorkerRun:
    job_dir = out / "work" / lab.lab / sub.student
    shutil.rmtree(job_dir, ignore_errors=True)
    job_dir.mkdir(parents=True)
    rebuilt = job_dir / "rebuilt.ipynb"
    nbformat.write(submission.rebuild(lab, sub), rebuilt)
    answers = job_dir / "answers.jsonl"
    job = {
        "input": str(rebuilt), "output": str(job_dir / "executed.ipynb"), "answers": str(answers),
        "cwd": str(job_dir / "scratch"), "kernel": settings.kernel, "cell_timeout": settings.cell_timeout,
        "output_cap": settings.output_cap, "limits": settings.limits.to_dict(),
        "parameters": {"seed": settings.seed, "answers_path": str(answers), "grading": True},
    }
    uid = uids.get()
    try:
        return run_worker(job, job_dir, settings.wall_timeout, replace(box, uid=uid, job_mib=settings.job_mib))
    finally:
        uids.put(uid)
        if box.kind == "none":
            shutil.rmtree(job_dir / "scratch", ignore_errors=True)


def _save_executed(out: Path, lab: str, student: str, run: WorkerRun) -> None:
    executed = out / "executed" / lab / f"{student}.ipynb"
    executed.parent.mkdir(parents=True, exist_ok=True)
    executed.unlink(missing_ok=True)
    if run.notebook:
        executed.write_text(run.notebook)


def _sandbox_kind(lab_id: str, lab, settings: GradeOptions) -> str:
    """The sandbox the submissions run in; refused up front for a lab that needs what no sandbox gives
    (a Docker engine, a cluster), rather than failing every submission one by one."""
    kind = choose(settings.sandbox)
    needs = lab.requires()
    if needs and kind != "none":
        raise ShipmlError(
            f"{lab_id} needs {', '.join(needs)}, which no sandbox gives a submission: grade it with --sandbox none "
            "(unsafe: trusted submissions only)")
    return kind


def _prepare_grader(lab_id: str, lab, seed: int) -> dict[str, str]:
    """What the grader does before any submission runs: import every kit module and compute the answer key's
    references here (so nothing a submission writes can stand in for them), then fingerprint the kit and the
    labs: a row is judged only while they are unchanged."""
    kit.preimport()
    keys.warm(lab_id, seed)
    return kit.fingerprint(labs=lab.path.parent)


def grade(lab_id: str, submissions_dir: Path, out: Path, settings: GradeOptions = GradeOptions(),
          hidden_path: Path | None = None, progress: bool = True) -> list[SubmissionResult]:
    """Grade every submission in ``submissions_dir``; write gradebook, feedback and executed notebooks."""
    submissions_dir, out = Path(submissions_dir).resolve(), Path(out).resolve()
    hidden_path = Path(hidden_path).resolve() if hidden_path else None
    lab = submission.layout(lab_id)
    kind = _sandbox_kind(lab_id, lab, settings)
    before = _prepare_grader(lab_id, lab, settings.seed)
    hidden = hidden_mod.load_hidden(hidden_path)
    subs = [submission.read(s, lab_id) for s in submission.find_submissions(submissions_dir, lab_id)]
    out.mkdir(parents=True, exist_ok=True)
    book = out / "gradebook.csv"
    results: list[SubmissionResult] = []

    def finish(result: SubmissionResult) -> None:
        results.append(result)
        report.write_result(out, result)
        report.write_gradebook(book, [result])

    for s in subs:
        if s.problem:
            finish(verdicts.not_graded(s.student, lab_id, lab, s.status, s.problem, hidden, s.notes))
    runnable = [s for s in subs if not s.problem]
    bar = tqdm(total=len(subs), desc=f"grading {lab_id} ({kind})", unit="submission", disable=not progress)
    bar.update(len(subs) - len(runnable))
    slots = slot_uids(settings.jobs)
    uids: queue.Queue = queue.Queue()  # each running submission borrows one slot's uid and gives it back
    for uid in slots:
        uids.put(uid)
    with tempfile.TemporaryDirectory(prefix="shipml-kit-") as staging:
        staged_kit, staged_grader = kit.stage(Path(staging))
        box = Box(kind, staged_kit, staged_grader, etc=etc_files(Path(staging), slots))
        broken: list[str] = []
        pool = ThreadPoolExecutor(max_workers=max(1, settings.jobs))
        futures = {pool.submit(_run_one, lab, s, out, settings, box, uids): s for s in runnable}
        try:
            for future in as_completed(futures):
                s = futures[future]
                broken = broken or kit.changed(before, kit.fingerprint(labs=lab.path.parent))
                if broken:
                    for f in futures:
                        f.cancel()
                    result = verdicts.not_graded(s.student, lab_id, lab, "grader_error",
                                                 f"{KIT_CHANGED} ({', '.join(broken[:5])})", hidden)
                else:
                    result = _judge(lab, s, future, settings, hidden, out)
                finish(result)
                bar.update(1)
        except BaseException:  # Ctrl-C or SIGTERM: no sandbox outlives the grader
            for f in futures:
                f.cancel()
            kill_all()
            raise
        finally:
            pool.shutdown(wait=True)
    bar.close()
    results.sort(key=lambda r: r.student)
    return results


def _judge(lab, s, future, settings: GradeOptions, hidden, out: Path) -> SubmissionResult:
    try:
        run = future.result()
        _save_executed(out, lab.lab, s.student, run)
        result = verdicts.judge(lab, s.student, run, settings.seed, hidden)
    except Exception as exc:  # a grader bug must not lose the other students' rows
        result = verdicts.not_graded(s.student, lab.lab, lab, "grader_error", f"{type(exc).__name__}: {exc}", hidden)
    result.notes = s.notes + result.notes
    return result
