"""Write the adversarial corpus of submissions of a lab into a folder (run by the tests; also by hand).

Every case starts from the generated lab (``labs/<lab>_*.ipynb``) and the solution's answer cells, so
the corpus stays in sync with the lab. ``expected_<lab>.csv`` beside this script holds the exact
gradebook the grader must produce for it with the default sandbox (see test_corpus.py for the options).
Attacks are written as a student who has read the kit's source would write them; ``attacks.py`` holds
their code.

    python tests/grading/corpus/make_corpus.py LAB OUT_DIR
"""

from __future__ import annotations

import copy
import json
import sys
from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parents[3]
HERE = Path(__file__).resolve().parent
LABS = {"lab00": "lab00_first_bundle.ipynb", "lab01": "lab01_batch_scoring.ipynb", "lab05": "lab05_edge_onnx.ipynb",
        "lab07": "lab07_automated_deployment.ipynb"}
sys.path.insert(0, str(HERE))
import attacks  # noqa: E402  (beside this file)

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
# issue 12's weak checks on lab01 and lab05 (written by the labs engineer)
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


def _solved(lab: str) -> dict[str, str]:
    sol = nbformat.read(ROOT / "solutions" / LABS[lab], as_version=4)
    out = {}
    for cell in sol.cells:
        if "answer" in cell.metadata.get("tags", []):
            body = [ln for ln in cell.source.splitlines() if not ln.strip().startswith(("# BEGIN", "# END", "# STUB"))]
            out[cell.id] = "\n".join(body)
    return out


def _lab(answers: dict[str, str] | None = None, lab: str = "lab00") -> nbformat.NotebookNode:
    nb = nbformat.read(ROOT / "labs" / LABS[lab], as_version=4)
    for cell in nb.cells:
        if answers and cell.id in answers:
            cell.source = answers[cell.id]
    return nb


def cases_lab00() -> dict[str, nbformat.NotebookNode | bytes]:
    good = _solved("lab00")

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
    out["refusal_literal_sha256"] = with_(refusal=REFUSAL_LITERAL)  # issue 12's weak refusal check
    # answers matched by tag order when the student's cells lost their ids (copied into a new notebook)
    reordered = copy.deepcopy(_lab(good))
    for n, cell in enumerate(reordered.cells):
        cell.id = f"cell-{n}"
    reordered.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    out["new_cell_ids"] = reordered
    return out


Case = nbformat.NotebookNode | bytes | dict  # a dict: several files for one student (relative path -> case)


def escapes(lab: str) -> dict[str, Case]:
    """Attacks on the sandbox and the grader (lab00 only: the sandbox does not depend on the lab)."""
    good = _solved(lab)
    first = next(c.id for c in _lab(lab=lab).cells if "answer" in c.metadata.get("tags", []))

    def attack(code: str) -> nbformat.NotebookNode:
        return _lab({first: code + "\n" + good[first]} if lab != "lab00" else {first: code}, lab)

    out: dict[str, Case] = {}
    for name, code in attacks.ESCAPES.items():
        out[name] = attack(code)
    return out


def key_attacks(lab: str) -> dict[str, Case]:
    """Reaching the answer keys: patched collect, an input transformer, a thread swapping records."""
    out: dict[str, Case] = {}
    for name, (cell, code) in attacks.KEY_ATTACKS[lab].items():
        out[name] = _lab({cell: code}, lab)
    if lab != "lab05":  # lab05's later cells use the function this attack replaces: its row says nothing more
        out["read_solutions"] = _lab({attacks.FIRST[lab]: attacks.READ_SOLUTIONS.replace("{lab}", lab)}, lab)
    return out


