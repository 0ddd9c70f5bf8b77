"""API keys (env, a mounted file, rotation) and the rate limiter, as units: no server needed."""

from __future__ import annotations

import os

import pytest
from shipml.errors import ShipmlError
from shipml.serving.auth import ApiKeys, key_id, needs_key
from shipml.serving.ratelimit import RateLimiter
from shipml.settings import Settings


def test_keys_come_from_env_and_file_and_several_are_valid(tmp_path):
    f = tmp_path / "api-keys"
    f.write_text("# rotated 2026-12\nnew-key-2\n\nold-key-1\n")
    keys = ApiKeys.from_settings(Settings(api_key="env-key", api_key_file=f))
    assert keys.match(b"env-key") == key_id(b"env-key")
    assert keys.match(b"new-key-2") and keys.match(b"old-key-1")
    assert keys.match(b"old-key") is None and keys.match(b"") is None and keys.match(None) is None
    assert ApiKeys.from_settings(Settings()) is None


def test_the_key_file_is_read_again_when_it_changes(tmp_path):
    f = tmp_path / "api-keys"
    f.write_text("old-key\n")
    keys = ApiKeys([], f, recheck_seconds=0.0)
    assert keys.match(b"old-key")
    f.write_text("old-key\nnew-key\n")
    os.utime(f, ns=(1, 2))  # another mtime even on a coarse clock
    assert keys.match(b"new-key")
    f.write_text("new-key\n")
    os.utime(f, ns=(3, 4))
    assert keys.match(b"old-key") is None and keys.match(b"new-key")


def test_an_empty_or_missing_key_file_is_a_clear_error(tmp_path):
    (tmp_path / "empty").write_text("# nothing\n")
    with pytest.raises(ShipmlError, match="holds no key"):
        ApiKeys([], tmp_path / "empty")
    with pytest.raises(ShipmlError, match="cannot read the API key file"):
        ApiKeys([], tmp_path / "missing")


def test_probes_are_open_ops_paths_are_not_unless_asked():
    assert not needs_key("/v2/health/ready", public_ops=False)
    assert needs_key("/metrics", public_ops=False) and needs_key("/docs", False) and needs_key("/openapi.json", False)
    assert not needs_key("/metrics", public_ops=True)
    assert needs_key("/predict", public_ops=True)


def test_token_bucket_allows_the_burst_then_says_when_to_retry():
    limiter = RateLimiter(rate=2.0, burst=3)
    assert [limiter.allow("k", now=100.0) for _ in range(3)] == [0.0, 0.0, 0.0]
    wait = limiter.allow("k", now=100.0)
    assert wait == pytest.approx(0.5) and RateLimiter.retry_after(wait) == "1"
    assert limiter.allow("other", now=100.0) == 0.0  # per caller
    assert limiter.allow("k", now=100.5) == 0.0  # one token back after 1/rate seconds
    assert limiter.allow("k", now=100.5) > 0


def test_many_callers_do_not_grow_memory_without_bound():
    limiter = RateLimiter(rate=1.0, burst=1, max_callers=100)
    for i in range(1000):
        limiter.allow(f"10.0.{i // 256}.{i % 256}", now=float(i * 10))
    assert len(limiter._buckets) <= 101
