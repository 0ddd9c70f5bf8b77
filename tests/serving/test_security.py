"""API key, CORS off by default, and settings read from the environment."""

from __future__ import annotations

import httpx
import pytest
from serving_data import RECORD
from shipml.serving import BackgroundServer
from shipml.settings import Settings

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def keyed(model_repo):
    with BackgroundServer(model_repo, env={"SHIPML_API_KEY": "s3cret-key"}) as s:
        yield s


def test_api_key_is_required_when_set(keyed):
    url = f"{keyed.url}/predict"
    missing = httpx.post(url, json=RECORD)
    assert missing.status_code == 401 and "X-API-Key" in missing.json()["error"]
    assert missing.headers["www-authenticate"].startswith("Bearer")
    wrong = httpx.post(url, json=RECORD, headers={"X-API-Key": "guess"})
    assert wrong.status_code == 401 and wrong.json()["error"] == "wrong API key"
    assert httpx.post(url, json=RECORD, headers={"X-API-Key": "s3cret-key"}).status_code == 200
    assert httpx.post(url, json=RECORD, headers={"Authorization": "Bearer s3cret-key"}).status_code == 200
    for path in ("/v1/models/fraud-lr", "/v2/models/fraud-lr", "/predict/batch"):
        assert httpx.request("GET" if "batch" not in path else "POST", keyed.url + path).status_code == 401


def test_probes_stay_open_docs_and_metrics_need_the_key(keyed):
    for path in ("/v2/health/live", "/v2/health/ready"):
        assert httpx.get(keyed.url + path).status_code == 200, path
    for path in ("/docs", "/openapi.json", "/metrics"):  # SHIPML_PUBLIC_OPS=true opens them (tests/security)
        assert httpx.get(keyed.url + path).status_code == 401, path
        assert httpx.get(keyed.url + path, headers={"X-API-Key": "s3cret-key"}).status_code == 200, path


def test_openapi_declares_the_key_so_swagger_ui_can_send_it(keyed):
    doc = httpx.get(f"{keyed.url}/openapi.json", headers={"X-API-Key": "s3cret-key"}).json()
    assert doc["components"]["securitySchemes"]["ApiKey"] == {"type": "apiKey", "in": "header", "name": "X-API-Key"}


def test_the_key_never_appears_in_the_logs(keyed):
    httpx.post(f"{keyed.url}/predict", json=RECORD, headers={"X-API-Key": "s3cret-key"})
    assert "s3cret-key" not in keyed.logs()


def test_cors_is_off_by_default(server):
    r = httpx.options(f"{server.url}/predict", headers={"Origin": "https://evil.example",
                                                        "Access-Control-Request-Method": "POST"})
    assert "access-control-allow-origin" not in r.headers
    r = httpx.post(f"{server.url}/predict", json=RECORD, headers={"Origin": "https://evil.example"})
    assert "access-control-allow-origin" not in r.headers


def test_cors_allows_only_the_configured_origins(model_repo):
    with BackgroundServer(model_repo, env={"SHIPML_CORS_ORIGINS": "https://app.example"}) as s:
        pre = {"Access-Control-Request-Method": "POST", "Access-Control-Request-Headers": "content-type"}
        ok = httpx.options(f"{s.url}/predict", headers={"Origin": "https://app.example", **pre})
        assert ok.headers["access-control-allow-origin"] == "https://app.example"
        other = httpx.options(f"{s.url}/predict", headers={"Origin": "https://evil.example", **pre})
        assert "access-control-allow-origin" not in other.headers


def test_settings_come_from_shipml_variables(monkeypatch):
    monkeypatch.setenv("SHIPML_MODELS", "/srv/models")
    monkeypatch.setenv("SHIPML_API_KEY", "k-secret-xyz")
    monkeypatch.setenv("SHIPML_MAX_BATCH_ROWS", "50")
    monkeypatch.setenv("SHIPML_CORS_ORIGINS", "https://a.example, https://b.example")
    monkeypatch.setenv("SHIPML_LOG_LEVEL", "DEBUG")
    s = Settings()
    assert str(s.models) == "/srv/models" and s.api_key_value() == "k-secret-xyz" and s.max_batch_rows == 50
    assert s.cors_origins == ["https://a.example", "https://b.example"] and s.log_level == "debug"
    assert "k-secret-xyz" not in repr(s)
    assert s.to_env()["SHIPML_API_KEY"] == "k-secret-xyz"


def test_bad_settings_are_refused(monkeypatch):
    from pydantic import ValidationError

    monkeypatch.setenv("SHIPML_MAX_BATCH_ROWS", "0")
    with pytest.raises(ValidationError, match="max_batch_rows"):
        Settings()
