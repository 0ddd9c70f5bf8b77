"""Lab 00 — your first model bundle: make data, train, predict, and a loader that refuses tampered bundles.

Instant feedback only (no answer key here): the grader's verdicts, with the reference data, model and
probabilities, are in ``shipml.grading.keys.lab00``.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from shipml.checks import Context, Question, Unanswered

ROWS = 20_000

# ---- 1-3: data, bundle, probabilities ------------------------------------------------------------


def collect_data(df: Any, ctx: Context) -> dict:
    from shipml.data import fingerprint

    return {"rows": len(df), "columns": [str(c) for c in df.columns], "fingerprint": fingerprint(df)}


def evaluate_data(a: dict, ctx: Context) -> tuple[bool, str]:
    from shipml.data import SCHEMA

    if a["rows"] != ROWS:
        return False, f"the frame has {a['rows']:,} rows; the exercise asks for {ROWS:,}"
    missing = [n for n in SCHEMA.names if n not in a["columns"]]
    if missing:
        return False, f"the frame lacks the feature column(s) {missing}: is it make_transactions' frame?"
    return True, f"{ROWS:,} transactions with every feature (grading also checks they are the seeded ones)"


def collect_bundle(path: Any, ctx: Context) -> dict:
    from shipml.bundle import verify_bundle

    m = verify_bundle(Path(path))
    return {"kind": m.model_kind, "backend": m.backend, "roc_auc": m.metrics.get("roc_auc", 0.0),
            "fingerprint": m.training_data.get("fingerprint", ""), "version": m.version}


def evaluate_bundle(a: dict, ctx: Context) -> tuple[bool, str]:
    if a["kind"] != "hgb":
        return False, f"the bundle holds a '{a['kind']}' model; the exercise asks for 'hgb'"
    if not a["roc_auc"] >= 0.8:
        return False, f"held-out ROC AUC is {a['roc_auc']:.3f}; a correct hgb model reaches 0.8 or more"
    return True, (f"a verified hgb bundle, held-out ROC AUC {a['roc_auc']:.3f} (grading also checks it was "
                  "trained on question 1's data)")


def collect_proba(proba: Any, ctx: Context) -> np.ndarray:
    return np.asarray(proba, dtype=np.float64)


def evaluate_proba(p: np.ndarray, ctx: Context) -> tuple[bool, str]:
    if p.shape != (5,):
        return False, f"expected 5 fraud probabilities (shape (5,)), got shape {p.shape}"
    if not np.all((p >= 0) & (p <= 1)):
        return False, "probabilities must lie between 0 and 1: which method gives probabilities?"
    if np.all(np.isin(p, (0.0, 1.0))):
        return False, "these look like labels (only 0 and 1), not probabilities"
    return True, "5 probabilities (grading compares them with the bundle's own)"


# ---- 4: a loader that refuses ---------------------------------------------------------------------
# The check hands load_or_refuse one intact copy of a small bundle and copies changed in four ways.
# Which ones the kit must refuse, and what the loaded ones must answer, is the grader's to know.

CASE_KINDS = ("intact", "model_bit_flipped", "metadata_edited", "file_added", "model_swapped_and_rehashed")
PROBE_ROWS = 3


def case_order(seed: int) -> list[str]:
    """The order in which the cases are handed to the student's function (shuffled by the seed)."""
    rng = np.random.default_rng([0, seed])
    return [CASE_KINDS[i] for i in rng.permutation(len(CASE_KINDS))]


def small_bundle_frames(seed: int):
    """Training data of the small bundle, of the model swapped in, and the rows the loaded ones score."""
    from shipml.data import make_transactions

    return (make_transactions(2_000, seed=seed + 100), make_transactions(2_000, seed=seed + 200),
            make_transactions(PROBE_ROWS, seed=seed + 300))


