"""``shipml edge`` (typer) and ``python -m shipml.edge`` (stdlib): results, one-line errors, the HTTP server."""

from __future__ import annotations

import json
import subprocess
import sys
import urllib.error
import urllib.request

import pytest
from shipml.cli import main
from shipml.edge.device import make_server, read_csv_columns, serve_in_thread
from shipml.edge.runtime import OnnxPredictor


def _one_line_error(capsys) -> str:
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "Traceback" not in err, err
    assert err.startswith("shipml: error: "), err
    return err


def test_cli_export_then_predict(lr_bundle, tmp_path, edge_csv, capsys):
    out = tmp_path / "lr-edge"
    assert main(["edge", "export", str(lr_bundle), "--out", str(out), "--parity-rows", "2000"]) == 0
    text = capsys.readouterr().out
    assert "parity: max |Δp|" in text and "size on disk: " in text and "model.onnx" in text
    assert main(["edge", "predict", str(out), "--input", str(edge_csv)]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert lines[0] == "id,label,p_legit,p_fraud" and len(lines) == 21


@pytest.mark.parametrize("case", ["missing", "tolerance", "sklearn-bundle", "bad-rows", "bad-suffix", "quantize-lr"])
def test_cli_errors_are_one_line(case, lr_bundle, lr_edge, tmp_path, edge_csv, capsys):
    if case == "missing":
        argv, expect = ["edge", "export", str(tmp_path / "nope"), "--out", str(tmp_path / "o")], "no such bundle"
    elif case == "tolerance":
        argv = ["edge", "export", str(lr_bundle), "--out", str(tmp_path / "o"), "--tolerance", "0",
                "--parity-rows", "500"]
        expect = "parity check failed"
    elif case == "sklearn-bundle":
        argv, expect = ["edge", "predict", str(lr_bundle), "--input", str(edge_csv)], "not an ONNX edge bundle"
    elif case == "bad-rows":
        bad = tmp_path / "bad.csv"
        text = edge_csv.read_text().splitlines()
        header = text[0].split(",")
        row = text[1].split(",")
        row[header.index("hour")] = "25"
        row[header.index("merchant_category")] = "casino"
        bad.write_text("\n".join([text[0], ",".join(row)]) + "\n")
        argv, expect = ["edge", "predict", str(lr_edge), "--input", str(bad)], "1 invalid row(s): row 0: hour=25"
    elif case == "bad-suffix":
        argv, expect = ["edge", "predict", str(lr_edge), "--input", str(tmp_path / "x.txt")], "use .csv or .json"
    else:
        argv = ["edge", "export", str(lr_bundle), "--out", str(tmp_path / "o"), "--quantize", "--parity-rows", "500"]
        expect = "nothing to quantize"
    assert main(argv) == 1
    assert expect in _one_line_error(capsys)
    assert not (tmp_path / "o").exists()


def test_device_command_predicts_and_fails_in_one_line(hgb_edge, edge_csv, tmp_path):
    out = tmp_path / "scores.csv"
    done = subprocess.run([sys.executable, "-m", "shipml.edge", "predict", str(hgb_edge), "--input", str(edge_csv),
                           "--output", str(out)], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert out.read_text().splitlines()[0] == "id,label,p_legit,p_fraud" and "scored 20 rows" in done.stderr
    bad = subprocess.run([sys.executable, "-m", "shipml.edge", "predict", str(tmp_path), "--input", str(edge_csv)],
                         capture_output=True, text=True, timeout=120)
    assert bad.returncode == 1 and bad.stderr.startswith("shipml-edge: error: ")
    assert len(bad.stderr.strip().splitlines()) == 1


def test_csv_reader_types_cells_by_schema(edge_csv, heldout):
    from shipml.data import SCHEMA

    cols = read_csv_columns(edge_csv, SCHEMA)
    assert cols["amount"][0] == pytest.approx(float(heldout.amount.iloc[0]))
    assert cols["card_present"][0] in (True, False)
    assert cols["merchant_category"][0] == heldout.merchant_category.iloc[0]
    assert cols["id"][0] == str(heldout.id.iloc[0])


def _post(url, body):
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    req = urllib.request.Request(url, data=data, headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=5) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())


def test_stdlib_server_answers_on_a_free_loopback_port(lr_edge, heldout):
    server = make_server(lr_edge, "127.0.0.1", 0)  # port 0: bound at once, no race for the port
    free_port = server.server_address[1]
    serve_in_thread(server)
    base = f"http://127.0.0.1:{free_port}"
    try:
        with urllib.request.urlopen(base + "/health", timeout=5) as r:
            health = json.loads(r.read())
        assert health == {"status": "ok", "model": "fraud-lr", "version": 1, "backend": "onnx"}
        rows = heldout.drop(columns=["is_fraud"]).head(3)
        instances = [{k: (v.item() if hasattr(v, "item") else v) for k, v in r.items()}
                     for r in rows.to_dict("records")]
        status, answer = _post(base + "/predict", {"instances": instances})
        assert status == 200 and len(answer["predictions"]) == 3
        expected = OnnxPredictor.load(lr_edge).predict_proba(rows)
        got = [p["probabilities"]["fraud"] for p in answer["predictions"]]
        assert got == pytest.approx(expected[:, 1].tolist(), abs=1e-6)
        bad = dict(instances[0], hour=30, colour="red")
        del bad["amount"]
        status, answer = _post(base + "/predict", {"instances": [bad]})
        assert status == 400 and "missing field 'amount'" in answer["error"]
        assert "unexpected field 'colour'" in answer["error"]
        status, answer = _post(base + "/predict", {"instances": [dict(instances[0], hour=30)]})
        assert status == 400 and "hour=30" in answer["error"]
        assert _post(base + "/predict", b"{not json")[0] == 400
        assert _post(base + "/predict", {"rows": []})[0] == 400
        assert _post(base + "/nope", {})[0] == 404
    finally:
        server.shutdown()
        server.server_close()


def test_keep_alive_requests_do_not_wait_for_delayed_acks(lr_edge, heldout):
    """Headers and body are two writes: with Nagle's algorithm each answer waited ~40 ms for the client's ACK."""
    import http.client
    import statistics
    import time

    server = make_server(lr_edge, "127.0.0.1", 0)
    serve_in_thread(server)
    row = {k: (v.item() if hasattr(v, "item") else v)
           for k, v in heldout.drop(columns=["is_fraud"]).head(1).to_dict("records")[0].items()}
    body = json.dumps({"instances": [row]}).encode()
    conn = http.client.HTTPConnection("127.0.0.1", server.server_address[1], timeout=5)  # one keep-alive connection
    took = []
    try:
        for _ in range(15):
            start = time.perf_counter()
            conn.request("POST", "/predict", body=body, headers={"Content-Type": "application/json"})
            response = conn.getresponse()
            assert response.status == 200 and response.read()
            took.append(time.perf_counter() - start)
    finally:
        conn.close()
        server.shutdown()
        server.server_close()
    assert statistics.median(took) < 0.025, f"median {statistics.median(took) * 1000:.1f} ms per request"
