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
    ("unknown model", "/predict?model=nope", RECORD, 404, ["nope", "not served", "fraud-lr"]),
    ("unknown version", "/predict?model=fraud-lr&version=9", RECORD, 404, ["no version 9"]),
    ("bad version", "/predict?version=abc", RECORD, 422, ["version", "whole number"]),
    ("unknown query parameter", "/predict?modle=fraud-lr", RECORD, 422, ["modle"]),
    # TF Serving REST API
    ("tf: malformed JSON", "/v1/models/fraud-lr:predict", b"{", 400, ["malformed JSON"]),
    ("tf: neither instances nor inputs", "/v1/models/fraud-lr:predict", {"rows": []}, 400, ["rows"]),
    ("tf: both formats", "/v1/models/fraud-lr:predict", {"instances": [RECORD], "inputs": {}}, 400, ["exactly one"]),
    ("tf: empty instances", "/v1/models/fraud-lr:predict", {"instances": []}, 400, ["non-empty"]),
    ("tf: missing feature", "/v1/models/fraud-lr:predict", {"instances": [_with(amount=...)]}, 400,
     ["instance 0", "amount"]),
    ("tf: extra feature", "/v1/models/fraud-lr:predict", {"instances": [_with(x=1)]}, 400, ["unexpected", "x"]),
    ("tf: out of range", "/v1/models/fraud-lr:predict", {"instances": [_with(amount=1e9)]}, 400,
     ["amount", "above the maximum"]),
    ("tf: NaN", "/v1/models/fraud-lr:predict", json.dumps({"instances": [_with(amount=float("nan"))]}).encode(), 400,
     ["amount is nan"]),
    ("tf: text in a number column", "/v1/models/fraud-lr:predict",
     {"inputs": {**{k: [v] for k, v in RECORD.items()}, "hour": ["three"]}}, 400, ["hour", "not a number"]),
    ("tf: columns of different lengths", "/v1/models/fraud-lr:predict",
     {"inputs": {**{k: [v] for k, v in RECORD.items()}, "hour": [1, 2]}}, 400, ["different lengths"]),
    ("tf: oversized", "/v1/models/fraud-lr:predict", {"instances": [RECORD] * 1001}, 413, ["limit is 1000"]),
    ("tf: nested values", "/v1/models/fraud-lr:predict",
     {"inputs": {**{k: [v] for k, v in RECORD.items()}, "hour": [[1]]}}, 400, ["hour", "one plain value"]),
    ("tf: object in a row", "/v1/models/fraud-lr:predict", {"instances": [_with(hour={"h": 1})]}, 400, ["hour"]),
    ("tf: unknown model", "/v1/models/nope:predict", {"instances": [RECORD]}, 404, ["nope"]),
    ("tf: unknown version", "/v1/models/fraud-lr/versions/3:predict", {"instances": [RECORD]}, 404, ["version 3"]),
    ("tf: version not a number", "/v1/models/fraud-lr/versions/x:predict", {"instances": [RECORD]}, 422,
     ["version"]),
    # Open Inference Protocol v2
    ("v2: malformed JSON", "/v2/models/fraud-lr/infer", b"[", 400, ["malformed JSON"]),
    ("v2: no inputs", "/v2/models/fraud-lr/infer", {"inputs": []}, 400, ["inputs"]),
    ("v2: shape and data disagree", "/v2/models/fraud-lr/infer",
     {"inputs": [{"name": "amount", "shape": [2], "datatype": "FP64", "data": [1.0]}]}, 400, ["amount", "shape"]),
    ("v2: unknown datatype", "/v2/models/fraud-lr/infer",
     {"inputs": [{"name": "amount", "shape": [1], "datatype": "FP99", "data": [1.0]}]}, 400, ["FP99"]),
    ("v2: missing feature", "/v2/models/fraud-lr/infer",
     {"inputs": [{"name": "amount", "shape": [1], "datatype": "FP64", "data": [1.0]}]}, 400, ["missing", "hour"]),
    ("v2: unknown output", "/v2/models/fraud-lr/infer",
     {"inputs": [{"name": k, "shape": [1], "datatype": "BYTES", "data": [v]} for k, v in RECORD.items()],
      "outputs": [{"name": "logits"}]}, 400, ["logits"]),
    ("v2: oversized", "/v2/models/fraud-lr/infer",
     {"inputs": [{"name": "amount", "shape": [5000], "datatype": "FP64", "data": [1.0] * 5000}]}, 413, ["limit"]),
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
