"""Every bad input of issue 5 gets a 4xx whose message names the problem; never a 500, never a traceback."""

from __future__ import annotations

import json

import pytest
from serving_data import RECORD

pytestmark = pytest.mark.slow


def _with(**changes):
    out = dict(RECORD)
    for k, v in changes.items():
        if v is ...:
            out.pop(k)
        else:
            out[k] = v
    return out


_V2_TYPE = {"str": "BYTES", "bool": "BOOL", "int": "INT64", "float": "FP64"}
V2 = [{"name": k, "shape": [1], "datatype": _V2_TYPE[type(v).__name__], "data": [v]} for k, v in RECORD.items()]

# (case id, path, raw body, expected status, words the message must contain)
CASES = [
    ("missing field", "/predict", _with(hour=...), 422, ["hour", "required"]),
    ("extra field", "/predict", _with(tip=3), 422, ["tip", "unexpected"]),
    ("wrong type: text for a number", "/predict", _with(amount="12.5"), 422, ["amount", "number"]),
    ("wrong type: float for an int", "/predict", _with(hour=3.5), 422, ["hour", "integer"]),
    ("wrong type: number for a bool", "/predict", _with(card_present="yes"), 422, ["card_present", "boolean"]),
    ("out of range: negative amount", "/predict", _with(amount=-1), 422, ["amount", "greater than or equal"]),
    ("out of range: hour 24", "/predict", _with(hour=24), 422, ["hour", "less than or equal to 23"]),
    ("unknown category", "/predict", _with(merchant_category="casino"), 422, ["merchant_category", "grocery"]),
    ("NaN", "/predict", b'{"amount": NaN}', 422, ["amount", "finite"]),
    ("infinity", "/predict", json.dumps(_with(amount=1e999)).encode(), 422, ["amount", "finite"]),
    ("null", "/predict", _with(amount=None), 422, ["amount"]),
    ("malformed JSON", "/predict", b'{"amount": 1,', 400, ["malformed JSON"]),
    ("not an object", "/predict", [RECORD], 422, ["body", "object"]),
    ("empty body", "/predict", b"", 400, ["malformed JSON"]),
    ("empty batch", "/predict/batch", {"records": []}, 422, ["records", "empty"]),
    ("oversized batch", "/predict/batch", {"records": [RECORD] * 1001}, 413, ["records", "limit is 1000"]),
    ("bad row in a batch", "/predict/batch", {"records": [RECORD, _with(hour=-2)]}, 422, ["records.1.hour"]),
    ("batch without records", "/predict/batch", {"rows": [RECORD]}, 422, ["records", "required"]),
    ("deeply nested JSON", "/predict", b'{"amount": ' + b"[" * 1000 + b"]" * 1000 + b"}", 400,
     ["malformed JSON", "recursion"]),
    ("huge integer", "/predict", json.dumps(RECORD).replace("420", "1" + "0" * 309).encode(), 422,
     ["account_age_days"]),
    ("huge integer in a float", "/predict", json.dumps(RECORD).replace("182.4", "1" + "0" * 309).encode(), 422,
     ["amount"]),
    ("number for a boolean", "/predict", _with(card_present=0), 422, ["card_present", "valid boolean"]),
    ("boolean for a number", "/predict", _with(amount=False), 422, ["amount", "valid number"]),
    ("unknown model", "/predict?model=nope", RECORD, 404, ["nope", "not served", "fraud-lr"]),
    ("unknown version", "/predict?model=fraud-lr&version=9", RECORD, 404, ["no version 9"]),
    ("bad version", "/predict?version=abc", RECORD, 422, ["version", "whole number"]),
    ("unknown query parameter", "/predict?modle=fraud-lr", RECORD, 422, ["modle"]),
    # TF Serving REST API: what JSON Schema can say is a 422 (the body's pydantic model), the rest a 400
    ("tf: malformed JSON", "/v1/models/fraud-lr:predict", b"{", 400, ["malformed JSON"]),
    ("tf: neither instances nor inputs", "/v1/models/fraud-lr:predict", {"rows": []}, 422, ["rows", "unexpected"]),
    ("tf: both formats", "/v1/models/fraud-lr:predict", {"instances": [RECORD], "inputs": RECORD}, 422,
     ["exactly one"]),
    ("tf: empty body object", "/v1/models/fraud-lr:predict", {}, 422, ["exactly one"]),
    ("tf: empty instances", "/v1/models/fraud-lr:predict", {"instances": []}, 422, ["instances", "at least 1"]),
    ("tf: missing feature", "/v1/models/fraud-lr:predict", {"instances": [_with(amount=...)]}, 422,
     ["instances.0.amount", "required"]),
    ("tf: extra feature", "/v1/models/fraud-lr:predict", {"instances": [_with(x=1)]}, 422, ["unexpected", "x"]),
    ("tf: out of range", "/v1/models/fraud-lr:predict", {"instances": [_with(amount=1e9)]}, 422,
     ["amount", "less than or equal to 25000"]),
    ("tf: NaN", "/v1/models/fraud-lr:predict", json.dumps({"instances": [_with(amount=float("nan"))]}).encode(), 422,
     ["amount", "finite"]),
    ("tf: text in a number column", "/v1/models/fraud-lr:predict",
     {"inputs": {**{k: [v] for k, v in RECORD.items()}, "hour": ["three"]}}, 422, ["hour", "valid integer"]),
    ("tf: text for a boolean", "/v1/models/fraud-lr:predict", {"instances": [_with(card_present="true")]}, 422,
     ["card_present", "valid boolean"]),
    ("tf: number for a boolean", "/v1/models/fraud-lr:predict", {"instances": [_with(card_present=1)]}, 422,
     ["card_present", "valid boolean"]),
    ("tf: boolean for a number", "/v1/models/fraud-lr:predict", {"instances": [_with(amount=True)]}, 422,
     ["amount", "valid number"]),
    ("tf: columns of different lengths", "/v1/models/fraud-lr:predict",
     {"inputs": {**{k: [v] for k, v in RECORD.items()}, "hour": [1, 2]}}, 400, ["different lengths"]),
    ("tf: oversized", "/v1/models/fraud-lr:predict", {"instances": [RECORD] * 1001}, 413, ["limit is 1000"]),
    ("tf: nested values", "/v1/models/fraud-lr:predict",
     {"inputs": {**{k: [v] for k, v in RECORD.items()}, "hour": [[1]]}}, 422, ["hour", "valid integer"]),
    ("tf: object in a row", "/v1/models/fraud-lr:predict", {"instances": [_with(hour={"h": 1})]}, 422, ["hour"]),
    ("tf: list row too short", "/v1/models/fraud-lr:predict", {"instances": [list(RECORD.values())[:3]]}, 422,
     ["instances.0"]),
    ("tf: unknown signature", "/v1/models/fraud-lr:predict", {"signature_name": "classify_x", "instances": [RECORD]},
     422, ["signature_name", "serving_default"]),
    ("tf: huge integer", "/v1/models/fraud-lr:predict",
     b'{"instances": [' + json.dumps(RECORD).replace("420", "1" + "0" * 309).encode() + b"]}", 422,
     ["account_age_days"]),
    ("tf: huge integer in a float", "/v1/models/fraud-lr:predict",
     b'{"inputs": ' + json.dumps(RECORD).replace("182.4", "1" + "0" * 309).encode() + b"}", 422, ["amount"]),
    ("tf: deeply nested JSON", "/v1/models/fraud-lr:predict", b'{"instances": ' + b"[" * 1000 + b"]" * 1000 + b"}",
     400, ["malformed JSON", "recursion"]),
    ("tf: unknown model", "/v1/models/nope:predict", {"instances": [RECORD]}, 404, ["nope"]),
    ("tf: unknown version", "/v1/models/fraud-lr/versions/3:predict", {"instances": [RECORD]}, 404, ["version 3"]),
    ("tf: version not a number", "/v1/models/fraud-lr/versions/x:predict", {"instances": [RECORD]}, 404,
     ["no such endpoint"]),
    ("tf: classify, missing feature", "/v1/models/fraud-lr:classify", {"examples": [_with(amount=...)]}, 400,
     ["examples.0", "amount"]),
    ("tf: version labels", "/v1/models/fraud-lr/labels/stable:predict", {"instances": [RECORD]}, 404,
     ["labels are not supported"]),
    # Open Inference Protocol v2
    ("v2: malformed JSON", "/v2/models/fraud-lr/infer", b"[", 400, ["malformed JSON"]),
    ("v2: empty object", "/v2/models/fraud-lr/infer", {}, 422, ["inputs", "required"]),
    ("v2: no inputs", "/v2/models/fraud-lr/infer", {"inputs": []}, 422, ["inputs", "at least 1"]),
    ("v2: shape and data disagree", "/v2/models/fraud-lr/infer",
     {"inputs": [{**t, "shape": [2]} if t["name"] == "amount" else t for t in V2]}, 400, ["amount", "shape"]),
    ("v2: a feature sent twice", "/v2/models/fraud-lr/infer", {"inputs": V2 + V2[:1]}, 400, ["amount", "twice"]),
    ("v2: tensors of different rows", "/v2/models/fraud-lr/infer",
     {"inputs": [{**t, "shape": [2], "data": t["data"] * 2} if t["name"] == "amount" else t for t in V2]}, 400,
     ["different numbers of rows", "[1, 2]"]),
    ("v2: no rows", "/v2/models/fraud-lr/infer", {"inputs": [{**t, "shape": [0], "data": []} for t in V2]}, 400,
     ["no rows"]),
    ("v2: unknown datatype", "/v2/models/fraud-lr/infer",
     {"inputs": [{"name": "amount", "shape": [1], "datatype": "FP99", "data": [1.0]}]}, 422, ["datatype", "FP64"]),
    ("v2: unknown tensor", "/v2/models/fraud-lr/infer",
     {"inputs": [{"name": "amout", "shape": [1], "datatype": "FP64", "data": [1.0]}]}, 422, ["amout", "amount"]),
    ("v2: missing feature", "/v2/models/fraud-lr/infer",
     {"inputs": [{"name": "amount", "shape": [1], "datatype": "FP64", "data": [1.0]}]}, 400, ["missing", "hour"]),
    ("v2: unknown output", "/v2/models/fraud-lr/infer", {"inputs": V2, "outputs": [{"name": "logits"}]}, 422,
     ["outputs.0.name", "class_name"]),
    ("v2: non-string id", "/v2/models/fraud-lr/infer", {"id": 7, "inputs": V2}, 422, ["id", "valid string"]),
    ("v2: boolean for a number", "/v2/models/fraud-lr/infer",
     {"inputs": [{**t, "data": [True]} if t["name"] == "amount" else t for t in V2]}, 422, ["amount", "valid number"]),
    ("v2: number for a boolean", "/v2/models/fraud-lr/infer",
     {"inputs": [{**t, "data": [1]} if t["name"] == "card_present" else t for t in V2]}, 422,
     ["card_present", "valid boolean"]),
    ("v2: huge integer", "/v2/models/fraud-lr/infer",
     json.dumps({"inputs": V2}).replace("420", "1" + "0" * 309).encode(), 422, ["account_age_days"]),
    ("v2: deeply nested JSON", "/v2/models/fraud-lr/infer", b'{"inputs": ' + b"[" * 1000 + b"]" * 1000 + b"}", 400,
     ["malformed JSON", "recursion"]),
    ("v2: oversized", "/v2/models/fraud-lr/infer",
     {"inputs": [{**t, "shape": [5000], "data": t["data"] * 5000} for t in V2]}, 413, ["limit"]),
    ("v2: unknown model", "/v2/models/nope/infer", {"inputs": []}, 404, ["nope"]),
]


