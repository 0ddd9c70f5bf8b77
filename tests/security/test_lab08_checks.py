"""Lab 08's checks: the solution passes, the tempting wrong answers fail with a useful message."""

from __future__ import annotations

import shutil

import pytest
from shipml import checks
from shipml.bundle import verify_bundle
from shipml.checks import lab08
from shipml.errors import BundleError
from shipml.grading.keys import lab08 as keys
from shipml.hardening import WEAK_API_SERVICE, audit_service
from shipml.predictor import load_predictor

CTX = checks.Context("lab08", seed=3)


def _judge(qid, answer):
    q = checks.find_question("lab08", qid)
    plain = checks.roundtrip(checks.collect_answer(q, answer, CTX))
    ok, message = keys.EVALUATE[qid](plain, CTX) if "__error__" not in str(plain) else (False, str(plain))
    return ok, message


def _load(bundle, trusted):
    try:
        load_predictor(bundle, trusted_keys=trusted)
    except BundleError:
        return False
    return True


def _hashes_only(bundle, trusted):
    try:
        verify_bundle(bundle, trusted_keys=False)
    except BundleError:
        return False
    return True


@pytest.mark.slow
def test_refuse_passes_the_solution_and_fails_the_shortcuts():
    assert _judge("refuse", _load)[0]
    ok, message = _judge("refuse", _hashes_only)
    assert not ok and "unsigned" in message and "signed_by_stranger" in message
    assert not _judge("refuse", lambda b, t: True)[0]
    ok, message = _judge("refuse", lambda b, t: load_predictor(b, trusted_keys=t) is not None)
    assert not ok and "catch BundleError" in message


def test_signed_needs_the_lab_bundle_and_public_keys_only(tmp_path):
    from shipml.bundle import sign_bundle
    from shipml.signing import new_keypair

    bundle = lab08.lab_bundle(tmp_path / "b", CTX.seed)
    pair = new_keypair("me", tmp_path / "k")
    sign_bundle(bundle, pair.private_path)
    trusted = tmp_path / "trusted"
    trusted.mkdir()
    shutil.copy(pair.public_path, trusted)
    assert _judge("signed", (bundle, trusted))[0]
    shutil.copy(pair.private_path, trusted)  # the classic mistake: the private key handed to servers
    ok, message = _judge("signed", (bundle, trusted))
    assert not ok and "private key" in message
    other = lab08.lab_bundle(tmp_path / "other", CTX.seed + 1)
    sign_bundle(other, pair.private_path)
    (trusted / "me.key").unlink()
    ok, message = _judge("signed", (other, trusted))
    assert not ok and "not the lab's bundle" in message


def test_fixed_service():
    assert audit_service(dict(WEAK_API_SERVICE))
    fixed = {"image": WEAK_API_SERVICE["image"], "ports": ["127.0.0.1:8080:8080"], "cap_drop": ["ALL"],
             "security_opt": ["no-new-privileges:true"], "read_only": True,
             "healthcheck": WEAK_API_SERVICE["healthcheck"]}
    assert _judge("fixed", fixed)[0]
    assert not _judge("fixed", {**fixed, "environment": {"SHIPML_API_KEY": "literal"}})[0]
    ok, message = _judge("fixed", {k: v for k, v in fixed.items() if k != "healthcheck"})
    assert not ok and "healthcheck" in message
    assert not _judge("fixed", {**fixed, "image": "alpine"})[0]
