"""The server's endpoints, against a real uvicorn process: the kit's API, TF Serving's REST API, v2, metrics."""

from __future__ import annotations

import json

import numpy as np
import pytest
from shipml.predictor import load_predictor

pytestmark = pytest.mark.slow


def test_predict_answers_with_label_probability_model_version_and_request_id(client, record, model_repo):
    r = client.post("/predict", json=record, headers={"X-Request-ID": "abc-123"})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["model"] == "fraud-lr" and body["version"] == 1
    assert body["request_id"] == "abc-123" == r.headers["x-request-id"]
    expected = load_predictor(model_repo / "fraud-lr" / "1").predict_proba({k: [v] for k, v in record.items()})[0]
    assert body["probabilities"]["fraud"] == pytest.approx(expected[1], abs=1e-9)
    assert body["prediction"] == int(np.argmax(expected))
    assert body["class_name"] == ["legit", "fraud"][body["prediction"]]
    assert body["probability"] == pytest.approx(max(expected), abs=1e-9)


def test_request_ids_are_generated_and_unique(client, record):
    ids = {client.post("/predict", json=record).headers["x-request-id"] for _ in range(5)}
    assert len(ids) == 5


@pytest.mark.parametrize("name", ["fraud-lr", "fraud-hgb", "fraud-onnx"])
def test_every_model_and_backend_is_addressable(client, record, name, model_repo):
    r = client.post("/predict", params={"model": name, "version": 1}, json=record)
    assert r.status_code == 200, r.text
    assert r.json()["model"] == name
    expected = load_predictor(model_repo / name / "1").predict_proba({k: [v] for k, v in record.items()})[0]
    assert r.json()["probabilities"]["fraud"] == pytest.approx(float(expected[1]), abs=1e-5)


def test_onnx_and_sklearn_backends_agree(client, record):
    sk = client.post("/predict", params={"model": "fraud-lr"}, json=record).json()
    ox = client.post("/predict", params={"model": "fraud-onnx"}, json=record).json()
    assert ox["probabilities"]["fraud"] == pytest.approx(sk["probabilities"]["fraud"], abs=1e-5)


def test_batch_scores_every_record_in_order(client, record):
    records = [record, {**record, "amount": 5.0, "hour": 12, "card_present": True, "merchant_category": "grocery"}]
    r = client.post("/predict/batch", json={"records": records})
    assert r.status_code == 200, r.text
    preds = r.json()["predictions"]
    assert len(preds) == 2
    singles = [client.post("/predict", json=x).json()["probabilities"]["fraud"] for x in records]
    assert [p["probabilities"]["fraud"] for p in preds] == pytest.approx(singles)


def test_tf_serving_status_and_metadata(client):
    status = client.get("/v1/models/fraud-lr").json()
    assert status["model_version_status"][0] == {"version": "1", "state": "AVAILABLE",
                                                 "status": {"error_code": "OK", "error_message": ""}}
    assert client.get("/v1/models/fraud-lr/versions/1").status_code == 200
    meta = client.get("/v1/models/fraud-hgb/metadata").json()
    sig = meta["metadata"]["signature_def"]["signature_def"]["serving_default"]
    assert set(sig["inputs"]) >= {"amount", "merchant_category"} and "probabilities" in sig["outputs"]
    assert meta["model_spec"] == {"name": "fraud-hgb", "signature_name": "", "version": "1"}


def test_tf_serving_row_and_columnar_formats_agree(client, record):
    rows = client.post("/v1/models/fraud-lr:predict", json={"instances": [record, record]})
    cols = client.post("/v1/models/fraud-lr/versions/1:predict",
                       json={"inputs": {k: [v, v] for k, v in record.items()}})
    assert rows.status_code == cols.status_code == 200, (rows.text, cols.text)
    p_rows = [p["probabilities"] for p in rows.json()["predictions"]]
    assert np.allclose(cols.json()["outputs"]["probabilities"], p_rows)
    listed = client.post("/v1/models/fraud-lr:predict", json={"instances": [list(record.values())]})
    assert listed.json()["predictions"][0]["probabilities"] == pytest.approx(p_rows[0])


