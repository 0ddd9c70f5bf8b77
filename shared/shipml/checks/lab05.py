"""Lab 05 — edge deployment with ONNX: typed inputs, feeds, repairing an export, parity, edge bundles,
int8 quantization, and a device that installs only verified updates."""

from __future__ import annotations

import shutil
import tempfile
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

from shipml.checks import Context, Question, Unanswered

FEED_ROWS = 40
SESSION_ROWS = 100


def _schema():
    from shipml.data import SCHEMA

    return SCHEMA


# ---- 1. input types -------------------------------------------------------------------------------

def collect_input_types(fn: Any, ctx: Context) -> list:
    types = fn(_schema())
    return [[str(name), type(t).__name__, [None if d is None else int(d) for d in t.shape]] for name, t in types]


def evaluate_input_types(got: list, ctx: Context) -> tuple[bool, str]:
    schema = _schema()
    names = [g[0] for g in got]
    if names != schema.names:
        return False, f"inputs are {names}; expected one per feature, in schema order: {schema.names}"
    for name, _kind, shape in got:
        if shape != [None, 1]:
            return False, f"'{name}' has shape {shape}: how many rows will a device send, and how many columns?"
    return True, "one named input per feature, any number of rows (grading also checks each tensor type)"


# ---- 2. feeds ---------------------------------------------------------------------------------------

def _feed_rows(seed: int):
    from shipml.data import make_transactions

    return make_transactions(FEED_ROWS, seed=1000 + seed)


def collect_feeds(fn: Any, ctx: Context) -> dict:
    feeds = fn(_feed_rows(ctx.seed))
    out = {}
    for name, value in dict(feeds).items():
        arr = np.asarray(value)
        values = ([str(v) for v in arr.ravel()] if arr.dtype.kind in "OUS"
                  else arr.astype(np.float64).ravel())
        out[str(name)] = {"dtype": str(arr.dtype), "kind": arr.dtype.kind, "shape": list(arr.shape), "values": values}
    return out


def evaluate_feeds(got: dict, ctx: Context) -> tuple[bool, str]:
    schema = _schema()
    if sorted(got) != sorted(schema.names):
        return False, f"feeds have keys {sorted(got)}; expected exactly the features {schema.names}"
    for f in schema.features:
        if got[f.name]["shape"] != [FEED_ROWS, 1]:
            return False, f"'{f.name}' has shape {got[f.name]['shape']}; the graph wants ({FEED_ROWS}, 1)"
    return True, (f"{len(schema.names)} inputs of shape ({FEED_ROWS}, 1) (grading also checks their dtypes and "
                  "values)")


# ---- 3. repair an export ---------------------------------------------------------------------------
# The check runs the student's session on rows it makes from the seed; whether the answers are the
# model's is for the grader to say (shipml.grading.keys.lab05 holds the reference model).

def session_rows(seed: int):
    from shipml.data import make_transactions

    return make_transactions(SESSION_ROWS, seed=2000 + seed)


def collect_session(session: Any, ctx: Context) -> dict:
    inputs = [[str(i.name), str(i.type)] for i in session.get_inputs()]
    outputs = [str(o.name) for o in session.get_outputs()]
    result: dict[str, Any] = {"inputs": inputs, "outputs": outputs, "module": type(session).__module__}
    if "probabilities" in outputs:
        rows = session_rows(ctx.seed)
        feeds = {}
        for name, kind in inputs:
            column = rows[name] if name in rows else rows.iloc[:, 0]
            feeds[name] = (column.astype(str).to_numpy(dtype=object) if kind == "tensor(string)"
                           else column.to_numpy(dtype=np.float64 if kind == "tensor(double)" else np.float32)
                           ).reshape(-1, 1)
        proba = session.run(["probabilities"], feeds)[0]
        result["proba"] = np.asarray(proba, dtype=np.float64)
        result["proba_dtype"] = str(np.asarray(proba).dtype)
    return result


def evaluate_session(got: dict, ctx: Context) -> tuple[bool, str]:
    schema = _schema()
    names = [i[0] for i in got["inputs"]]
    if names != schema.names:
        return False, f"the graph's inputs are {names}: which input types did the conversion get?"
    if any(kind == "tensor(double)" for _, kind in got["inputs"]):
        return False, "the graph takes float64 inputs: the device sends float32 (question 1's types)"
    if "probabilities" not in got["outputs"]:
        return False, (f"the graph's outputs are {got['outputs']}: a device wants a plain tensor of probabilities, "
                       "not a list of dicts; which converter option makes that?")
    p = got["proba"]
    if p.shape != (SESSION_ROWS, 2) or got["proba_dtype"] != "float32":
        return False, (f"probabilities have shape {p.shape} and dtype {got['proba_dtype']}; "
                       f"expected ({SESSION_ROWS}, 2) float32")
    if not (np.all((p >= 0) & (p <= 1)) and np.allclose(p.sum(axis=1), 1, atol=1e-5)):
        return False, "the rows of 'probabilities' are not probability distributions"
    if float(np.ptp(p[:, 1])) == 0.0:
        return False, f"the graph gives the same probability to all {SESSION_ROWS} rows"
    return True, ("typed inputs in, a plain probability tensor out (grading compares the probabilities with "
                  "the hgb model's own on its rows)")


