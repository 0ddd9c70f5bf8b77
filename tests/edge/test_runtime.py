"""The edge runtime: single-row path, float64 mistake explained, no scikit-learn or pandas needed."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import urllib.request

import numpy as np
import onnxruntime as ort
import pytest
from shipml.edge.runtime import OnnxPredictor, explain_type_error
from shipml.errors import SchemaError, ShipmlError
from shipml.waiting import wait_for_log


def _row(df, i=0):
    return {k: (v.item() if hasattr(v, "item") else v) for k, v in df.iloc[i].to_dict().items()}


def test_single_row_path_matches_the_batch_path(hgb_edge, heldout):
    p = OnnxPredictor.load(hgb_edge)
    batch = p.predict_proba(heldout.head(10))
    for i in range(10):
        one = p.predict_proba_one(_row(heldout, i))
        assert one.shape == (2,) and np.allclose(one, batch[i], atol=1e-7)
        assert p.predict_one(_row(heldout, i)) == int(batch[i].argmax())
    with pytest.raises(SchemaError, match="missing field 'amount'"):
        p.predict_proba_one({k: v for k, v in _row(heldout).items() if k != "amount"})


def test_columnar_input_as_plain_lists_gives_the_same_answer(lr_edge, heldout):
    p = OnnxPredictor.load(lr_edge)
    head = heldout.head(50)
    as_lists = {c: head[c].tolist() for c in p.schema.names}
    assert np.array_equal(p.predict_proba(as_lists), p.predict_proba(head))


def test_session_is_set_up_for_a_small_device(lr_edge):
    p = OnnxPredictor.load(lr_edge)
    options = p.session.get_session_options()
    assert options.intra_op_num_threads == 1 and options.inter_op_num_threads == 1
    assert options.execution_mode == ort.ExecutionMode.ORT_SEQUENTIAL
    assert p.session.get_providers() == ["CPUExecutionProvider"]


def test_float64_input_error_is_explained(lr_edge, heldout):
    p = OnnxPredictor.load(lr_edge)
    feeds = p.feeds(heldout.head(3))
    feeds["amount"] = heldout.head(3)["amount"].to_numpy().reshape(-1, 1)  # float64: the classic mistake
    with pytest.raises(Exception, match="Unexpected input data type") as raw:
        p.session.run(None, feeds)  # what onnxruntime says
    message = str(explain_type_error(raw.value, p.session, feeds))
    assert "input 'amount'" in message and "expect float32 but got float64" in message
    assert ".astype(np.float32)" in message and "\n" not in message
    with pytest.raises(ShipmlError, match="expect float32 but got float64"):
        p.run(feeds)
    assert p.predict_proba(heldout.head(3)).dtype == np.float32  # the predictor casts for you


BLOCKER = textwrap.dedent("""
    import importlib.abc, sys
    BLOCKED = ("sklearn", "pandas", "scipy", "skl2onnx", "onnx", "typer", "fastapi", "pyarrow", "joblib")

    class Blocker(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path=None, target=None):
            if name.split(".")[0] in BLOCKED:
                raise ImportError(f"{name} is not installed on this device")
            return None

    sys.meta_path.insert(0, Blocker())
    for mod in BLOCKED:
        try:
            __import__(mod)
        except ImportError:
            pass
        else:
            raise SystemExit(f"blocker failed: {mod} imported")
""")


def test_runtime_runs_where_scikit_learn_and_pandas_cannot_be_imported(hgb_edge, edge_csv, heldout):
    row = _row(heldout, 0)
    expected = OnnxPredictor.load(hgb_edge).predict_proba_one(row)
    script = BLOCKER + textwrap.dedent(f"""
        import io, json, sys
        from shipml.predictor import load_predictor
        from shipml.edge.device import predict_file
        p = load_predictor({str(hgb_edge)!r})
        assert type(p).__name__ == "OnnxPredictor", type(p)
        one = p.predict_proba_one({row!r})
        batch = p.predict_proba({{k: [v, v] for k, v in {row!r}.items()}})
        out = io.StringIO()
        n = predict_file({str(hgb_edge)!r}, {str(edge_csv)!r}, out)
        heavy = sorted(m for m in sys.modules if m.split(".")[0] in BLOCKED)
        print(json.dumps({{"one": one.tolist(), "batch": batch.tolist(), "rows": n,
                          "lines": out.getvalue().splitlines()[:2], "heavy": heavy}}))
    """)
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    import json

    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["heavy"] == []
    assert np.allclose(result["one"], expected, atol=1e-7) and np.allclose(result["batch"][1], expected, atol=1e-7)
    assert result["rows"] == 20 and result["lines"][0] == "id,label,p_legit,p_fraud"


@pytest.mark.slow
def test_device_server_runs_without_scikit_learn(hgb_edge, heldout, tmp_path):
    script = BLOCKER + "import sys\nfrom shipml.edge.device import main\nsys.exit(main(sys.argv[1:]))\n"
    log = tmp_path / "device.log"
    with open(log, "w") as err:  # port 0: the server binds a free port and says which on stderr
        server = subprocess.Popen([sys.executable, "-c", script, "serve", str(hgb_edge), "--host", "127.0.0.1",
                                   "--port", "0"], stdout=subprocess.DEVNULL, stderr=err, text=True)
    try:
        base = wait_for_log(server, log, r"on (http://127\.0\.0\.1:\d+)", timeout=60, what="the device server")[1]
        with urllib.request.urlopen(base + "/health", timeout=5) as r:
            assert r.status == 200
        import json

        body = json.dumps({"instances": [_row(heldout.drop(columns=["is_fraud"]), 0)]}).encode()
        req = urllib.request.Request(base + "/predict", data=body, headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=5) as r:
            answer = json.loads(r.read())
        expected = OnnxPredictor.load(hgb_edge).predict_proba_one(_row(heldout, 0))
        assert answer["predictions"][0]["probabilities"]["fraud"] == pytest.approx(float(expected[1]), abs=1e-6)
    finally:
        server.terminate()
        server.wait(timeout=10)
