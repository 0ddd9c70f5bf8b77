"""What operators rely on under load and against bad clients: probes stay fast, idle sockets close, hooks fire."""

from __future__ import annotations

import socket
import statistics
import time

import httpx
import pytest
from serving_data import RECORD
from shipml.serving import BackgroundServer

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def hgb_repo(tmp_path_factory, hgb_bundle):
    import shutil

    root = tmp_path_factory.mktemp("hgb-repo")
    shutil.copytree(hgb_bundle, root / "fraud-hgb" / "1")
    return root


LOAD = """
import asyncio, json, sys, time
import httpx

async def main(url, seconds, connections, body):
    latencies = []
    limits = httpx.Limits(max_connections=connections)
    async with httpx.AsyncClient(limits=limits, timeout=60) as client:
        end = time.perf_counter() + seconds
        async def worker():
            while time.perf_counter() < end:
                t = time.perf_counter()
                r = await client.post(url, content=body, headers={"content-type": "application/json"})
                assert r.status_code == 200, r.text
                latencies.append(time.perf_counter() - t)
        await asyncio.gather(*(worker() for _ in range(connections)))
    latencies.sort()
    print(json.dumps({"n": len(latencies), "p50": latencies[len(latencies) // 2]}))

record, rows = json.loads(sys.argv[4]), int(sys.argv[5])
kinds = {str: "BYTES", bool: "BOOL", int: "INT64", float: "FP64"}
body = json.dumps({"inputs": [{"name": k, "shape": [rows], "datatype": kinds[type(v)], "data": [v] * rows}
                              for k, v in record.items()], "outputs": [{"name": "label"}]}).encode()
asyncio.run(main(sys.argv[1], float(sys.argv[2]), int(sys.argv[3]), body))
"""


def test_health_and_metrics_answer_fast_while_scikit_learn_is_saturated(hgb_repo):
    """8 clients (another process) keep the scikit-learn model busy with 1,000-row requests; probes must not wait.

    The requests are cheap for the client (bytes made once, labels only in the answer), so the server is
    the bottleneck: with predictions in the event loop a probe queues behind them.

    Before, predictions ran in the event loop and a probe waited for the predictions queued before it (a
    p99 above the 1 s Kubernetes probe timeout under load). Now they run in a worker thread; a probe waits
    for the loop only. Bounds are generous (the machine is shared): the probe's median must be a small
    fraction of a prediction's, and its 90th percentile below 250 ms.
    """
    import http.client
    import json
    import subprocess
    import sys

    with BackgroundServer(hgb_repo) as s:
        load = subprocess.Popen([sys.executable, "-c", LOAD, f"{s.url}/v2/models/fraud-hgb/infer", "8", "8",
                                 json.dumps(RECORD), "1000"],
                                stdout=subprocess.PIPE, text=True)
        try:
            time.sleep(2.0)  # the queue fills
            host, port = s.url.removeprefix("http://").split(":")
            conn = http.client.HTTPConnection(host, int(port), timeout=30)
            probes = []
            deadline = time.monotonic() + 4.0
            while time.monotonic() < deadline:
                for path in ("/v2/health/ready", "/v2/health/live", "/metrics"):
                    t = time.perf_counter()
                    conn.request("GET", path)
                    r = conn.getresponse()
                    r.read()
                    assert r.status == 200
                    probes.append(time.perf_counter() - t)
                time.sleep(0.05)
            conn.close()
            out, _ = load.communicate(timeout=60)
        finally:
            load.kill()
    assert load.returncode == 0, out
    result = json.loads(out)
    probes.sort()
    p_probe, p90_probe = statistics.median(probes), probes[int(0.9 * len(probes))]
    print(f"probe p50 {p_probe * 1000:.1f} ms p90 {p90_probe * 1000:.1f} ms; prediction p50 "
          f"{result['p50'] * 1000:.1f} ms ({result['n']} predictions, {len(probes)} probes)")
    assert len(probes) >= 20
    assert p_probe < result["p50"] / 4, (p_probe, result)  # the median, as the docstring says: p90 is noisy
    assert p90_probe < 0.25, p90_probe