# ---- 4. parity --------------------------------------------------------------------------------------

def _parity_case(seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng([5, seed])
    p1 = rng.uniform(0, 1, 60)
    ref = np.column_stack([1 - p1, p1])
    q1 = np.clip(p1 + rng.normal(0, 1e-4, 60), 0, 1)
    flips = rng.choice(60, 3, replace=False)
    q1[flips] = 1 - p1[flips]
    return ref, np.column_stack([1 - q1, q1]).astype(np.float32)


def collect_parity(fn: Any, ctx: Context) -> dict:
    ref, cand = _parity_case(ctx.seed)
    got = fn(ref.copy(), cand.copy())
    return {"max_abs_diff": float(got["max_abs_diff"]), "label_flips": int(got["label_flips"])}


def evaluate_parity(got: dict, ctx: Context) -> tuple[bool, str]:
    if not got["max_abs_diff"] >= 0:
        return False, f"max_abs_diff is {got['max_abs_diff']}: a largest absolute difference is never negative"
    if not 0 <= got["label_flips"] <= 60:
        return False, f"label_flips is {got['label_flips']} for 60 rows: it counts rows"
    if got["max_abs_diff"] > 1:
        return False, "two probabilities differ by at most 1: is max_abs_diff an absolute difference?"
    return True, "a difference and a count (grading checks both values on its own case)"


# ---- 5. the edge bundle -----------------------------------------------------------------------------

def collect_edge_bundle(path: Any, ctx: Context) -> dict:
    from shipml.bundle import verify_bundle

    m = verify_bundle(Path(path))
    return {"backend": m.backend, "kind": m.model_kind, "files": sorted(p.name for p in Path(path).iterdir()),
            "parity": m.extra.get("parity", {}), "opset": m.extra.get("onnx", {}).get("opset", {})}


def evaluate_edge_bundle(got: dict, ctx: Context) -> tuple[bool, str]:
    if got["backend"] != "onnx":
        return False, f"that is a '{got['backend']}' bundle; pass the folder export_bundle wrote"
    if got["kind"] != "hgb":
        return False, f"the edge bundle holds '{got['kind']}'; export the hgb bundle"
    parity = got["parity"]
    if parity.get("rows", 0) < 1_000:
        return False, f"parity was checked on {parity.get('rows', 0)} rows; use at least 1,000 held-out rows"
    if not (parity.get("max_abs_diff", 1) <= 1e-5 and parity.get("label_flips", 1) == 0):
        return False, "the recorded parity is beyond 1e-5 or has label flips"
    # reference.json (the drift reference for monitoring) is carried along when the source bundle has one
    if [f for f in got["files"] if f != "reference.json"] != ["SHA256SUMS", "metadata.json", "model.onnx"]:
        return False, (f"the folder holds {got['files']}; an edge bundle is model.onnx, metadata.json, SHA256SUMS "
                       "(and the source's reference.json)")
    return True, (f"a verified edge bundle: parity {parity['max_abs_diff']:.1e} on {parity['rows']:,} rows, "
                  f"opset {got['opset']}")


# ---- 6. quantization --------------------------------------------------------------------------------

def collect_quantized(path: Any, ctx: Context) -> dict:
    from shipml.bundle import verify_bundle

    m = verify_bundle(Path(path))
    return {"kind": m.model_kind, "quantized": bool(m.extra.get("onnx", {}).get("quantized")),
            "quantization": {k: v for k, v in m.extra.get("quantization", {}).items() if not isinstance(v, dict)},
            "agreement": m.extra.get("quantization", {}).get("parity", {}).get("label_agreement", 0.0)}


def evaluate_quantized(got: dict, ctx: Context) -> tuple[bool, str]:
    if got["kind"] != "mlp" or not got["quantized"]:
        return False, "expected an int8 edge bundle of the mlp: export_bundle(..., quantize=True)"
    q = got["quantization"]
    if not q["size_after"] < q["size_before"]:
        return False, "the int8 model is not smaller than the float32 one"
    if got["agreement"] < 0.99:
        return False, f"labels agree on only {got['agreement']:.2%} of rows"
    return True, (f"int8: {q['size_before']:,} -> {q['size_after']:,} bytes, accuracy {q['accuracy_before']:.4f} -> "
                  f"{q['accuracy_after']:.4f}, labels agree on {got['agreement']:.2%}")


# ---- 7. a device decides about each update ----------------------------------------------------------

DEVICE = {"name": "fraud-lr", "version": 2}
DECISIONS = ("install", "stale", "corrupt", "wrong_model")
# How each candidate is made from one verified edge bundle (what to decide about it is the grader's).
CANDIDATE_KINDS = ("v3", "v2-again", "v1", "v4-bit-flipped", "v3-relabelled-v5", "other-model-v6")


@lru_cache(maxsize=1)
def _fleet_source() -> Path:
    from shipml.data import make_transactions
    from shipml.edge.export import export_bundle
    from shipml.models import save_bundle, train

    root = Path(tempfile.mkdtemp(prefix="lab05-fleet-"))
    bundle = save_bundle(train(make_transactions(4_000, seed=3), "lr", seed=0), root / "lr", name="fraud-lr")
    return export_bundle(bundle, root / "lr-edge", parity_rows=500).path


def candidate_order(seed: int) -> list[str]:
    rng = np.random.default_rng([7, seed])
    return [CANDIDATE_KINDS[i] for i in rng.permutation(len(CANDIDATE_KINDS))]


def make_candidates(root: Path, seed: int) -> list[Path]:
    """Downloaded bundles in ``candidate_order(seed)``, in folders whose names say nothing."""
    from shipml.bundle import verify_bundle, write_bundle

    source = _fleet_source()
    out = []
    for n, kind in enumerate(candidate_order(seed)):
        path = Path(shutil.copytree(source, root / f"download-{n}"))
        m = verify_bundle(path)
        m.version = {"v3": 3, "v2-again": 2, "v1": 1, "v4-bit-flipped": 4, "v3-relabelled-v5": 3,
                     "other-model-v6": 6}[kind]
        if kind == "other-model-v6":
            m.name = "fraud-mlp"
        write_bundle(path, m)
        if kind == "v4-bit-flipped":
            blob = bytearray((path / "model.onnx").read_bytes())
            blob[len(blob) // 2] ^= 1
            (path / "model.onnx").write_bytes(bytes(blob))
        if kind == "v3-relabelled-v5":  # the version bumped by hand, hashes not redone
            meta = path / "metadata.json"
            meta.write_text(meta.read_text().replace('"version": 3', '"version": 5'))
        out.append(path)
    return out


def collect_fleet(fn: Any, ctx: Context) -> list:
    with tempfile.TemporaryDirectory(prefix="lab05-candidates-") as tmp:
        out = []
        for path in make_candidates(Path(tmp), ctx.seed):
            try:
                decision = fn(dict(DEVICE), path)
            except NotImplementedError:
                raise Unanswered from None
            except Exception as exc:
                decision = f"raised {type(exc).__name__}: {str(exc)[:120]}"
            out.append(None if decision is None else str(decision))
        return out


def evaluate_fleet(got: list, ctx: Context) -> tuple[bool, str]:
    raised = [g for g in got if g and g.startswith("raised ")]
    if raised:
        return False, f"for one download your function {raised[0]}: a device must decide, not crash"
    unknown = [g for g in got if g not in DECISIONS]
    if unknown:
        return False, f"{unknown[0]!r} is not a decision; answer one of {', '.join(DECISIONS)}"
    if len(set(got)) == 1:
        return False, f"you decided {got[0]!r} for all {len(got)} downloads, but they are not alike"
    return True, f"a decision for each of the {len(got)} downloads (grading checks every one)"


QUESTIONS = [
    Question("input_types", 1, collect_input_types, evaluate_input_types,
             "walk schema.features in order; which onnx tensor type holds float32 numbers, and which holds text? "
             "(skl2onnx.common.data_types)", "Typed, named inputs"),
    Question("feeds", 2, collect_feeds, evaluate_feeds,
             "print frame.dtypes: what does pandas give for each column, and what does the graph expect? "
             "Each input is one column of rows", "Feeds for onnxruntime"),
    Question("session", 2, collect_session, evaluate_session,
             "run the colleague's export and read what onnxruntime says about its inputs and outputs; "
             "question 1 and the converter's options argument are what it lacks", "Repair an export"),
    Question("parity", 1, collect_parity, evaluate_parity,
             "work over every row and every class for the difference; for flips, compare the most probable "
             "class of each row (numpy has a function for the index of the largest value)", "Measure parity"),
    Question("edge_bundle", 1, collect_edge_bundle, evaluate_edge_bundle,
             "read the docstring of export_bundle: what does it return, and where is the folder in it?",
             "An edge bundle"),
    Question("quantized", 1, collect_quantized, evaluate_quantized,
             "which of the two bundles has weight matrices that int8 can shrink? (trees have thresholds, "
             "not weights)", "Quantize the MLP"),
    Question("fleet", 2, collect_fleet, evaluate_fleet,
             "decide in order: can the kit verify it at all (which error means no)? is it the device's model "
             "(the metadata's name)? only then compare versions", "Decide about each update"),
]
