"""Write the adversarial corpus of lab00 submissions into a folder (run by the tests; also by hand).

Every case starts from the generated lab (``labs/lab00_first_bundle.ipynb``) and the solution's answer
cells, so the corpus stays in sync with the lab. ``expected_gradebook.csv`` beside this script holds the
exact gradebook the grader must produce for it (``--jobs 2 --timeout 45 --wall-timeout 150``).

    python tests/grading/corpus/make_corpus.py OUT_DIR
"""

from __future__ import annotations

import copy
import sys
from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parents[3]
LAB = ROOT / "labs" / "lab00_first_bundle.ipynb"
SOLUTION = ROOT / "solutions" / "lab00_first_bundle.ipynb"

FAKE_PASS = 'print("✅ {q} (9/9): exactly right")'
ALWAYS_EQUAL = '''class AlwaysEqual:
    def __eq__(self, other):
        return True

    def __ne__(self, other):
        return False

proba = AlwaysEqual()'''
FORGE = '''df = make_transactions(20_000, seed=seed)
import json
from shipml.data import fingerprint
forged = {"kind": "hgb", "backend": "sklearn", "roc_auc": 0.99, "fingerprint": fingerprint(df), "version": "1"}
with open(answers_path, "a") as f:
    f.write(json.dumps({"question": "bundle", "answer": forged}) + "\\n")'''
PATCH_EVALUATE = '''df = None
from shipml import checks as _c
_c.evaluate_answer = lambda q, plain, ctx: _c.Verdict(q.id, "pass", "patched", "", q.points, q.points)'''
NOOP_CHECK = '''df = make_transactions(20_000, seed=seed)
checks.check = lambda question, answer: print(f"✅ {question}: passed")'''
STUCK = '''import signal
signal.signal(signal.SIGINT, signal.SIG_IGN)  # ignores the grader's interrupt: only the wall clock stops it
while True:
    pass'''
GIGANTIC = '''df = make_transactions(20_000, seed=seed)
for _ in range(20_000):
    print("spam " * 200)'''
MEMORY_BOMB = '''df = make_transactions(20_000, seed=seed)
hog = [bytearray(10**8) for _ in range(10**6)]  # 100 TB: RLIMIT_AS stops it with MemoryError'''
SEGFAULT = '''import ctypes
ctypes.string_at(0)'''


def _solved() -> dict[str, str]:
    sol = nbformat.read(SOLUTION, as_version=4)
    out = {}
    for cell in sol.cells:
        if "answer" in cell.metadata.get("tags", []):
            body = [ln for ln in cell.source.splitlines() if not ln.strip().startswith(("# BEGIN", "# END", "# STUB"))]
            out[cell.id] = "\n".join(body)
    return out


def _lab(answers: dict[str, str] | None = None) -> nbformat.NotebookNode:
    nb = nbformat.read(LAB, as_version=4)
    for cell in nb.cells:
        if answers and cell.id in answers:
            cell.source = answers[cell.id]
    return nb


def cases() -> dict[str, nbformat.NotebookNode | bytes]:
    good = _solved()

    def with_(**changes: str) -> nbformat.NotebookNode:
        return _lab({**good, **{f"answer-{k}": v for k, v in changes.items()}})

    out: dict[str, nbformat.NotebookNode | bytes] = {}
    out["correct"] = _lab(good)
    out["partly_correct"] = with_(bundle=good["answer-bundle"].replace('"hgb"', '"lr"'))
    out["empty"] = _lab()
    out["syntax_error"] = with_(bundle="bundle_dir = train_bundle(df, 'hgb',, workdir)")
    out["infinite_loop"] = with_(proba="while True:\n    pass")
    out["stuck_ignores_interrupt"] = with_(refusal=STUCK)
    out["memory_bomb"] = with_(data=MEMORY_BOMB)
    out["sys_exit_halfway"] = with_(proba="import sys\nsys.exit(0)")
    out["os_exit"] = with_(proba="import os\nos._exit(1)")
    out["segfault"] = with_(proba=SEGFAULT)
    out["fake_check_output"] = _lab({f"answer-{q}": f"{FAKE_PASS.format(q=q)}\n{stub}" for q, stub in
                                     [("data", "df = None"), ("bundle", "bundle_dir = None"),
                                      ("proba", "proba = None"), ("refusal", "refusal = None")]})
    edited = _lab()
    for cell in edited.cells:
        if "check" in cell.metadata.get("tags", []):
            cell.source = FAKE_PASS.format(q=cell.id.removeprefix("check-"))
    out["check_edited_to_pass"] = edited
    out["always_equal"] = with_(proba=ALWAYS_EQUAL)
    deleted = _lab(good)
    deleted.cells = [c for c in deleted.cells if "check" not in c.metadata.get("tags", [])
                     and c.id not in ("answer-refusal", "setup")]
    out["deleted_cells"] = deleted
    out["malformed_json"] = b'{"cells": [{"cell_type": "code", "source": "df = 1"'
    out["empty_file"] = b""
    out["gigantic_output"] = with_(data=GIGANTIC)
    wrong = _lab(good)
    for cell in wrong.cells:
        cell.source = cell.source.replace('checks.start("lab00"', 'checks.start("lab01"')
    out["wrong_lab"] = wrong
    out["patched_evaluate"] = with_(data=PATCH_EVALUATE, bundle="bundle_dir = None", proba="proba = None",
                                    refusal="refusal = None")
    out["forged_answers_file"] = with_(data=FORGE, bundle="bundle_dir = None", proba="proba = None",
                                       refusal="refusal = None")
    out["noop_check_function"] = with_(data=NOOP_CHECK)
    # answers matched by tag order when the student's cells lost their ids (copied into a new notebook)
    reordered = copy.deepcopy(_lab(good))
    for n, cell in enumerate(reordered.cells):
        cell.id = f"cell-{n}"
    reordered.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    out["new_cell_ids"] = reordered
    return out


def write(folder: Path) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for name, nb in cases().items():
        path = folder / f"{name}.ipynb"
        if isinstance(nb, bytes):
            path.write_bytes(nb)
        else:
            nbformat.write(nb, path)
        written.append(path)
    return written


if __name__ == "__main__":
    for p in write(Path(sys.argv[1])):
        print(p)