@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_bad_input_is_a_4xx_naming_the_problem(client, case):
    _, path, body, status, words = case
    content = body if isinstance(body, bytes) else json.dumps(body).encode()
    r = client.post(path, content=content, headers={"content-type": "application/json"})
    assert r.status_code == status, r.text
    error = r.json()["error"]
    for word in words:
        assert word in error, f"{word!r} not in {error!r}"
    assert "Traceback" not in r.text


def test_oversized_body_is_refused_before_it_is_read(client):
    big = b'{"records": [' + b",".join([json.dumps(RECORD).encode()] * 20_000) + b"]}"
    r = client.post("/predict/batch", content=big, headers={"content-type": "application/json"})
    assert r.status_code == 413 and "SHIPML_MAX_REQUEST_BYTES" in r.json()["error"]


def test_chunked_body_over_the_limit_is_refused(client):
    def chunks():
        for _ in range(300):
            yield b" " * 8192

    r = client.post("/predict", content=chunks(), headers={"content-type": "application/json"})
    assert r.status_code == 413


def test_unknown_paths_and_methods_are_json_4xx(client):
    r = client.get("/nope")
    assert r.status_code == 404 and "no such endpoint" in r.json()["error"]
    r = client.get("/predict")
    assert r.status_code == 405 and "GET" in r.json()["error"]