def make_cases(root: Path, seed: int) -> list[Path]:
    """Folders in ``case_order(seed)``: copies of one small lr bundle, changed as each kind says."""
    import joblib

    from shipml.bundle import verify_bundle, write_bundle
    from shipml.models import save_bundle, train

    train_df, other_df, _ = small_bundle_frames(seed)
    source = save_bundle(train(train_df, "lr", seed=seed), root / "source", name="fraud-lr")
    rng = np.random.default_rng([1, seed])
    folders = []
    for n, kind in enumerate(case_order(seed)):
        folder = Path(shutil.copytree(source, root / f"bundle-{n}"))
        if kind == "model_bit_flipped":
            blob = bytearray((folder / "model.joblib").read_bytes())
            blob[int(rng.integers(64, len(blob) - 64))] ^= 1 << int(rng.integers(0, 8))
            (folder / "model.joblib").write_bytes(bytes(blob))
        elif kind == "metadata_edited":
            meta = folder / "metadata.json"
            meta.write_text(meta.read_text().replace('"version": 1', '"version": 2'))
        elif kind == "file_added":
            (folder / "NOTES.txt").write_text("promoted to production by hand\n")
        elif kind == "model_swapped_and_rehashed":  # someone who can write the folder can rewrite SHA256SUMS
            joblib.dump(train(other_df, "lr", seed=seed + 1).pipeline, folder / "model.joblib")
            write_bundle(folder, verify_bundle(source))
        folders.append(folder)
    return folders


def collect_refusal(fn: Any, ctx: Context) -> dict:
    if not callable(fn):
        raise TypeError(f"answer with your function load_or_refuse, not a {type(fn).__name__}")
    _, _, probe = small_bundle_frames(ctx.seed)
    cases = []
    with tempfile.TemporaryDirectory(prefix="lab00-refusal-") as tmp:
        for folder in make_cases(Path(tmp), ctx.seed):
            try:
                out = fn(folder)
            except NotImplementedError:
                raise Unanswered from None
            except Exception as exc:  # the service crashed on this bundle: an answer to report
                message = f"{type(exc).__name__}: {exc}".replace(str(folder), "<bundle>")[:200]
                cases.append({"outcome": "raised", "message": message, "proba": []})
                continue
            if isinstance(out, str):
                cases.append({"outcome": "refused", "message": out.replace(str(folder), "<bundle>"), "proba": []})
            elif hasattr(out, "predict_proba"):
                proba = np.asarray(out.predict_proba(probe), dtype=np.float64)
                cases.append({"outcome": "loaded", "message": "", "proba": proba.reshape(len(probe), -1)[:, -1]})
            else:
                cases.append({"outcome": "other", "message": type(out).__name__, "proba": []})
    return {"cases": cases}


def evaluate_refusal(a: dict, ctx: Context) -> tuple[bool, str]:
    cases = a["cases"]
    raised = [c for c in cases if c["outcome"] == "raised"]
    if raised:
        return False, (f"for {len(raised)} of the {len(cases)} bundles your function raised "
                       f"({raised[0]['message'][:120]}): a service must answer, not crash")
    other = [c for c in cases if c["outcome"] == "other"]
    if other:
        return False, f"your function returned a {other[0]['message']}: return a predictor or a message"
    loaded = [c for c in cases if c["outcome"] == "loaded"]
    refused = [c for c in cases if c["outcome"] == "refused"]
    if not loaded:
        return False, "your function loaded none of the bundles, not even the intact one"
    if not refused:
        return False, "your function refused none of the bundles, although some were changed"
    if any(not c["message"].strip() for c in refused):
        return False, "a refusal came back with an empty message: keep the error's text"
    return True, (f"{len(loaded)} loaded, {len(refused)} refused, nothing crashed (grading checks each bundle "
                  "got the kit's own answer); which one loaded although it was changed, and why?")


QUESTIONS = [
    Question("data", 1, collect_data, evaluate_data,
             "look at the signature of make_transactions (shipml.show.source or ??): which argument makes the "
             "rows reproducible, and which value does this lab give you?", "Generate the data"),
    Question("bundle", 2, collect_bundle, evaluate_bundle,
             "train_bundle needs the frame, the model kind the question names, a folder and the seed; "
             "it returns the folder it wrote", "Train and save an hgb bundle"),
    Question("proba", 1, collect_proba, evaluate_proba,
             "the predictor interface has two prediction methods: one gives labels, one gives a column per "
             "class; which column is 'fraud'?", "Predict"),
    Question("refusal", 1, collect_refusal, evaluate_refusal,
             "call the kit's loader inside try/except, and catch only the kit's error class for bundles "
             "(see shipml.errors); the message of that error is what a refusal returns",
             "A loader that refuses tampered bundles"),
]
