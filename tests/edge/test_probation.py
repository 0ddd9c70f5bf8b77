"""Probation after a live swap: the device's real HTTP server, real onnxruntime, real signed bundles.

The bad updates are real ONNX graphs, edited with the ``onnx`` package (``shipml.edge.faults``) so that
they answer NaN (or raise) for amounts in a band that real traffic hits but the self-test's probe rows do
not; they are re-hashed and re-signed with the kit's own helpers, so the device accepts them, exactly as it
would a colleague's broken export.
"""

from __future__ import annotations

import http.client
import json
import os
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from shipml.bundle import sign_bundle, verify_bundle, write_bundle
from shipml.edge import update
from shipml.edge.device import make_server
from shipml.edge.faults import fail_on_band
from shipml.edge.probation import ProbationSettings
from shipml.errors import ShipmlError
from shipml.waiting import wait_until

BAND = (60.0, 140.0)  # amounts the poisoned graphs fail on: common in real traffic, between two probe rows


@pytest.fixture(scope="module")
def signer(tmp_path_factory) -> tuple[Path, Path]:
    from shipml.signing import new_keypair

    root = tmp_path_factory.mktemp("probation-keys")
    pair = new_keypair("release", root / "private")
    trusted = root / "trusted"
    trusted.mkdir()
    shutil.copy(pair.public_path, trusted)
    return pair.private_path, trusted


@pytest.fixture(scope="module")
def rows(heldout) -> list[dict]:
    """Valid instances, about a third of them inside BAND."""
    records = heldout.drop(columns=["is_fraud"]).head(300).to_dict("records")
    return [{k: (v.item() if hasattr(v, "item") else v) for k, v in r.items()} for r in records]


def _in_band(row: dict) -> bool:
    return BAND[0] < row["amount"] < BAND[1]


def _release(source: Path, out: Path, version: int, key: Path, poison: str | None = None) -> Path:
    """A signed copy of ``source`` as ``version``; ``poison``: "nan" or "raise" on amounts inside BAND."""
    if poison is None:
        out = Path(shutil.copytree(source, out))
        metadata = verify_bundle(out)
        metadata.version = version
        write_bundle(out, metadata)  # re-hashes (and drops the old signature)
    else:
        out = fail_on_band(source, out, "amount", *BAND, how=poison, version=version)
    sign_bundle(out, key)
    return out


class Traffic:
    """A client sending one valid row per request, in a loop, on one keep-alive connection (like a POS terminal)."""

    def __init__(self, port: int, rows: list[dict]) -> None:
        self.port, self.rows = port, rows
        self.answers: list[tuple[float, dict, int, dict, str | None]] = []  # (time, row, status, body, fallback)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> Traffic:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join(timeout=10)

    def _run(self) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        i = 0
        while not self._stop.is_set() and i < 20_000:
            row = self.rows[i % len(self.rows)]
            status, body, headers = _post(conn, {"instances": [row]})
            self.answers.append((time.monotonic(), row, status, body, headers.get("X-Shipml-Fallback")))
            i += 1

    def wait_for(self, n: int, timeout: float = 20) -> None:
        start = len(self.answers)
        wait_until(lambda: len(self.answers) >= start + n, timeout, interval=0.02, what=f"{n} more answers")


def _post(conn: http.client.HTTPConnection, body) -> tuple[int, dict, dict]:
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    conn.request("POST", "/predict", body=data, headers={"Content-Type": "application/json"})
    response = conn.getresponse()
    return response.status, json.loads(response.read()), dict(response.getheaders())


def _log(device: Path, stage: str) -> list[dict]:
    path = device / update.LOG_FILE
    lines = path.read_text().splitlines() if path.exists() else []
    return [e for e in map(json.loads, lines) if e["stage"] == stage]


@pytest.fixture
def serving(lr_edge, signer, tmp_path):
    """A device folder on v1 and its real HTTP server, watching the folder every 50 ms."""
    started = []

    def start(probation: ProbationSettings, poison_v1: str | None = None):
        key, trusted = signer
        device = tmp_path / "device"
        v1 = _release(lr_edge, tmp_path / "v1", 1, key, poison=poison_v1)
        assert update.apply_update(device, v1, trusted_keys=trusted).accepted
        server = make_server(device, "127.0.0.1", 0, trusted_keys=trusted)
        threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
        watcher = update.watch_device(server, device, trusted_keys=trusted, every=0.05, probation=probation)
        started.append((server, watcher))
        return device, server, update.current_bundle(device)

    yield start
    for server, watcher in started:
        watcher.stop()
        server.shutdown()
        server.server_close()


