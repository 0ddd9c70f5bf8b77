"""Canary and shadow releases in a real server: bad candidates rolled back by themselves, a good one promoted.

One server (``python -m shipml serve`` on 127.0.0.1, with an API key so the admin routes are on) serves
several models, each with a stable version 1 (logistic regression) and a version 2: a retrained good
model, a constant scorer (``DummyClassifier``) or a model that raises for payments above 250 — real
bundles from :mod:`shipml.release.faults`. Traffic is seeded transactions, sent with client keys, so
which side answers each request is decided by the same hash every run.
"""

from __future__ import annotations

import json
import shutil
import time

import httpx
import pytest
from shipml.data import SCHEMA, make_transactions
from shipml.models import save_bundle, train
from shipml.release.faults import constant_bundle, failing_bundle, slow_bundle
from shipml.serving import BackgroundServer
from shipml.serving.rollout import bucket

KEY = "admin-k3y-for-tests"
AUTH = {"X-API-Key": KEY}
FAIL_ABOVE = 250.0  # the schema's example payment (what the server proves a version with) is 250
SLOW_MS = 100.0
SHADOW_QUEUE = 2
TRAFFIC = json.loads(make_transactions(3000, seed=11)[SCHEMA.names].to_json(orient="records"))


@pytest.fixture(scope="module")
def repo(tmp_path_factory, lr_bundle):
    root = tmp_path_factory.mktemp("rollout-repo")
    good = save_bundle(train(make_transactions(20_000, seed=5), "lr", seed=5),
                       tmp_path_factory.mktemp("good") / "b", name="fraud", version=2)
    df = make_transactions(10_000, seed=3)
    constant = constant_bundle(df, tmp_path_factory.mktemp("const") / "b")
    failing = failing_bundle(df, tmp_path_factory.mktemp("failing") / "b", amount_above=FAIL_ABOVE)
    slow = slow_bundle(df, tmp_path_factory.mktemp("slow") / "b", delay_ms=SLOW_MS)
    for name, v2 in [("fraud", good), ("sticky", good), ("const", constant), ("failing", failing),
                     ("shadow-good", good), ("shadow-bad", failing), ("slow", slow), ("shadow-slow", slow)]:
        shutil.copytree(lr_bundle, root / name / "1")
        shutil.copytree(v2, root / name / "2")
    return root


@pytest.fixture(scope="module")
def server(repo):
    env = {"SHIPML_API_KEY": KEY, "SHIPML_ACCESS_LOG": "off", "SHIPML_POLL_SECONDS": "0",
           "SHIPML_ROLLOUT_SHADOW_QUEUE": str(SHADOW_QUEUE)}
    with BackgroundServer(repo, env=env) as s:
        yield s


@pytest.fixture
def client(server):
    with httpx.Client(base_url=server.url, timeout=10, headers=AUTH) as c:
        yield c


def start(client, model: str, **body) -> dict:
    r = client.put(f"/admin/models/{model}/rollout", json={"candidate": 2, **body})
    assert r.status_code == 200, r.text
    assert r.json()["state"] == "running" and r.json()["stable"] == 1
    return r.json()


def status(client, model: str) -> dict:
    r = client.get(f"/admin/models/{model}/rollout")
    assert r.status_code == 200, r.text
    return r.json()


def drive(client, model: str, limit: int = 1500, seconds: float = 20.0) -> dict:
    """Send canary traffic (a client key per request) until the rollout ends; what the clients saw."""
    seen = {"sent": 0, "errors": 0, "by_version": {1: 0, 2: 0}, "after": None}
    deadline = time.monotonic() + seconds
    for i in range(limit):
        r = client.post("/predict", params={"model": model}, json=TRAFFIC[i % len(TRAFFIC)],
                        headers={"X-Client-Key": f"customer-{i}"})
        seen["sent"] += 1
        if r.status_code >= 500:
            seen["errors"] += 1
            assert "canary candidate" in r.json()["error"]
        else:
            assert r.status_code == 200, r.text
            seen["by_version"][r.json()["version"]] += 1
        if i % 5 == 4 and status(client, model)["state"] != "running":
            break
        assert time.monotonic() < deadline, f"no decision after {seen}"
    return seen


