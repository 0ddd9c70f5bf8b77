"""Rollouts with ``shipml serve --workers 2``: one admin request reaches every worker, the analysis adds up
every worker's traffic and its decision applies everywhere.

One real server with two worker processes on 127.0.0.1. Clients send ``Connection: close`` so each
request opens a new connection and the kernel hands it to either worker; the admin status names the
worker that answered (``worker``) and each worker's requests (``workers``), which shows that both took
part. Client keys make the canary side of each request known in advance (:func:`bucket`).
"""

from __future__ import annotations

import json
import shutil
import time

import httpx
import pytest
from shipml.data import SCHEMA, make_transactions
from shipml.models import save_bundle, train
from shipml.release.faults import constant_bundle, failing_bundle
from shipml.serving import BackgroundServer
from shipml.serving.rollout import bucket
from shipml.serving.rollout.shared import SYNC_SECONDS

KEY = "workers-k3y-for-tests"
TRAFFIC = json.loads(make_transactions(600, seed=21)[SCHEMA.names].to_json(orient="records"))
SETTLE = 3 * SYNC_SECONDS  # every worker has published its last counts after this


@pytest.fixture(scope="module")
def server(tmp_path_factory, lr_bundle):
    root = tmp_path_factory.mktemp("workers-repo")
    good = save_bundle(train(make_transactions(20_000, seed=5), "lr", seed=5),
                       tmp_path_factory.mktemp("good") / "b", name="fraud", version=2)
    failing = failing_bundle(make_transactions(10_000, seed=3), tmp_path_factory.mktemp("failing") / "b",
                             amount_above=250.0)
    for name, v2 in [("split", good), ("admin", good), ("failing", failing), ("fraud", good)]:
        shutil.copytree(lr_bundle, root / name / "1")
        shutil.copytree(v2, root / name / "2")
    shutil.copytree(lr_bundle, root / "auto" / "1")  # its version 2 arrives during a test
    # SHIPML_ROLLOUT_POLICY: a version copied in later is a canary (what is there at the start serves as before)
    env = {"SHIPML_API_KEY": KEY, "SHIPML_ACCESS_LOG": "off", "SHIPML_POLL_SECONDS": "0.3",
           "SHIPML_ROLLOUT_POLICY": "canary", "SHIPML_ROLLOUT_SHARE": "0.3", "SHIPML_ROLLOUT_MIN_REQUESTS": "150"}
    with BackgroundServer(root, workers=2, env=env) as s:
        s.repo = root
        yield s


@pytest.fixture
def client(server):
    """A new connection per request: requests spread over both workers."""
    with httpx.Client(base_url=server.url, timeout=10, headers={"X-API-Key": KEY, "Connection": "close"}) as c:
        yield c


def status(client, model: str) -> dict:
    r = client.get(f"/admin/models/{model}/rollout")
    assert r.status_code == 200, r.text
    return r.json()


def from_both_workers(client, model: str) -> dict[int, dict]:
    """The status as each of the two workers answers it."""
    seen: dict[int, dict] = {}
    for _ in range(60):
        st = status(client, model)
        seen[st["worker"]] = st
        if len(seen) == 2:
            return seen
    raise AssertionError(f"60 new connections all reached worker {list(seen)}")


def predict(client, model: str, i: int) -> httpx.Response:
    return client.post("/predict", params={"model": model}, json=TRAFFIC[i % len(TRAFFIC)],
                       headers={"X-Client-Key": f"customer-{i}"})


def drive(client, model: str, limit: int = 600, seconds: float = 15.0) -> dict:
    """Canary traffic until the rollout ends (status every 5 requests): what the clients saw."""
    seen = {"sent": 0, "errors": 0}
    deadline = time.monotonic() + seconds
    for i in range(limit):
        r = predict(client, model, i)
        seen["sent"] += 1
        if r.status_code >= 500:
            seen["errors"] += 1
            assert "canary candidate" in r.json()["error"]
        else:
            assert r.status_code == 200, r.text
        if i % 5 == 4 and status(client, model)["state"] != "running":
            return seen
        assert time.monotonic() < deadline, f"no decision after {seen}"
    raise AssertionError(f"no decision after {seen}")


def test_one_admin_request_sets_the_split_of_both_workers(client):
    share = 0.3
    r = client.put("/admin/models/split/rollout", json={"candidate": 2, "share": share, "auto": False})
    assert r.status_code == 200 and r.json()["state"] == "running", r.text
    for i in range(80):  # at once: the admin answer came once every worker had applied the rollout
        got = predict(client, "split", i)
        assert got.status_code == 200, got.text
        expected = 2 if bucket(f"customer-{i}", "split", 2) < share else 1
        assert got.json()["version"] == expected, (i, got.json())
    time.sleep(SETTLE)
    st = status(client, "split")
    workers = {w["pid"]: w["stable_requests"] + w["candidate_requests"] for w in st["workers"]}
    assert len(workers) == 2 and min(workers.values()) > 0, workers  # both workers answered, with the split
    assert sum(workers.values()) == 80
    assert st["verdict"]["candidate"]["requests"] == sum(w["candidate_requests"] for w in st["workers"]) > 0