def test_v2_binary_header_that_does_not_fit_is_a_400(client):
    r = client.post("/v2/models/fraud-lr/infer", content=b'{"inputs": []}',
                    headers={"Inference-Header-Content-Length": "999"})
    assert r.status_code == 400 and "Inference-Header-Content-Length" in r.json()["error"]


ROUTES = [("/predict", RECORD), ("/v1/models/fraud-lr:predict", {"instances": [RECORD]}),
          ("/v2/models/fraud-lr/infer", {"inputs": V2})]


@pytest.mark.parametrize(("path", "body"), ROUTES, ids=["predict", "tf", "v2"])
def test_a_utf8_bom_is_accepted_on_every_route(client, path, body):
    r = client.post(path, content=b"\xef\xbb\xbf" + json.dumps(body).encode(),
                    headers={"content-type": "application/json"})
    assert r.status_code == 200, r.text


@pytest.mark.parametrize(("path", "body"), ROUTES, ids=["predict", "tf", "v2"])
@pytest.mark.parametrize("encoding", ["gzip", "deflate"])
def test_compressed_bodies_are_decoded(client, path, body, encoding):
    import gzip
    import zlib

    raw = json.dumps(body).encode()
    packed = gzip.compress(raw) if encoding == "gzip" else zlib.compress(raw)
    r = client.post(path, content=packed, headers={"content-type": "application/json", "content-encoding": encoding})
    assert r.status_code == 200, r.text
    plain = client.post(path, content=raw, headers={"content-type": "application/json"})
    assert r.json().get("probabilities", r.json().get("outputs")) == plain.json().get(
        "probabilities", plain.json().get("outputs"))