def test_a_failing_candidate_is_rolled_back_with_few_client_errors(client):
    share = 0.2
    start(client, "failing", share=share, bounds={"min_requests": 200})
    seen = drive(client, "failing")
    st = status(client, "failing")
    assert st["state"] == "aborted", st
    assert "early abort" in st["reason"] and "error ratio" in st["reason"]
    assert st["candidate_client_errors"] == seen["errors"] >= 2
    # clients hurt: at most the canary's share of what was sent before the abort, and it stopped early
    assert seen["errors"] <= share * seen["sent"]
    assert st["verdict"]["candidate"]["requests"] < 200
    after = [client.post("/predict", params={"model": "failing"}, json=TRAFFIC[i],
                         headers={"X-Client-Key": f"customer-{i}"}) for i in range(40)]
    assert {r.status_code for r in after} == {200} and {r.json()["version"] for r in after} == {1}
    assert st["serving"] == 1 and st["history"][0]["state"] == "aborted"
    metrics = client.get("/metrics").text
    assert 'shipml_rollout_requests_total{model="failing",outcome="error",role="candidate",version="2"}' in metrics
    assert 'shipml_rollout_decisions_total{decision="aborted",model="failing"} 1.0' in metrics


def test_a_constant_candidate_is_aborted_on_its_scores(client):
    start(client, "const", share=0.2, bounds={"min_requests": 200})
    seen = drive(client, "const")
    st = status(client, "const")
    assert st["state"] == "aborted" and "KS D" in st["reason"], st
    assert seen["errors"] == 0 and st["candidate_client_errors"] == 0
    assert 30 <= st["verdict"]["candidate"]["requests"] < 200
    assert client.post("/predict", params={"model": "const"}, json=TRAFFIC[0]).json()["version"] == 1


def test_a_good_candidate_is_promoted_after_min_requests(client):
    bounds = {"min_requests": 60, "latency_slack_ms": 25.0}
    start(client, "fraud", share=0.3, bounds=bounds)
    seen = drive(client, "fraud")
    st = status(client, "fraud")
    assert st["state"] == "promoted", st
    assert seen["errors"] == 0
    assert st["verdict"]["candidate"]["requests"] == 60 and st["verdict"]["decision"] == "promote"
    assert seen["by_version"][1] > seen["by_version"][2] > 0
    assert client.post("/predict", params={"model": "fraud"}, json=TRAFFIC[0]).json()["version"] == 2
    v2 = client.post("/v2/models/fraud/infer", json={"inputs": [
        {"name": n, "shape": [1], "datatype": dt, "data": [TRAFFIC[0][n]]}
        for n, dt in [("amount", "FP64"), ("hour", "INT64"), ("merchant_category", "BYTES"),
                      ("distance_from_home_km", "FP64"), ("card_present", "BOOL"), ("txn_count_24h", "INT64"),
                      ("account_age_days", "INT64")]]})
    assert v2.status_code == 200, v2.text
    assert v2.json()["model_version"] == "2"


def test_client_keys_are_sticky_and_split_by_the_share(client):
    share = 0.3
    start(client, "sticky", share=share, auto=False)
    sides = {}
    for _ in range(3):
        for k in range(40):
            r = client.post("/predict/batch", params={"model": "sticky"}, json={"records": TRAFFIC[k:k + 2]},
                            headers={"X-Client-Key": f"key-{k}"})
            assert r.status_code == 200, r.text
            sides.setdefault(k, set()).add(r.json()["version"])
    assert all(len(v) == 1 for v in sides.values()), sides
    on_candidate = {k for k, v in sides.items() if v == {2}}
    assert on_candidate == {k for k in range(40) if bucket(f"key-{k}", "sticky", 2) < share}
    assert 4 <= len(on_candidate) <= 20
    st = status(client, "sticky")
    assert st["state"] == "running" and st["verdict"]["candidate"]["requests"] == 3 * len(on_candidate)
    # a pinned version is never rerouted; a manual rollback sends everyone to stable
    assert client.post("/predict", params={"model": "sticky", "version": 2}, json=TRAFFIC[0],
                       headers={"X-Client-Key": "key-0"}).json()["version"] == 2
    back = client.delete("/admin/models/sticky/rollout")
    assert back.status_code == 200 and back.json()["state"] == "rolled_back"
    assert {client.post("/predict", params={"model": "sticky"}, json=TRAFFIC[0],
                        headers={"X-Client-Key": f"key-{k}"}).json()["version"] for k in on_candidate} == {1}


def wait_for(client, model: str, pred, seconds: float = 15.0) -> dict:
    deadline = time.monotonic() + seconds
    while True:
        st = status(client, model)
        if pred(st) or time.monotonic() > deadline:
            return st
        time.sleep(0.1)