def test_an_admin_request_to_the_other_worker_sees_the_same_rollout(client):
    r = client.put("/admin/models/admin/rollout", json={"candidate": 2, "share": 0.2, "auto": False})
    assert r.status_code == 200, r.text
    first = r.json()
    both = from_both_workers(client, "admin")
    for st in both.values():
        assert (st["state"], st["stable"], st["candidate"], st["share"], st["started_at"]) == (
            "running", 1, 2, 0.2, first["started_at"])
    # whichever worker they reach, a second rollout is refused and a rollback ends this one for everybody
    assert {client.put("/admin/models/admin/rollout", json={"candidate": 2}).status_code for _ in range(10)} == {409}
    r = client.delete("/admin/models/admin/rollout")
    assert r.status_code == 200 and r.json()["state"] == "rolled_back", r.text
    assert client.delete("/admin/models/admin/rollout").status_code == 409  # ended everywhere
    keys = [i for i in range(200) if bucket(f"customer-{i}", "admin", 2) < 0.2][:20]
    assert {predict(client, "admin", i).json()["version"] for i in keys} == {1}
    assert {st["state"] for st in from_both_workers(client, "admin").values()} == {"rolled_back"}


def test_a_failing_canary_is_aborted_once_on_both_workers_traffic(client):
    r = client.put("/admin/models/failing/rollout", json={"candidate": 2, "share": 0.3,
                                                            "bounds": {"min_requests": 200}})
    assert r.status_code == 200, r.text
    seen = drive(client, "failing")
    time.sleep(SETTLE)
    st = status(client, "failing")
    assert st["state"] == "aborted" and "early abort" in st["reason"] and "error ratio" in st["reason"], st
    assert all(w["candidate_requests"] > 0 for w in st["workers"]) and len(st["workers"]) == 2, st["workers"]
    assert st["candidate_client_errors"] == seen["errors"] >= 2
    assert st["verdict"]["candidate"]["requests"] < 200 and seen["errors"] <= 0.3 * seen["sent"]
    assert st["history"][0]["state"] == "aborted"
    metrics = client.get("/metrics").text  # the sum over both workers: decided once
    assert 'shipml_rollout_decisions_total{decision="aborted",model="failing"} 1.0' in metrics
    # both workers serve the stable version only, to the customers the canary had
    keys = [i for i in range(300) if bucket(f"customer-{i}", "failing", 2) < 0.3][:30]
    after = [predict(client, "failing", i) for i in keys]
    assert {a.status_code for a in after} == {200} and {a.json()["version"] for a in after} == {1}
    assert {(s["state"], s["serving"]) for s in from_both_workers(client, "failing").values()} == {("aborted", 1)}


def test_a_good_canary_is_promoted_on_the_sum_of_both_workers_requests(client):
    bounds = {"min_requests": 60, "latency_slack_ms": 25.0}
    r = client.put("/admin/models/fraud/rollout", json={"candidate": 2, "share": 0.3, "bounds": bounds})
    assert r.status_code == 200, r.text
    seen = drive(client, "fraud")
    time.sleep(SETTLE)
    st = status(client, "fraud")
    assert st["state"] == "promoted" and seen["errors"] == 0, st
    per_worker = [w["candidate_requests"] for w in st["workers"]]
    assert st["verdict"]["candidate"]["requests"] >= 60 and len(per_worker) == 2 and min(per_worker) > 0, st
    assert 'shipml_rollout_decisions_total{decision="promoted",model="fraud"} 1.0' in client.get("/metrics").text
    assert {predict(client, "fraud", i).json()["version"] for i in range(20)} == {2}


def test_a_version_copied_in_is_one_canary_for_both_workers_and_rolled_back_once(client, server, tmp_path):
    """What a pipeline does with SHIPML_ROLLOUT_POLICY=canary: each worker loads the new version by itself;
    the first to route a request releases it, the other takes that same rollout."""
    constant_bundle(make_transactions(5000, seed=3), tmp_path / "next", name="auto", version=2)
    shutil.copytree(tmp_path / "next", server.repo / "auto" / "incoming")
    (server.repo / "auto" / "incoming").rename(server.repo / "auto" / "2")  # appears whole
    deadline = time.monotonic() + 15
    while sum("2" in {v["version"] for v in client.get("/v1/models/auto").json()["model_version_status"]}
              for _ in range(16)) < 16:  # 16 new connections in a row: both workers have loaded it
        assert time.monotonic() < deadline, "version 2 was not loaded"
        time.sleep(0.1)
    seen = drive(client, "auto")
    time.sleep(SETTLE)
    st = status(client, "auto")
    assert (st["state"], st["stable"], st["candidate"], st["share"]) == ("aborted", 1, 2, 0.3), st
    assert "KS D" in st["reason"] and seen["errors"] == 0
    assert len(st["workers"]) == 2 and min(w["candidate_requests"] for w in st["workers"]) > 0, st["workers"]
    assert len(st["history"]) == 1  # one rollout, not one per worker
    assert 'shipml_rollout_decisions_total{decision="aborted",model="auto"} 1.0' in client.get("/metrics").text
    assert {predict(client, "auto", i).json()["version"] for i in range(20)} == {1}