def _health(server) -> dict:
    conn = http.client.HTTPConnection("127.0.0.1", server.server_address[1], timeout=5)
    conn.request("GET", "/health")
    return json.loads(conn.getresponse().read())


def test_the_poisoned_graphs_pass_the_self_test_but_fail_real_rows(lr_edge, signer, rows, tmp_path):
    """The premise: probe rows miss BAND, a third of real traffic is in it, and the self-test accepts both."""
    from shipml.edge.runtime import OnnxPredictor

    probes = update.probe_rows(OnnxPredictor.load(lr_edge).schema)["amount"]
    assert not any(BAND[0] < a < BAND[1] for a in probes)
    assert 0.15 < sum(map(_in_band, rows)) / len(rows) < 0.6
    with pytest.raises(ShipmlError, match="'merchant_category' is not a float input"):
        fail_on_band(lr_edge, tmp_path / "x", "merchant_category", 1, 2)
    for how in ("nan", "raise"):
        bad = OnnxPredictor.load(_release(lr_edge, tmp_path / how, 2, signer[0], poison=how))
        update.self_test(bad)  # passes
        inside, outside = next(r for r in rows if _in_band(r)), next(r for r in rows if not _in_band(r))
        assert bad.predict_proba({k: [v] for k, v in outside.items()}).shape == (1, 2)
        if how == "nan":
            assert str(bad.predict_proba({k: [v] for k, v in inside.items()})[0, 0]) == "nan"
        else:
            with pytest.raises(Exception, match="out of bounds|out of range|indices"):
                bad.predict_proba({k: [v] for k, v in inside.items()})


def test_a_good_update_under_live_traffic_passes_probation_and_stays(serving, lr_edge, signer, rows, tmp_path):
    device, server, v1 = serving(ProbationSettings(requests=40, seconds=60))
    v2 = _release(lr_edge, tmp_path / "v2", 2, signer[0])
    with Traffic(server.server_address[1], rows) as traffic:
        traffic.wait_for(10)
        assert update.apply_update(device, v2, trusted_keys=signer[1]).accepted
        wait_until(lambda: _log(device, "probation"), 20, interval=0.05, what="the end of probation")
        traffic.wait_for(10)
    assert {a[2] for a in traffic.answers} == {200}
    versions = [a[3]["version"] for a in traffic.answers]
    assert versions[0] == 1 and versions[-1] == 2 and versions == sorted(versions)  # one switch, never back
    assert not any(a[4] for a in traffic.answers)
    passed = _log(device, "probation")[0]
    assert passed["requests"] == 40 and passed["failed"] == 0 and "passed probation" in passed["reason"]
    assert not _log(device, "auto_rollback")
    assert update.current_bundle(device).name.startswith("fraud-lr-v2-")
    assert _health(server) == {"status": "ok", "model": "fraud-lr", "version": 2, "backend": "onnx"}