def test_shadow_clients_get_stable_answers_while_both_scores_are_logged(client, server):
    start(client, "shadow-good", policy="shadow", bounds={"min_requests": 80, "latency_slack_ms": 25.0})
    versions: list[int] = []
    for i in range(400):  # 80 comparisons are needed; a few may be dropped if the shadow lags
        r = client.post("/predict", params={"model": "shadow-good"}, json=TRAFFIC[i])
        assert r.status_code == 200
        versions.append(r.json()["version"])
        if i >= 79 and i % 10 == 9 and status(client, "shadow-good")["state"] != "running":
            break
    st = wait_for(client, "shadow-good", lambda s: s["state"] != "running")
    # stable answers everything until the promotion (decided in the shadow thread), the candidate after it
    assert versions == sorted(versions) and versions.count(1) >= 80, versions
    assert st["state"] == "promoted", st
    assert st["shadow_compared"] >= 80 and st["shadow_compared"] + st["shadow_dropped"] <= versions.count(1)
    pair = st["recent_shadow"][-1]
    assert 0 <= pair["stable_score"] <= 1 and pair["stable_score"] != pair["candidate_score"]
    logged = [json.loads(line) for line in server.logs().splitlines() if '"shadow comparison"' in line]
    assert len(logged) >= 80 and {"stable_score", "candidate_score", "request_id"} <= set(logged[0])
    assert client.post("/predict", params={"model": "shadow-good"}, json=TRAFFIC[0]).json()["version"] == 2


def test_shadow_of_a_failing_candidate_never_reaches_the_clients(client):
    start(client, "shadow-bad", policy="shadow", bounds={"min_requests": 200})
    codes, versions = set(), set()
    for i in range(300):
        r = client.post("/predict", params={"model": "shadow-bad"}, json=TRAFFIC[i])
        codes.add(r.status_code)
        versions.add(r.json().get("version"))
        if i % 10 == 9 and status(client, "shadow-bad")["state"] != "running":
            break
    st = wait_for(client, "shadow-bad", lambda s: s["state"] != "running")
    assert codes == {200} and versions == {1}, (st["state"], st["reason"], st["verdict"]["candidate"], st["history"])
    assert st["state"] == "aborted" and "error ratio" in st["reason"] and st["candidate_client_errors"] == 0


def test_a_slow_candidate_is_aborted_on_latency(client):
    start(client, "slow", share=0.3, bounds={"min_requests": 30, "max_latency_ratio": 1.5})
    seen = drive(client, "slow", seconds=60.0)
    st = status(client, "slow")
    assert st["state"] == "aborted" and "too slow" in st["reason"], st
    assert st["verdict"]["candidate"]["requests"] == 30 and seen["errors"] == 0
    assert st["verdict"]["candidate"]["latency_p50_ms"] >= SLOW_MS


def test_shadow_work_is_bounded_a_lagging_candidate_is_dropped_not_waited_for(server):
    """40 requests at once against a candidate 100 ms slower: the stable answers them all, the shadow
    keeps at most SHADOW_QUEUE behind and counts the rest as dropped."""
    import asyncio

    async def burst() -> list[httpx.Response]:
        async with httpx.AsyncClient(base_url=server.url, headers=AUTH, timeout=10) as c:
            return await asyncio.gather(*(c.post("/predict", params={"model": "shadow-slow"}, json=TRAFFIC[i])
                                          for i in range(40)))

    with httpx.Client(base_url=server.url, headers=AUTH, timeout=10) as client:
        start(client, "shadow-slow", policy="shadow", auto=False)
        started = time.perf_counter()
        answers = asyncio.run(burst())
        took = time.perf_counter() - started
        assert [a.status_code for a in answers] == [200] * 40 and {a.json()["version"] for a in answers} == {1}
        st = wait_for(client, "shadow-slow", lambda s: s["shadow_compared"] + s["shadow_dropped"] == 40)
        assert st["shadow_compared"] + st["shadow_dropped"] == 40, st
        assert st["shadow_dropped"] > 0 and st["shadow_compared"] <= 40 - st["shadow_dropped"]
        assert took < 40 * SLOW_MS / 1000.0, "the stable path waited for the shadow candidate"
        metrics = client.get("/metrics").text
        assert 'shipml_rollout_shadow_dropped_total{model="shadow-slow"}' in metrics