def test_unknown_encoding_is_a_415_and_a_bomb_a_413(client):
    import gzip

    r = client.post("/v2/models/fraud-lr/infer", content=b"xx", headers={"content-encoding": "br"})
    assert r.status_code == 415 and "br" in r.json()["error"]
    bomb = gzip.compress(b" " * (8 << 20))  # 8 MiB of spaces in about 8 kB
    r = client.post("/predict", content=bomb, headers={"content-encoding": "gzip"})
    assert r.status_code == 413 and "decompressed" in r.json()["error"]
    r = client.post("/predict", content=b"not gzip", headers={"content-encoding": "gzip"})
    assert r.status_code == 400 and "gzip" in r.json()["error"]


def test_a_client_that_disconnects_mid_body_is_a_499_not_a_500(server, client):
    """Send half a body, close the socket: counted as 499 and logged as a closed connection."""
    import socket
    import time

    host, port = server.url.removeprefix("http://").split(":")
    for _ in range(3):
        with socket.create_connection((host, int(port)), timeout=5) as s:
            s.sendall(b"POST /v1/models/fraud-lr:predict HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                      b"Content-Length: 5000\r\n\r\n" + b'{"instances": [')
            time.sleep(0.2)
    time.sleep(0.5)
    metrics = client.get("/metrics").text
    assert 'route="/v1/models/{name}:predict",status="499"} 3.0' in metrics, metrics
    assert 'status="500"' not in metrics
    logs = server.logs()
    assert "client closed the connection" in logs and "unexpected error" not in logs


def test_options_lists_the_methods_of_the_path_and_head_works_where_get_does(client):
    r = client.options("/predict")
    assert r.status_code == 204 and r.headers["allow"] == "OPTIONS, POST"
    r = client.options("/v2/models/fraud-lr")
    assert r.status_code == 204 and r.headers["allow"] == "GET, HEAD, OPTIONS"
    assert client.options("/nope").status_code == 404
    for path in ("/v2/health/ready", "/v2/health/live", "/v2", "/v2/models/fraud-lr", "/v2/models/fraud-lr/ready",
                 "/v1/models/fraud-lr", "/v1/models/fraud-lr/metadata", "/metrics", "/openapi.json", "/docs"):
        head, get = client.head(path), client.get(path)
        assert head.status_code == get.status_code == 200, path
        assert head.content == b""
    r = client.put("/predict")
    assert r.status_code == 405 and r.headers["allow"] == "POST"
