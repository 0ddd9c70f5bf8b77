"""The server's defences for real (uvicorn on loopback): key files and rotation, ops paths behind the
key, 429 with Retry-After, HTTPS with a kit-made certificate, and no secret in any answer or log line."""

from __future__ import annotations

import os
import shutil
import ssl
import time

import httpx
import pytest
from shipml.serving import BackgroundServer

pytestmark = pytest.mark.slow

RECORD = {"amount": 182.4, "hour": 23, "merchant_category": "online_retail", "distance_from_home_km": 12.5,
          "card_present": False, "txn_count_24h": 5, "account_age_days": 420}
ENV_KEY = "env-key-7c1f0a9d2e4b"
FILE_KEYS = ("file-key-new-51b2d08e", "file-key-old-93e7aa41")


@pytest.fixture(scope="module")
def repo(tmp_path_factory, lr_bundle):
    root = tmp_path_factory.mktemp("repo")
    shutil.copytree(lr_bundle, root / "fraud-lr" / "1")
    return root


@pytest.fixture(scope="module")
def key_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("secret") / "api-key"
    path.write_text("\n".join(FILE_KEYS) + "\n")
    return path


@pytest.fixture(scope="module")
def keyed(repo, key_file):
    env = {"SHIPML_API_KEY": ENV_KEY, "SHIPML_API_KEY_FILE": str(key_file), "SHIPML_ACCESS_LOG": "all",
           "SHIPML_LOG_LEVEL": "debug"}
    with BackgroundServer(repo, env=env) as s:
        yield s


def test_every_configured_key_works_and_others_do_not(keyed):
    for key in (ENV_KEY, *FILE_KEYS):
        assert httpx.post(f"{keyed.url}/predict", json=RECORD, headers={"X-API-Key": key}).status_code == 200
    assert httpx.post(f"{keyed.url}/predict", json=RECORD, headers={"X-API-Key": "nope"}).status_code == 401


def test_metrics_docs_and_openapi_need_the_key_probes_do_not(keyed):
    for path in ("/metrics", "/docs", "/openapi.json"):
        assert httpx.get(keyed.url + path).status_code == 401, path
        assert httpx.get(keyed.url + path, headers={"X-API-Key": ENV_KEY}).status_code == 200, path
    for path in ("/v2/health/live", "/v2/health/ready"):
        assert httpx.get(keyed.url + path).status_code == 200


def test_public_ops_opens_them_again(repo):
    with BackgroundServer(repo, env={"SHIPML_API_KEY": ENV_KEY, "SHIPML_PUBLIC_OPS": "true"}) as s:
        assert httpx.get(f"{s.url}/metrics").status_code == 200
        assert httpx.post(f"{s.url}/predict", json=RECORD).status_code == 401


def test_a_rotated_key_file_takes_effect_without_a_restart(repo, tmp_path):
    secret = tmp_path / "api-key"
    secret.write_text("first-key-0a1b2c\n")
    with BackgroundServer(repo, env={"SHIPML_API_KEY_FILE": str(secret)}) as s:
        def status(key):
            return httpx.post(f"{s.url}/predict", json=RECORD, headers={"X-API-Key": key}).status_code
        assert status("first-key-0a1b2c") == 200 and status("second-key-3d4e5f") == 401
        tmp = tmp_path / "api-key.new"  # how a Secret volume updates: a new file renamed into place
        tmp.write_text("second-key-3d4e5f\n")
        os.replace(tmp, secret)
        deadline = time.monotonic() + 15
        while status("second-key-3d4e5f") != 200 and time.monotonic() < deadline:
            time.sleep(0.3)
        assert status("second-key-3d4e5f") == 200 and status("first-key-0a1b2c") == 401


def test_rate_limit_per_key_answers_429_with_retry_after(repo):
    env = {"SHIPML_API_KEY": "rate-key-a", "SHIPML_RATE_LIMIT": "1", "SHIPML_RATE_BURST": "5"}
    with BackgroundServer(repo, env=env) as s, httpx.Client(base_url=s.url, headers={"X-API-Key": "rate-key-a"}) as c:
        codes = [c.post("/predict", json=RECORD).status_code for _ in range(8)]
        assert codes[:5] == [200] * 5 and 429 in codes[5:], codes
        limited = c.post("/predict", json=RECORD)
        assert limited.status_code == 429 and int(limited.headers["retry-after"]) >= 1
        assert "too many requests" in limited.json()["error"]
        assert c.get("/v2/health/ready").status_code == 200  # probes are never limited
        time.sleep(int(limited.headers["retry-after"]) + 0.2)
        assert c.post("/predict", json=RECORD).status_code == 200