def test_admin_needs_the_key_and_refuses_bad_bodies_with_4xx(client, server):
    url = f"{server.url}/admin/models/const/rollout"
    assert httpx.get(url).status_code == 401
    assert httpx.put(url, json={"candidate": 2}, headers={"X-API-Key": "wrong"}).status_code == 401
    bad = [({"candidate": 2, "share": 0.9}, 422), ({"candidate": 2, "policy": "yolo"}, 422),
           ({"candidate": 2, "surprise": True}, 422), ({}, 422), ({"candidate": 9}, 404),
           ({"candidate": 1, "stable": 1}, 422), ({"candidate": 2, "bounds": {"min_requests": 0}}, 422)]
    for body, code in bad:
        r = client.put("/admin/models/const/rollout", json=body)
        assert r.status_code == code, (body, r.text)
        assert r.json()["error"]
    assert client.put("/admin/models/const/rollout", content=b"{not json",
                      headers={"content-type": "application/json"}).status_code == 422
    # JSON's non-standard Infinity/NaN (Python's parser takes them) would switch a check off; true is no version
    for raw in (b'{"candidate": 2, "bounds": {"latency_slack_ms": Infinity}}', b'{"candidate": 2, "share": NaN}',
                b'{"candidate": true}'):
        r = client.put("/admin/models/const/rollout", content=raw, headers={"content-type": "application/json"})
        assert r.status_code == 422 and r.json()["error"], (raw, r.text)
    assert client.put("/admin/models/nope/rollout", json={"candidate": 2}).status_code == 404
    assert client.delete("/admin/models/const/rollout").status_code == 409  # nothing running
    assert client.post("/admin/models/const/rollout/promote").status_code == 409
    doc = client.get("/openapi.json").json()
    assert "/admin/models/{name}/rollout" in doc["paths"]
    predict = doc["paths"]["/predict"]["post"]
    assert "X-Client-Key" in [p["name"] for p in predict["parameters"]]  # the sticky key is documented
    assert {"ApiKey", "Bearer"} <= set(doc["components"]["securitySchemes"])
    assert "RolloutRequest" in doc["components"]["schemas"] and "RolloutStatus" in doc["components"]["schemas"]


def test_without_an_api_key_the_admin_routes_are_disabled(lr_bundle, tmp_path):
    """The app itself (in process: the refusal comes before the repository is even needed)."""
    import asyncio

    from shipml.serving.app import create_app
    from shipml.settings import Settings

    app = create_app(Settings(models=tmp_path))

    async def calls() -> list[httpx.Response]:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://app") as c:
            return [await c.put("/admin/models/m/rollout", json={"candidate": 1}),
                    await c.get("/admin/models/m/rollout"), await c.delete("/admin/models/m/rollout"),
                    await c.get("/openapi.json")]

    put, get, delete, doc = asyncio.run(calls())
    assert put.status_code == get.status_code == delete.status_code == 403
    assert "API key" in put.json()["error"]
    assert not any(p.startswith("/admin") for p in doc.json()["paths"])


def test_with_rollout_policy_a_new_version_arrives_as_a_canary_and_is_rolled_back(lr_bundle, tmp_path):
    """What a pipeline does: copy the next version into the repository; the server canaries it by itself."""
    root = tmp_path / "repo"
    shutil.copytree(lr_bundle, root / "auto" / "1")
    env = {"SHIPML_API_KEY": KEY, "SHIPML_ACCESS_LOG": "off", "SHIPML_POLL_SECONDS": "0.2",
           "SHIPML_ROLLOUT_POLICY": "canary", "SHIPML_ROLLOUT_SHARE": "0.25", "SHIPML_ROLLOUT_MIN_REQUESTS": "150",
           "SHIPML_ROLLOUT_LATENCY_SLACK_MS": "40"}
    with BackgroundServer(root, env=env) as s, httpx.Client(base_url=s.url, timeout=10, headers=AUTH) as c:
        assert c.post("/predict", json=TRAFFIC[0]).json()["version"] == 1
        constant_bundle(make_transactions(5000, seed=3), tmp_path / "next", name="auto", version=2)
        shutil.copytree(tmp_path / "next", root / "auto" / "incoming")
        (root / "auto" / "incoming").rename(root / "auto" / "2")  # appears whole
        deadline = time.monotonic() + 15
        while "2" not in {v["version"] for v in c.get("/v1/models/auto").json()["model_version_status"]}:
            assert time.monotonic() < deadline, "version 2 was not loaded"
            time.sleep(0.1)
        seen = drive(c, "auto")
        st = status(c, "auto")
        assert st["state"] == "aborted" and st["stable"] == 1 and st["candidate"] == 2, st
        assert st["share"] == 0.25 and st["bounds"]["min_requests"] == 150 and st["bounds"]["latency_slack_ms"] == 40
        assert seen["by_version"][2] == st["verdict"]["candidate"]["requests"] < 150
        assert c.post("/predict", json=TRAFFIC[0]).json()["version"] == 1
