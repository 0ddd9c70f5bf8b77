"""Write the adversarial corpus of lab00 submissions into a folder (run by the tests; also by hand).

Every case starts from the generated lab (``labs/lab00_first_bundle.ipynb``) and the solution's answer
cells, so the corpus stays in sync with the lab. ``expected_gradebook.csv`` beside this script holds the
exact gradebook the grader must produce for it (``--jobs 2 --timeout 45 --wall-timeout 150``).

    python tests/grading/corpus/make_corpus.py OUT_DIR [LAB]

``LAB`` lab01 or lab05 writes the weak-check attacks of those labs instead (a correct submission and the
attack), graded exactly as ``expected_gradebook_<lab>.csv`` says.
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
# issue 12's weak check: the refusal question passed with the literal string "sha256". Now the answer is a
# loader, judged on five seeded bundles: a function that "refuses" everything with that word earns nothing.
REFUSAL_LITERAL = '''def load_or_refuse(folder):
    return "sha256"'''


def _solved(solution: Path = SOLUTION) -> dict[str, str]:
    sol = nbformat.read(solution, as_version=4)
    out = {}
    for cell in sol.cells:
        if "answer" in cell.metadata.get("tags", []):
            body = [ln for ln in cell.source.splitlines() if not ln.strip().startswith(("# BEGIN", "# END", "# STUB"))]
            out[cell.id] = "\n".join(body)
    return out


def _lab(answers: dict[str, str] | None = None, lab: Path = LAB) -> nbformat.NotebookNode:
    nb = nbformat.read(lab, as_version=4)
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
                                      ("proba", "proba = None"), ("refusal", "load_or_refuse = None")]})
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
                                    refusal="load_or_refuse = None")
    out["forged_answers_file"] = with_(data=FORGE, bundle="bundle_dir = None", proba="proba = None",
                                       refusal="load_or_refuse = None")
    out["noop_check_function"] = with_(data=NOOP_CHECK)
    out["refusal_literal_sha256"] = with_(refusal=REFUSAL_LITERAL)
    # answers matched by tag order when the student's cells lost their ids (copied into a new notebook)
    reordered = copy.deepcopy(_lab(good))
    for n, cell in enumerate(reordered.cells):
        cell.id = f"cell-{n}"
    reordered.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    out["new_cell_ids"] = reordered
    return out


# ---- the weak-check attacks of issue 12 on lab01 and lab05 (expected rows: expected_gradebook_labNN.csv) ----

READ_WHOLE_FILE = '''def score_file_in_chunks(predictor, path, chunk_rows):
    df = pd.read_parquet(path)  # the whole file at once, then cut into chunk-sized pieces
    parts = [df.iloc[i:i + chunk_rows] for i in range(0, len(df), chunk_rows)]
    return np.concatenate([predictor.predict_proba(p)[:, 1] for p in parts]), [len(p) for p in parts]'''
DUCK_SESSION = '''hand_model = convert_sklearn(hgb_pipeline, initial_types=make_initial_types(SCHEMA),
                             options={id(hgb_pipeline): {"zipmap": False}})
real = ort.InferenceSession(hand_model.SerializeToString(), providers=["CPUExecutionProvider"])


class Duck:  # the real inputs and outputs, and 0.5 for every row
    def get_inputs(self):
        return real.get_inputs()

    def get_outputs(self):
        return real.get_outputs()

    def run(self, names, feeds):
        return [np.full((len(next(iter(feeds.values()))), 2), 0.5, dtype=np.float32)]


session = Duck()'''


def _other(lab: str) -> tuple[Path, Path]:
    name = next((ROOT / "labs").glob(f"{lab}_*.ipynb")).name
    return ROOT / "labs" / name, ROOT / "solutions" / name


def attack_cases(lab: str) -> dict[str, nbformat.NotebookNode]:
    """lab01: the chunk loop that reads the whole file; lab05: a duck-typed session answering 0.5."""
    lab_path, solution = _other(lab)
    good = _solved(solution)
    attack = {"lab01": ("chunks_read_whole_file", "answer-chunks", READ_WHOLE_FILE),
              "lab05": ("session_duck_half", "answer-session", DUCK_SESSION)}[lab]
    return {"correct": _lab(good, lab_path), attack[0]: _lab({**good, attack[1]: attack[2]}, lab_path)}


def write(folder: Path, lab: str = "lab00") -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for name, nb in (cases() if lab == "lab00" else attack_cases(lab)).items():
        path = folder / f"{name}.ipynb"
        if isinstance(nb, bytes):
            path.write_bytes(nb)
        else:
            nbformat.write(nb, path)
        written.append(path)
    return written


if __name__ == "__main__":
    for p in write(Path(sys.argv[1]), *(sys.argv[2:3] or ["lab00"])):
        print(p)