def messy(lab: str) -> dict[str, Case]:
    """Careless submissions: several notebooks, odd names, old formats, broken metadata."""
    good = _solved(lab)
    data = {"answer-data": good["answer-data"]}
    out: dict[str, Case] = {}
    out["ada"] = {"ada.ipynb": _lab(lab=lab), "ada/lab00_first_bundle.ipynb": _lab(data, lab)}
    out["bob"] = {"bob/Untitled.ipynb": _lab(lab=lab), "bob/lab00_first_bundle.ipynb": _lab(data, lab)}
    out["cy"] = {"cy.ipynb": _lab(lab=lab), "cy/notes.ipynb": _lab(data, lab)}
    out["=SUM(1+1)"] = _lab(data, lab)
    out["José"] = {"Jos\u00e9.ipynb": _lab(data, lab), "Jose\u0301.ipynb": _lab(lab=lab)}
    dup = _lab(data, lab)
    cell = next(c for c in dup.cells if c.id == "answer-data")
    dup.cells.insert(dup.cells.index(cell), nbformat.v4.new_code_cell("df = None"))
    dup.cells[dup.cells.index(cell) - 1].id = "answer-data"  # a copy of the cell, kept above it
    out["duplicate_ids"] = json.dumps(dup).encode()  # raw: nbformat.write would renumber the copy
    tags = _lab(data, lab)
    for c in tags.cells:
        if c.metadata.get("tags"):
            c.metadata["tags"] = ",".join(c.metadata["tags"])  # a string, not a list
    out["tags_not_a_list"] = tags
    out["nbformat_v3"] = nbformat.writes(nbformat.convert(_lab(data, lab), 3)).encode()
    heavy = _lab(data, lab)
    for c in heavy.cells:
        if c.cell_type == "code":
            c.outputs = [nbformat.v4.new_output("stream", name="stdout", text="x" * (2 * 1024 * 1024))]
    out["big_outputs"] = heavy
    md = _lab(data, lab)
    for c in md.cells:
        if c.id == "answer-bundle":
            c.cell_type = "markdown"
            c.pop("outputs", None), c.pop("execution_count", None)
    out["answer_cell_markdown"] = md
    helper = _lab(data, lab)
    helper.cells.insert(3, nbformat.v4.new_code_cell("def helper():\n    return 42"))
    out["helper_cell_added"] = helper
    out["deep_json"] = b'{"cells": ' + b"[" * 200_000 + b"]" * 200_000 + b"}"
    return out


# lab07 (issue: a tester's dishonest student): one reason naming every rule, and a failed_check naming every
# story's check ("slice parity error"), beside the honest bounds
STUFFED_GATE = '''def _right(current, candidate):
{body}

def my_gate(current, candidate):
    passed, why = _right(current, candidate)
    return passed, why if passed else "refused: one of roc_auc / ece / slice_roc_auc / slice_rows fails"'''
STUFFED_DIAGNOSIS = '''diagnosis = {"stopped_at": record.stopped_at, "failed_check": "slice parity error",
             "serving_version": int(record.deployed_before["version"])}'''


def cases(lab: str = "lab00") -> dict[str, Case]:
    if lab == "lab00":
        return {**cases_lab00(), **escapes(lab), **key_attacks(lab), **messy(lab)}
    if lab == "lab07":  # four cases: the corpus test's CI time stays about a minute
        good = _solved(lab)
        body = "\n".join(good["answer-gate"].splitlines()[1:])
        stuffed = {**good, "answer-gate": STUFFED_GATE.format(body=body), "answer-diagnosis": STUFFED_DIAGNOSIS}
        return {"correct": _lab(good, lab), "stuffed_reasons": _lab(stuffed, lab), **key_attacks(lab)}
    good = _solved(lab)
    weak = {"lab01": ("chunks_read_whole_file", "answer-chunks", READ_WHOLE_FILE),
            "lab05": ("session_duck_half", "answer-session", DUCK_SESSION)}[lab]
    return {"correct": _lab(good, lab), "empty": _lab(lab=lab), weak[0]: _lab({**good, weak[1]: weak[2]}, lab),
            **key_attacks(lab)}


def write(folder: Path, lab: str = "lab00") -> list[Path]:
    """Write the cases; return one path per student (a folder's cases give their first file)."""
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for name, case in cases(lab).items():
        files = case if type(case) is dict else {f"{name}.ipynb": case}
        for rel, nb in files.items():
            path = folder / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            if isinstance(nb, bytes):
                path.write_bytes(nb)
            else:
                nbformat.write(nb, path)
        written.append(folder / next(iter(files)))
    return written


if __name__ == "__main__":
    for p in write(Path(sys.argv[2]), sys.argv[1]):
        print(p)