def read_one_response(sock: socket.socket) -> bytes:
    """One whole HTTP/1.1 response (head, then Content-Length bytes): headers and body may arrive apart."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(4096)
        assert chunk, f"connection closed mid-response: {data!r}"
        data += chunk
    head, body = data.split(b"\r\n\r\n", 1)
    length = next(int(line.split(b":", 1)[1]) for line in head.split(b"\r\n")
                  if line.lower().startswith(b"content-length:"))
    while len(body) < length:
        chunk = sock.recv(4096)
        assert chunk, f"connection closed mid-body: {data!r}"
        body += chunk
    return head + b"\r\n\r\n" + body


def test_a_silent_or_slow_client_is_disconnected_after_the_header_timeout(model_repo):
    with BackgroundServer(model_repo, env={"SHIPML_HEADER_TIMEOUT": "1", "SHIPML_KEEPALIVE_SECONDS": "1"}) as s:
        host, port = s.url.removeprefix("http://").split(":")
        silent = socket.create_connection((host, int(port)), timeout=10)
        slow = socket.create_connection((host, int(port)), timeout=10)
        idle = socket.create_connection((host, int(port)), timeout=10)
        reused = socket.create_connection((host, int(port)), timeout=10)  # half a second request after an answer
        for sock in (idle, reused):
            sock.sendall(b"GET /v2/health/live HTTP/1.1\r\nHost: x\r\n\r\n")
            assert b"200 OK" in read_one_response(sock)
        started = time.monotonic()
        slow.sendall(b"GET /v2/health/live HTTP/1.1\r\n")
        reused.sendall(b"GET /v2/health/live HTTP/1.1\r\nHo")
        for sock in (silent, slow, idle, reused):
            sock.settimeout(8)
            assert sock.recv(1) == b"", "the server should have closed this connection"
        assert time.monotonic() - started < 6
        for sock in (silent, slow, idle, reused):
            sock.close()
        assert httpx.get(f"{s.url}/v2/health/ready").status_code == 200


def test_a_body_trickled_or_never_sent_is_answered_408_after_the_body_timeout(model_repo):
    """Headers at once, then the body at 1 byte/s (or nothing): 408 with a message, the socket closed, counted."""
    import json

    body = json.dumps(RECORD).encode()
    head = (f"POST /predict HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\n\r\n").encode()
    env = {"SHIPML_BODY_TIMEOUT": "1", "SHIPML_DEFAULT_MODEL": "fraud-onnx"}
    with BackgroundServer(model_repo, env=env) as s:
        host, port = s.url.removeprefix("http://").split(":")
        trickle = socket.create_connection((host, int(port)), timeout=10)
        silent = socket.create_connection((host, int(port)), timeout=10)
        split = socket.create_connection((host, int(port)), timeout=10)
        started = time.monotonic()
        for sock in (trickle, silent, split):
            sock.sendall(head)
        time.sleep(0.3)
        split.sendall(body)  # late but within the timeout: answered as usual
        assert b"HTTP/1.1 200" in read_one_response(split)
        trickle.settimeout(1.0)
        answer, sent = b"", 0
        while time.monotonic() - started < 8 and b"\r\n\r\n" not in answer:
            try:
                trickle.sendall(body[sent:sent + 1])
                sent += 1
                answer += trickle.recv(4096)  # waits up to 1 s: one byte a second
            except TimeoutError:
                continue
            except OSError:
                break
        took = time.monotonic() - started
        assert answer.startswith(b"HTTP/1.1 408"), answer
        assert sent < len(body) and took < 5, (sent, took)
        silent.settimeout(8)
        answers = {"trickle": answer + _rest(trickle), "silent": _rest(silent)}
        for name, raw in answers.items():
            assert raw.startswith(b"HTTP/1.1 408"), (name, raw)
            assert b"connection: close" in raw.lower(), (name, raw)
            error = json.loads(raw.split(b"\r\n\r\n", 1)[1])["error"]
            assert "SHIPML_BODY_TIMEOUT" in error and "1 s" in error, error
        for sock in (trickle, silent, split):
            sock.close()
        assert httpx.post(f"{s.url}/predict", json=RECORD).status_code == 200
        metrics = httpx.get(f"{s.url}/metrics").text
        assert 'shipml_requests_total{method="POST",route="/predict",status="408"} 2.0' in metrics, metrics


def _rest(sock: socket.socket) -> bytes:
    """Everything until the server closes the connection (it must: a 408 ends it)."""
    data = b""
    while chunk := sock.recv(4096):
        data += chunk
    return data


class Recorder:
    """A test extension: records every completed prediction and its lifecycle calls."""

    name = "recorder"

    def __init__(self) -> None:
        self.events: list = []
        self.calls: list[str] = []

    def install(self, app) -> None:
        self.calls.append("install")

    async def startup(self, app) -> None:
        self.calls.append("startup")
        app.state.components["recorder"] = self

    async def shutdown(self, app) -> None:
        self.calls.append("shutdown")

    def on_prediction(self, event) -> None:
        self.events.append(event)


def test_every_prediction_route_publishes_one_completed_prediction(model_repo):
    """In-process (the extension is a Python object): a real uvicorn server on a loopback socket."""
    import threading

    import uvicorn
    from shipml.serving import create_app
    from shipml.settings import Settings

    recorder = Recorder()
    app = create_app(Settings(models=model_repo, default_model="fraud-onnx", poll_seconds=0), extensions=[recorder])
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    try:
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                if httpx.get(url + "/v2/health/ready").status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        inputs = [{"name": k, "shape": [1], "datatype": {"str": "BYTES", "bool": "BOOL", "int": "INT64",
                                                          "float": "FP64"}[type(v).__name__], "data": [v]}
                  for k, v in RECORD.items()]
        calls = [("/predict", RECORD), ("/predict/batch", {"records": [RECORD, RECORD]}),
                 ("/v1/models/fraud-lr:predict", {"instances": [RECORD]}),
                 ("/v1/models/fraud-lr:classify", {"examples": [RECORD]}),
                 ("/v1/models/fraud-hgb/versions/1:regress", {"examples": [RECORD]}),
                 ("/v2/models/fraud-onnx/infer", {"inputs": inputs})]
        for path, body in calls:
            r = httpx.post(url + path, json=body, headers={"x-request-id": f"id-{len(recorder.events)}"})
            assert r.status_code == 200, r.text
        httpx.post(url + "/predict", json={"amount": "x"})  # refused: no prediction, no event
    finally:
        server.should_exit = True
        thread.join(10)
    assert recorder.calls == ["install", "startup", "shutdown"]
    assert [e.route for e in recorder.events] == [
        "/predict", "/predict/batch", "/v1/models/{name}:predict", "/v1/models/{name}:classify",
        "/v1/models/{name}/versions/{version}:regress", "/v2/models/{name}/infer"]
    assert [e.request_id for e in recorder.events] == [f"id-{i}" for i in range(6)]
    batch = recorder.events[1]
    assert batch.n_rows == 2 and batch.scores.shape == (2, 2) and batch.features["amount"] == [182.4, 182.4]
    assert recorder.events[2].model == "fraud-lr" and recorder.events[4].model == "fraud-hgb"
    assert recorder.events[5].backend == "onnx" and recorder.events[0].labels[0] in (0, 1)
