"""Lab 05 — edge deployment with ONNX: typed inputs, feeds, a hand export, parity, edge bundles,
int8 quantization, and a device that installs only verified updates."""

from __future__ import annotations

import shutil
import tempfile
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

from shipml.checks import Context, Question

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
    for (name, kind, shape), f in zip(got, schema.features, strict=True):
        want = "StringTensorType" if f.dtype == "category" else "FloatTensorType"
        if kind != want:
            extra = " (float64: the classic mistake — the graph works in float32)" if kind == "DoubleTensorType" else ""
            return False, f"'{name}' is a {kind}; a {f.dtype} feature needs {want}{extra}"
        if shape != [None, 1]:
            return False, f"'{name}' has shape {shape}; use [None, 1] (any number of rows, one column)"
    return True, "one named input per feature: float32 for numbers, strings for the category"


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
    schema, rows = _schema(), _feed_rows(ctx.seed)
    if sorted(got) != sorted(schema.names):
        return False, f"feeds have keys {sorted(got)}; expected exactly the features {schema.names}"
    for f in schema.features:
        g = got[f.name]
        if g["shape"] != [FEED_ROWS, 1]:
            return False, f"'{f.name}' has shape {g['shape']}; reshape to ({FEED_ROWS}, 1) with .reshape(-1, 1)"
        if f.dtype == "category":
            if g["kind"] not in "OU":
                return False, f"'{f.name}' is {g['dtype']}; the category input wants strings (astype(str) or object)"
            if list(g["values"]) != [str(v) for v in rows[f.name]]:
                return False, f"'{f.name}' does not hold the rows' merchant categories"
            continue
        if g["dtype"] != "float32":
            return False, f"'{f.name}' is {g['dtype']}; the graph expects float32: .astype(np.float32)"
        if not np.allclose(np.asarray(g["values"]), rows[f.name].to_numpy(dtype=np.float32), rtol=0, atol=0):
            return False, f"'{f.name}' does not hold the rows' values"
    return True, f"{len(schema.names)} inputs of shape ({FEED_ROWS}, 1), float32 and strings"


# ---- 3. a hand export -------------------------------------------------------------------------------

def collect_session(session: Any, ctx: Context) -> dict:
    from shipml.data import make_transactions

    inputs = [[i.name, i.type] for i in session.get_inputs()]
    outputs = [o.name for o in session.get_outputs()]
    result: dict[str, Any] = {"inputs": inputs, "outputs": outputs}
    if "probabilities" in outputs:
        rows = make_transactions(SESSION_ROWS, seed=2000 + ctx.seed)
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
        return False, f"the graph's inputs are {names}; convert with your typed inputs from question 1"
    if "probabilities" not in got["outputs"]:
        return False, (f"the graph's outputs are {got['outputs']}: with ZipMap the probabilities are a list of "
                       "dicts; pass options={id(pipeline): {'zipmap': False}}")
    p = got["proba"]
    if p.shape != (SESSION_ROWS, 2) or got["proba_dtype"] != "float32":
        return False, (f"probabilities have shape {p.shape} and dtype {got['proba_dtype']}; "
                       f"expected ({SESSION_ROWS}, 2) float32")
    if not (np.all((p >= 0) & (p <= 1)) and np.allclose(p.sum(axis=1), 1, atol=1e-5)):
        return False, "the rows of 'probabilities' are not probability distributions"
    return True, "the whole pipeline as one ONNX graph: typed inputs in, a plain probability tensor out"


# ---- 4. parity --------------------------------------------------------------------------------------

