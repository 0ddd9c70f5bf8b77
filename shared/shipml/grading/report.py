"""What the grader writes: ``gradebook.csv`` (one row per student and lab), feedback, full results.

Re-running replaces a student's row for that lab instead of adding one. Feedback is Markdown built
from the results; hidden checks appear only as "hidden check N: points", never with their message.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterable
from pathlib import Path

from shipml.grading.results import SubmissionResult

FIXED_HEAD = ["student", "lab"]
FIXED_TAIL = ["total", "max_total", "status", "detail"]
ICON = {"pass": "✅", "fail": "❌", "error": "💥", "timeout": "⏱️", "not_run": "⏭️", "kernel_died": "☠️",
        "exited": "🚪"}


FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def _points(x: float) -> str:
    return f"{x:g}"


def cell(text: str) -> str:
    """A CSV cell a spreadsheet shows as text: a leading ``= + - @`` (a formula) gets a ``'`` in front."""
    return f"'{text}" if text.startswith(FORMULA_START) else text


def row(result: SubmissionResult) -> dict[str, str]:
    out = {"student": cell(result.student), "lab": result.lab}
    for q in result.questions:
        out[q.id] = _points(q.points)
        out[f"{q.id}_status"] = q.status
    for q in result.hidden:
        out[f"hidden_{q.id}"] = _points(q.points)
        out[f"hidden_{q.id}_status"] = q.status
    out.update(total=_points(result.total), max_total=_points(result.max_total), status=result.status,
               detail=cell(result.detail.replace("\n", " ")[:300]))
    return out


def write_gradebook(path: Path, results: Iterable[SubmissionResult]) -> Path:
    """Merge ``results`` into ``path``: rows keyed by (student, lab), sorted, columns unioned."""
    rows: dict[tuple[str, str], dict[str, str]] = {}
    columns: list[str] = []
    if path.exists() and path.stat().st_size:
        with path.open(newline="") as f:
            reader = csv.DictReader(f)
            columns = [c for c in (reader.fieldnames or []) if c not in FIXED_HEAD + FIXED_TAIL]
            for r in reader:
                rows[(r["student"], r["lab"])] = r
    for result in results:
        r = row(result)
        rows[(r["student"], result.lab)] = r
        columns += [c for c in r if c not in FIXED_HEAD + FIXED_TAIL and c not in columns]
    fields = FIXED_HEAD + columns + FIXED_TAIL
    tmp = path.with_suffix(".csv.tmp")
    with tmp.open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=fields, restval="", lineterminator="\n")
        writer.writeheader()
        for key in sorted(rows, key=lambda k: (k[1], k[0])):
            writer.writerow({k: rows[key].get(k, "") for k in fields})
    tmp.replace(path)
    return path


def feedback_markdown(result: SubmissionResult) -> str:
    lines = [f"# {result.lab} · feedback for {result.student}", "",
             f"**Score: {_points(result.total)} / {_points(result.max_total)}** · status: `{result.status}`", ""]
    if result.status in ("invalid", "wrong_lab", "ambiguous", "grader_error"):
        lines += [f"Your submission was not run: {result.detail}.", ""]
    elif result.status in ("timeout", "exited", "kernel_died"):
        after = (" Questions after that point were not run." if any(q.status == "not_run" for q in result.questions)
                 else "")
        lines += [f"Grading hit a problem: {result.detail}.{after}", ""]
    elif result.status == "tampered":
        lines += ["Some answers were not exported by their check cell, so they were not counted. Answer in "
                  "the answer cells, and leave the check cells as they are.", ""]
    lines += ["| question | points | result |", "|---|---|---|"]
    for q in result.questions:
        lines.append(f"| {q.title} | {_points(q.points)} / {_points(q.max_points)} | {ICON.get(q.status, '')} "
                     f"{q.status} |")
    for n, q in enumerate(result.hidden, 1):
        lines.append(f"| hidden check {n} | {_points(q.points)} / {_points(q.max_points)} | "
                     f"{ICON.get(q.status, '')} {q.status} |")
    lines.append("")
    for q in result.questions:
        if q.status == "pass":
            continue
        lines += [f"### {q.title}", "", f"{ICON.get(q.status, '')} {q.message or q.status}"]
        if q.hint:
            lines.append(f"\n*Hint:* {q.hint}")
        lines.append("")
    if result.notes:
        lines += ["## Notes from the grader", ""] + [f"- {n}" for n in result.notes] + [""]
    if result.hidden:
        lines += ["Hidden checks test your answers on cases you have not seen; their details stay with "
                  "your instructor.", ""]
    return "\n".join(lines)


def write_result(out: Path, result: SubmissionResult) -> None:
    """Full results (instructor only: hidden messages included) and the student's feedback."""
    (out / "results" / result.lab).mkdir(parents=True, exist_ok=True)
    (out / "feedback" / result.lab).mkdir(parents=True, exist_ok=True)
    (out / "results" / result.lab / f"{result.student}.json").write_text(json.dumps(result.to_dict(), indent=1))
    (out / "feedback" / result.lab / f"{result.student}.md").write_text(feedback_markdown(result))