@pytest.mark.parametrize("how", ["nan", "raise"])
def test_a_bad_update_is_rolled_back_on_live_traffic_with_no_request_lost(serving, lr_edge, signer, rows, how,
                                                                          tmp_path):
    device, server, v1 = serving(ProbationSettings(requests=500, seconds=60, max_failures=2))
    v2 = _release(lr_edge, tmp_path / "v2", 2, signer[0], poison=how)
    with Traffic(server.server_address[1], rows) as traffic:
        traffic.wait_for(10)
        swapped = time.monotonic()
        assert update.apply_update(device, v2, trusted_keys=signer[1]).accepted  # its self-test passed
        wait_until(lambda: _log(device, "auto_rollback"), 20, interval=0.02, what="the automatic rollback")
        rolled_back = time.monotonic()
        traffic.wait_for(30)
    answers = traffic.answers
    # Not one request lost: every valid request got a 200, the poisoned rows from the previous model.
    assert [a[2] for a in answers].count(200) == len(answers), {a[2] for a in answers}
    assert all(a[3]["version"] == 1 for a in answers if _in_band(a[1]))
    fallbacks = [a for a in answers if a[4]]
    assert len(fallbacks) == 3 and all(a[4] == "v1" and _in_band(a[1]) for a in fallbacks)
    assert any(a[3]["version"] == 2 for a in answers)  # v2 did serve (rows outside the band) before it went
    after = [a for a in answers if a[0] > rolled_back]
    assert len(after) >= 29 and all(a[3]["version"] == 1 for a in after)
    entry = _log(device, "auto_rollback")[0]
    assert entry["failed"] == 3 and entry["version"].startswith("fraud-lr-v2-") and entry["accepted"] is False
    assert entry["restored"] == v1.name and f"3 of {entry['requests']} request(s) failed" in entry["reason"]
    assert ("non-finite probabilities (NaN or inf) for 1 of 1 rows (3x)" if how == "nan" else "raised ") \
        in entry["reason"]
    assert update.current_bundle(device) == v1 and (device / update.PREVIOUS).resolve().name == entry["version"]
    health = _health(server)
    assert health["version"] == 1 and "probation" not in health
    print(f"FIGURE probation {how}: update applied -> rolled back in {rolled_back - swapped:.2f} s "
          f"(live swap -> rollback {entry['seconds']:.2f} s, {entry['requests']} requests on v2, 0 lost)")


def test_client_errors_never_count_and_a_failure_after_probation_is_a_500(serving, lr_edge, signer, rows,
                                                                          tmp_path):
    device, server, _ = serving(ProbationSettings(requests=10, seconds=60))
    v2 = _release(lr_edge, tmp_path / "v2", 2, signer[0], poison="nan")
    assert update.apply_update(device, v2, trusted_keys=signer[1]).accepted
    wait_until(lambda: "probation" in _health(server), 10, interval=0.02, what="the swap")
    conn = http.client.HTTPConnection("127.0.0.1", server.server_address[1], timeout=5)
    inside = next(r for r in rows if _in_band(r))
    missing = dict(inside)
    del missing["hour"]
    bad_requests = [{"instances": [dict(inside, hour=30)]}, {"instances": [missing]},
                    {"instances": [dict(inside, colour="red")]}, {"rows": [inside]}, b"{not json",
                    {"instances": [dict(inside, amount="lots")]}] * 5
    for body in bad_requests:  # every one names a row the model would fail on, were it scored
        status, answer, _ = _post(conn, body)
        assert status == 400 and answer["error"], answer
    status = _health(server)["probation"]
    assert status["requests"] == 0 and status["failures"] == 0 and status["of"] == 10
    outside = [r for r in rows if not _in_band(r)][:10]
    for row in outside:
        assert _post(conn, {"instances": [row]})[1]["version"] == 2
    wait_until(lambda: _log(device, "probation"), 5, interval=0.02, what="the end of probation")
    assert not _log(device, "auto_rollback") and "probation" not in _health(server)
    status, answer, headers = _post(conn, {"instances": [inside]})  # after probation: no fallback any more
    assert status == 500 and "X-Shipml-Fallback" not in headers
    assert answer["error"].startswith("the model failed on this request: it returned non-finite probabilities")
    assert "not of the request" in answer["error"]


def test_requests_both_versions_fail_do_not_count_against_the_update(serving, lr_edge, signer, rows, tmp_path):
    """v1 already answered NaN in the band; v2 raises there instead: no regression, no rollback, clear 500s."""
    device, server, _ = serving(ProbationSettings(requests=20, seconds=60), poison_v1="nan")
    v2 = _release(lr_edge, tmp_path / "v2", 2, signer[0], poison="raise")
    assert update.apply_update(device, v2, trusted_keys=signer[1]).accepted
    wait_until(lambda: "probation" in _health(server), 10, interval=0.02, what="the swap")
    conn = http.client.HTTPConnection("127.0.0.1", server.server_address[1], timeout=5)
    answers = [_post(conn, {"instances": [row]}) for row in rows[:60]]
    inside = [a for a, row in zip(answers, rows, strict=False) if _in_band(row)]
    assert inside and all(a[0] == 500 and "it raised " in a[1]["error"] for a in inside)
    assert not _log(device, "auto_rollback")
    passed = _log(device, "probation")[0]
    assert passed["failed"] == 0 and passed["requests"] == 20
    assert update.current_bundle(device).name.startswith("fraud-lr-v2-")