def _parity_case(seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng([5, seed])
    p1 = rng.uniform(0, 1, 60)
    ref = np.column_stack([1 - p1, p1])
    q1 = np.clip(p1 + rng.normal(0, 1e-4, 60), 0, 1)
    flips = rng.choice(60, 3, replace=False)
    q1[flips] = 1 - p1[flips]
    return ref, np.column_stack([1 - q1, q1]).astype(np.float32)


def _expected_parity(seed: int) -> dict:
    ref, cand = _parity_case(seed)
    cand = cand.astype(np.float64)
    return {"max_abs_diff": float(np.abs(ref - cand).max()),
            "label_flips": int((ref.argmax(1) != cand.argmax(1)).sum())}


def collect_parity(fn: Any, ctx: Context) -> dict:
    ref, cand = _parity_case(ctx.seed)
    got = fn(ref.copy(), cand.copy())
    return {"max_abs_diff": float(got["max_abs_diff"]), "label_flips": int(got["label_flips"])}


def evaluate_parity(got: dict, ctx: Context) -> tuple[bool, str]:
    want = _expected_parity(ctx.seed)
    if not np.isclose(got["max_abs_diff"], want["max_abs_diff"], rtol=1e-6, atol=1e-9):
        return False, (f"max_abs_diff is {got['max_abs_diff']:.6g}; it is the largest |p_sklearn - p_onnx| over all "
                       "rows and classes")
    if got["label_flips"] != want["label_flips"]:
        return False, f"label_flips is {got['label_flips']}; count rows whose argmax differs between the two"
    return True, f"max |Δp| {want['max_abs_diff']:.3g}, {want['label_flips']} label flips"


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
    if got["files"] != ["SHA256SUMS", "metadata.json", "model.onnx"]:
        return False, f"the folder holds {got['files']}; an edge bundle is model.onnx, metadata.json, SHA256SUMS"
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


# ---- 7. a device that installs only verified updates --------------------------------------------------

@lru_cache(maxsize=1)
def _fleet_source() -> Path:
    from shipml.data import make_transactions
    from shipml.edge.export import export_bundle
    from shipml.models import save_bundle, train

    root = Path(tempfile.mkdtemp(prefix="lab05-fleet-"))
    bundle = save_bundle(train(make_transactions(4_000, seed=3), "lr", seed=0), root / "lr")
    return export_bundle(bundle, root / "lr-edge", parity_rows=500).path


def _candidates(root: Path) -> dict[str, Path]:
    from shipml.bundle import verify_bundle, write_bundle

    source = _fleet_source()
    made = {}
    for name, version in [("v1", 1), ("v2", 2), ("v3-corrupt", 3), ("v4-relabelled", 4)]:
        path = Path(shutil.copytree(source, root / name))
        m = verify_bundle(path)
        m.version = version
        write_bundle(path, m)
        made[name] = path
    blob = bytearray((made["v3-corrupt"] / "model.onnx").read_bytes())
    blob[len(blob) // 2] ^= 1
    (made["v3-corrupt"] / "model.onnx").write_bytes(bytes(blob))
    meta = made["v4-relabelled"] / "metadata.json"  # version bumped by hand, hashes not redone
    meta.write_text(meta.read_text().replace('"version": 4', '"version": 5'))
    return made


FLEET_CASES = [(1, ["v1", "v2", "v3-corrupt", "v4-relabelled"]), (2, ["v1", "v2", "v3-corrupt", "v4-relabelled"]),
               (1, ["v3-corrupt", "v4-relabelled"]), (0, ["v2", "v1"])]
FLEET_EXPECTED = ["v2", None, None, "v2"]


def collect_fleet(fn: Any, ctx: Context) -> list:
    with tempfile.TemporaryDirectory(prefix="lab05-candidates-") as tmp:
        made = _candidates(Path(tmp))
        names = {str(p): n for n, p in made.items()}
        out = []
        for installed, picks in FLEET_CASES:
            choice = fn(installed, [made[n] for n in picks])
            out.append(None if choice is None else names.get(str(Path(choice)), str(choice)))
        return out


def evaluate_fleet(got: list, ctx: Context) -> tuple[bool, str]:
    for (installed, picks), want, have in zip(FLEET_CASES, FLEET_EXPECTED, got, strict=True):
        if have != want:
            return False, (f"with version {installed} installed and candidates {picks}, you chose {have!r}; "
                           f"expected {want!r}")
    return True, "only verified, newer bundles are installed; corrupt and hand-edited ones are refused"


QUESTIONS = [
    Question("input_types", 1, collect_input_types, evaluate_input_types,
             "schema order; numbers (float, int, bool) are FloatTensorType, the category a StringTensorType; "
             "shape [None, 1]", "Typed, named inputs"),
    Question("feeds", 2, collect_feeds, evaluate_feeds,
             "pandas gives float64/int64/bool: convert numbers to float32, the category to strings, and make each "
             "array one column with .reshape(-1, 1)", "Feeds for onnxruntime"),
    Question("session", 2, collect_session, evaluate_session,
             "convert_sklearn with your initial types and ZipMap off (the options argument takes id(pipeline)); "
             "onnxruntime opens the serialized model", "Export by hand"),
    Question("parity", 1, collect_parity, evaluate_parity,
             "the largest absolute difference over every row and class; a flip is a row whose most probable class "
             "differs", "Measure parity"),
    Question("edge_bundle", 1, collect_edge_bundle, evaluate_edge_bundle,
             "export_bundle returns an EdgeExport; its .path is the folder", "An edge bundle"),
    Question("quantized", 1, collect_quantized, evaluate_quantized,
             "export the mlp bundle, not the hgb one: trees have nothing to quantize", "Quantize the MLP"),
    Question("fleet", 2, collect_fleet, evaluate_fleet,
             "verify_bundle raises BundleError for a changed bundle: catch it and skip that candidate; keep the "
             "newest verified version above the installed one", "Install only verified updates"),
]