def test_v2_protocol_with_tritonclient(server, record):
    """Triton's own HTTP client, unchanged, against the server (binary tensors in, JSON out)."""
    import tritonclient.http as triton

    client = triton.InferenceServerClient(url=server.url.removeprefix("http://"))
    assert client.is_server_live() and client.is_server_ready()
    assert client.is_model_ready("fraud-hgb") and client.is_model_ready("fraud-hgb", "1")
    assert not client.is_model_ready("nope")
    meta = client.get_model_metadata("fraud-hgb")
    assert meta["versions"] == ["1"] and {i["name"] for i in meta["inputs"]} == set(record)
    for binary in (True, False):
        inputs = []
        for name, value in record.items():
            if isinstance(value, str):
                arr, dtype = np.array([[value.encode()]] * 3, dtype=object), "BYTES"
            elif isinstance(value, bool):
                arr, dtype = np.array([[value]] * 3, dtype=bool), "BOOL"
            elif isinstance(value, int):
                arr, dtype = np.array([[value]] * 3, dtype=np.int64), "INT64"
            else:
                arr, dtype = np.array([[value]] * 3, dtype=np.float64), "FP64"
            tensor = triton.InferInput(name, list(arr.shape), dtype)
            tensor.set_data_from_numpy(arr, binary_data=binary)
            inputs.append(tensor)
        outputs = [triton.InferRequestedOutput("probabilities", binary_data=binary),
                   triton.InferRequestedOutput("label", binary_data=binary)]
        result = client.infer("fraud-hgb", inputs, model_version="1", outputs=outputs, request_id="r-1")
        proba = result.as_numpy("probabilities")
        assert proba.shape == (3, 2) and np.allclose(proba.sum(axis=1), 1)
        assert result.as_numpy("label").tolist() == [int(np.argmax(proba[0]))] * 3
        assert result.get_response()["id"] == "r-1"
    client.close()


def test_v2_errors_reach_the_triton_client(server, record):
    import tritonclient.http as triton
    from tritonclient.utils import InferenceServerException

    client = triton.InferenceServerClient(url=server.url.removeprefix("http://"))
    tensor = triton.InferInput("amount", [1], "FP64")
    tensor.set_data_from_numpy(np.array([1.0]))
    with pytest.raises(InferenceServerException, match="missing input tensor"):
        client.infer("fraud-lr", [tensor])
    with pytest.raises(InferenceServerException, match="not served"):
        client.get_model_metadata("nope")
    client.close()


def test_metrics_count_requests_predictions_and_loaded_versions(client, record):
    client.post("/predict", json=record)
    client.post("/predict", json={"amount": "x"})
    text = client.get("/metrics").text
    assert 'shipml_requests_total{method="POST",route="/predict",status="200"}' in text
    assert 'shipml_requests_total{method="POST",route="/predict",status="422"}' in text
    assert 'shipml_request_duration_seconds_bucket{le="0.001",route="/predict"}' in text
    assert 'shipml_predictions_total{class_name=' in text and 'model="fraud-lr",version="1"}' in text
    for name in ("fraud-lr", "fraud-hgb", "fraud-onnx"):
        assert f'model="{name}",version="1"}} 1.0' in text
    assert 'backend="onnx",model="fraud-onnx"' in text


def test_health_means_what_it_says(client):
    assert client.get("/v2/health/live").json() == {"live": True}
    r = client.get("/v2/health/ready")
    assert r.status_code == 200 and r.json() == {"ready": True}


def test_readiness_is_false_until_a_model_is_loaded(tmp_path):
    from shipml.serving import BackgroundServer

    empty = tmp_path / "models"
    empty.mkdir()
    with BackgroundServer(empty, wait_ready=False) as s:
        import httpx

        r = httpx.get(f"{s.url}/v2/health/ready")
        assert r.status_code == 503 and r.json() == {"ready": False}
        r = httpx.post(f"{s.url}/predict", json={})
        assert r.status_code == 503 and "no loadable model" in r.json()["error"]