def test_no_error_path_echoes_a_key_in_the_answer_or_the_log(keyed, key_file):
    """Keys sent in every place a client might put one, on every error the server has."""
    secrets = (ENV_KEY, *FILE_KEYS)
    wrong = ENV_KEY + "-but-wrong"  # a near miss contains the real key: it must not be echoed either
    seen: list[str] = []
    with httpx.Client(base_url=keyed.url, timeout=10) as c:
        attempts = [
            ("POST", "/predict", {"X-API-Key": wrong}, {"json": RECORD}),                 # 401 wrong key
            ("POST", "/predict", {"Authorization": f"Bearer {wrong}"}, {"json": RECORD}),  # 401 bearer
            ("POST", "/predict", {"Authorization": f"Basic {ENV_KEY}"}, {"json": RECORD}),  # 401 other scheme
            ("POST", f"/predict?api_key={ENV_KEY}", {}, {"json": RECORD}),                 # 401 key in the URL
            ("GET", "/metrics", {"Cookie": f"api_key={ENV_KEY}"}, {}),                     # 401 key in a cookie
            ("POST", "/predict", {"X-API-Key": ENV_KEY}, {"content": b"{not json"}),       # 400/422 bad JSON
            ("POST", "/predict", {"X-API-Key": ENV_KEY}, {"json": {**RECORD, "amount": "x"}}),  # 422
            ("POST", "/predict?model=nope", {"X-API-Key": ENV_KEY}, {"json": RECORD}),     # 404 model
            ("GET", "/no/such/route", {"X-API-Key": ENV_KEY}, {}),                          # 404 route
            ("DELETE", "/predict", {"X-API-Key": ENV_KEY}, {}),                             # 405
            ("POST", "/predict", {"X-API-Key": FILE_KEYS[0]}, {"content": b"x" * (2 << 20)}),  # 413
            ("POST", "/predict/batch", {"X-API-Key": FILE_KEYS[1]}, {"json": {"records": [RECORD] * 5000}}),
        ]
        statuses = []
        for method, path, headers, kwargs in attempts:
            r = c.request(method, path, headers={**headers, "Content-Type": "application/json"}, **kwargs)
            statuses.append(r.status_code)
            seen.append(r.text + " " + " ".join(f"{k}: {v}" for k, v in r.headers.items()))
    assert all(400 <= s < 500 for s in statuses), statuses
    assert {401, 404, 405, 413, 422} <= set(statuses), statuses
    time.sleep(0.5)  # let the last log lines land
    logs = keyed.logs()
    assert '"status": 401' in logs and '"status": 413' in logs  # the errors were logged...
    for secret in secrets:  # ...without the keys
        assert secret not in logs
        assert all(secret not in text for text in seen)


def test_https_with_a_kit_certificate_verified_by_the_client(repo, tmp_path):
    from shipml.tls import make_local_certificate

    pair = make_local_certificate(tmp_path / "certs")
    trust = ssl.create_default_context(cafile=str(pair.ca))  # the client trusts only the kit's local CA

    class HttpsServer(BackgroundServer):
        @property
        def url(self) -> str:
            return f"https://localhost:{self.port}"

        def _wait(self, path: str) -> None:
            deadline = time.monotonic() + self.timeout
            while time.monotonic() < deadline:
                assert self.process is not None and self.process.poll() is None, self.logs(tail=15)
                try:
                    if httpx.get(self.url + path, verify=trust, timeout=1.0).status_code == 200:
                        return
                except httpx.HTTPError:
                    pass
                time.sleep(0.2)
            raise AssertionError(f"no HTTPS answer: {self.logs(tail=15)}")

    env = {"SHIPML_TLS_CERT": str(pair.cert), "SHIPML_TLS_KEY": str(pair.key)}
    with HttpsServer(repo, env=env) as s:
        r = httpx.post(f"{s.url}/predict", json=RECORD, verify=trust)
        assert r.status_code == 200 and r.json()["model"] == "fraud-lr"
        with pytest.raises(httpx.ConnectError, match="CERTIFICATE_VERIFY_FAILED"):
            httpx.get(f"{s.url}/v2/health/live")  # the system CAs do not know this certificate
        with pytest.raises(httpx.HTTPError):
            httpx.get(f"http://127.0.0.1:{s.port}/v2/health/live", timeout=3)  # no plain HTTP on that port