def test_probation_ends_on_time_without_traffic(serving, lr_edge, signer, tmp_path):
    device, server, _ = serving(ProbationSettings(requests=1000, seconds=0.3))
    v2 = _release(lr_edge, tmp_path / "v2", 2, signer[0])
    assert update.apply_update(device, v2, trusted_keys=signer[1]).accepted
    passed = wait_until(lambda: _log(device, "probation"), 10, interval=0.02, what="probation to time out")[0]
    assert passed["requests"] == 0 and passed["seconds"] >= 0.3
    assert _health(server) == {"status": "ok", "model": "fraud-lr", "version": 2, "backend": "onnx"}


def test_an_update_that_replaces_one_still_on_probation_falls_back_past_it(serving, lr_edge, signer, rows,
                                                                           tmp_path):
    device, server, v1 = serving(ProbationSettings(requests=1000, seconds=60))
    key, trusted = signer
    for version, poison in ((2, "nan"), (3, "raise")):  # v2 never proved itself when v3 arrives
        bundle = _release(lr_edge, tmp_path / f"v{version}", version, key, poison=poison)
        assert update.apply_update(device, bundle, trusted_keys=trusted).accepted
        wait_until(lambda v=version: _health(server)["version"] == v, 10, interval=0.02, what=f"v{version}")
    assert _health(server)["probation"]["fallback_version"] == 1
    conn = http.client.HTTPConnection("127.0.0.1", server.server_address[1], timeout=5)
    status, answer, headers = _post(conn, {"instances": [next(r for r in rows if _in_band(r))]})
    assert status == 200 and answer["version"] == 1 and headers["X-Shipml-Fallback"] == "v1"
    entry = _log(device, "auto_rollback")[0]
    assert entry["version"].startswith("fraud-lr-v3-") and entry["restored"] == v1.name
    assert update.current_bundle(device) == v1 and _health(server)["version"] == 1


def test_serve_command_takes_probation_flags_and_rolls_back(lr_edge, signer, rows, tmp_path):
    key, trusted = signer
    device = tmp_path / "device"
    v1, v2 = _release(lr_edge, tmp_path / "v1", 1, key), _release(lr_edge, tmp_path / "v2", 2, key, poison="nan")
    assert update.apply_update(device, v1, trusted_keys=trusted).accepted
    env = {**os.environ, "SHIPML_EDGE_PROBATION_REQUESTS": "not a number"}
    bad = subprocess.run([sys.executable, "-m", "shipml.edge", "serve", str(device), "--port", "0"],
                         capture_output=True, text=True, env=env, timeout=60)
    assert bad.returncode == 1 and bad.stderr.strip() == ("shipml-edge: error: SHIPML_EDGE_PROBATION_REQUESTS="
                                                          "'not a number' is not an integer")
    cmd = [sys.executable, "-m", "shipml.edge", "serve", str(device), "--port", "0", "--trusted-keys", str(trusted),
           "--probation-requests", "200", "--probation-seconds", "30", "--probation-max-failures", "0"]
    with subprocess.Popen(cmd, stderr=subprocess.PIPE, text=True) as proc:
        try:
            line = proc.stderr.readline()
            assert "serving fraud-lr v1 (onnx) on http://127.0.0.1:" in line, line
            port = int(line.rsplit(":", 1)[1])
            done = subprocess.run([sys.executable, "-m", "shipml.edge", "update", str(device), str(v2),
                                   "--trusted-keys", str(trusted)], capture_output=True, text=True, timeout=60)
            assert done.returncode == 0 and done.stderr.startswith("updated: now serving fraud-lr-v2-"), done.stderr
            with Traffic(port, rows) as traffic:
                wait_until(lambda: _log(device, "auto_rollback"), 20, interval=0.05, what="the automatic rollback")
                traffic.wait_for(5)
        finally:
            proc.terminate()
            proc.wait(timeout=10)
    assert {a[2] for a in traffic.answers} == {200} and traffic.answers[-1][3]["version"] == 1
    entry = _log(device, "auto_rollback")[0]
    assert entry["failed"] == 1 and "at most 0 allowed" in entry["reason"]
    assert update.current_bundle(device).name.startswith("fraud-lr-v1-")