def test_openapi_declares_the_generated_record_model(client):
    doc = client.get("/openapi.json").json()
    body = doc["paths"]["/predict"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    record = doc["components"]["schemas"][body["$ref"].rsplit("/", 1)[1]]
    assert record["additionalProperties"] is False
    assert record["properties"]["amount"]["maximum"] == 25000
    assert "online_retail" in record["properties"]["merchant_category"]["enum"]
    # The standard protocols' bodies differ per model: one documented path per served model, its own body.
    assert {"/v1/models/fraud-lr:predict", "/v2/models/fraud-hgb/infer",
            "/v1/models/fraud-onnx/versions/{version}:classify", "/v1/models/{name}", "/metrics"} <= set(doc["paths"])
    v2 = doc["paths"]["/v2/models/fraud-lr/infer"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    assert v2["$ref"].endswith("/FraudLrV2InferRequest")
    assert "/v2/models/{name}/infer" not in doc["paths"]


def test_docs_page_uses_only_local_assets(client):
    html = client.get("/docs").text
    assert "/docs/static/swagger-ui-bundle.js" in html and "cdn" not in html.lower()
    js = client.get("/docs/static/swagger-ui-bundle.js")
    assert js.status_code == 200 and len(js.content) > 500_000


def test_logs_are_json_lines_with_the_request_id(server, client, record):
    import json
    import time

    client.post("/predict", json=record, headers={"X-Request-ID": "log-me-42"})
    time.sleep(0.3)
    lines = [json.loads(line) for line in server.logs().splitlines() if line.startswith("{")]
    mine = [x for x in lines if x.get("request_id") == "log-me-42"]
    assert mine and mine[0]["route"] == "/predict" and mine[0]["status"] == 200


def test_v2_answers_every_output_by_default_echoes_the_id_and_names_the_model_when_ready(client, record):
    inputs = [{"name": k, "shape": [1], "datatype": {"str": "BYTES", "bool": "BOOL", "int": "INT64",
                                                      "float": "FP64"}[type(v).__name__], "data": [v]}
              for k, v in record.items()]
    r = client.post("/v2/models/fraud-lr/infer", json={"id": "req-9", "inputs": inputs})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["id"] == "req-9" and body["model_name"] == "fraud-lr" and body["model_version"] == "1"
    assert [o["name"] for o in body["outputs"]] == ["label", "probabilities", "class_name"]
    assert body["outputs"][2]["data"] == [["legit", "fraud"][body["outputs"][0]["data"][0]]]
    nested = client.post("/v2/models/fraud-lr/versions/1/infer", json={"inputs": [
        {**t, "shape": [1, 1], "data": [t["data"]]} for t in inputs], "outputs": [{"name": "label"}]}).json()
    assert "id" not in nested and [o["name"] for o in nested["outputs"]] == ["label"]
    assert client.get("/v2/models/fraud-lr/ready").json() == {"name": "fraud-lr", "ready": True}
    assert client.get("/v2/models/fraud-lr/versions/1/ready").json() == {"name": "fraud-lr", "version": "1",
                                                                          "ready": True}


def test_v2_tensors_in_any_order_and_several_rows_score_like_predict(client, record):
    """The fast path keys tensors by name: their order does not matter, and two rows are two answers."""
    inputs = [{"name": k, "shape": [2], "datatype": {"str": "BYTES", "bool": "BOOL", "int": "INT64",
                                                      "float": "FP64"}[type(v).__name__], "data": [v, v]}
              for k, v in record.items()]
    expected = client.post("/predict", json=record).json()["probabilities"]
    for order in (inputs, inputs[::-1]):
        r = client.post("/v2/models/fraud-lr/infer", json={"inputs": order, "outputs": [{"name": "probabilities"}]})
        assert r.status_code == 200, r.text
        (out,) = r.json()["outputs"]
        assert out["shape"] == [2, 2] and out["data"] == pytest.approx([expected["legit"], expected["fraud"]] * 2)


def test_a_body_sent_in_chunks_is_read_whole(client, record):
    """Chunked transfer: the body may arrive in several ASGI messages; it is joined before it is parsed."""
    body = json.dumps(record).encode()
    whole = client.post("/predict", content=body, headers={"content-type": "application/json"}).json()
    chunked = client.post("/predict", content=iter([body[i:i + 7] for i in range(0, len(body), 7)]),
                          headers={"content-type": "application/json"})
    assert chunked.status_code == 200, chunked.text
    assert chunked.json()["probabilities"] == whole["probabilities"]


def test_tf_serving_classify_regress_single_values_and_labels(client, record):
    one = client.post("/v1/models/fraud-lr:predict", json={"inputs": record})
    assert one.status_code == 200, one.text
    p = one.json()["outputs"]["probabilities"][0]
    context = {k: v for k, v in record.items() if k != "amount"}
    r = client.post("/v1/models/fraud-lr:classify", json={"signature_name": "serving_default", "context": context,
                                                          "examples": [{"amount": record["amount"]}]})
    assert r.status_code == 200, r.text
    assert r.json()["result"] == [[["legit", pytest.approx(p[0])], ["fraud", pytest.approx(p[1])]]]
    r = client.post("/v1/models/fraud-lr/versions/1:regress", json={"examples": [record, record]})
    assert r.status_code == 200 and r.json()["result"] == pytest.approx([p[1], p[1]])
    r = client.get("/v1/models/fraud-lr/labels/stable")
    assert r.status_code == 404 and "labels are not supported" in r.json()["error"]
    assert client.get("/v1/models/fraud-lr:classify").status_code == 405


def test_v2_protocol_with_the_open_inference_protocol_client(server, record):
    """The OIP working group's generated client (``open-inference-openapi``): its pydantic models parse every answer.

    The KServe SDK (kserve 0.21) and MLServer (1.7) cannot be installed next to the kit's pins (they need
    pandas < 3, psutil < 6, protobuf 6, an older FastAPI); this client is generated from the same spec.
    """
    from open_inference.openapi.client import OpenInferenceClient
    from open_inference.openapi.core.api_error import ApiError
    from open_inference.openapi.types import InferenceRequest, RequestInput, RequestOutput

    client = OpenInferenceClient(base_url=server.url)
    client.check_server_liveness()
    client.check_server_readiness()
    client.check_model_readiness("fraud-onnx")
    client.check_model_version_readiness("fraud-onnx", "1")
    assert client.read_server_metadata().name == "shipml"
    meta = client.read_model_metadata("fraud-onnx")
    assert meta.name == "fraud-onnx" and {t.name for t in meta.inputs} == set(record)
    assert client.read_model_version_metadata("fraud-onnx", "1").versions == ["1"]
    kinds = {str: "BYTES", bool: "BOOL", int: "INT64", float: "FP64"}
    # The client's TensorData (pydantic v1, Union[float, str, bool]) turns JSON booleans into 0.0/1.0, which
    # the spec's BOOL tensors do not allow; the boolean tensor is built without that coercion.
    request = InferenceRequest(id="oip-1", inputs=[
        (RequestInput.construct if isinstance(v, bool) else RequestInput)(
            name=k, shape=[2], datatype=kinds[type(v)], data=[v, v]) for k, v in record.items()])
    answer = client.model_infer("fraud-onnx", request=request)
    assert answer.id == "oip-1" and answer.model_name == "fraud-onnx"
    assert [o.name for o in answer.outputs] == ["label", "probabilities", "class_name"]
    proba = next(o for o in answer.outputs if o.name == "probabilities")
    assert proba.shape == [2, 2] and abs(sum(proba.data.__root__[:2]) - 1) < 1e-6
    one = client.model_version_infer("fraud-onnx", "1", request=InferenceRequest(
        inputs=request.inputs, outputs=[RequestOutput(name="class_name")]))
    assert [o.name for o in one.outputs] == ["class_name"]
    with pytest.raises(ApiError) as refused:
        client.read_model_metadata("nope")
    assert refused.value.status_code == 404 and "not served" in refused.value.body["error"]
