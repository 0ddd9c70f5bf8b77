"""kube-score on every rendered overlay: no WARNING or CRITICAL finding beyond the ones the kit
accepts, each with its reason, in deploy/k8s/kube-score-ignore.txt."""

from __future__ import annotations

import pytest
from shipml.cluster import render, score
from shipml.errors import ShipmlError


@pytest.fixture(scope="module")
def kube_score():
    binary = score.kube_score_binary()
    if binary is None:
        pytest.skip("kube-score is not built (`shipml cluster build-node`; CI: .ci/setup.d/35-realnode.sh)")
    return binary


@pytest.mark.parametrize("overlay", render.overlay_names())
def test_overlay_has_no_finding_left(kube_score, overlay):
    findings = score.score(overlay, binary=kube_score)
    assert findings == [], "\n".join(map(str, findings))


def test_every_ignored_check_has_a_reason_and_is_still_needed(kube_score):
    ignored = score.ignored_checks()
    assert ignored and all(len(reason) > 20 for reason in ignored.values())
    for check in ignored:  # an ignore nothing needs any more is removed, not kept "just in case"
        others = {name: why for name, why in ignored.items() if name != check}
        found = [f for overlay in render.overlay_names()
                 for f in score.score(overlay, ignore=others, binary=kube_score)]
        assert found, f"{check} is ignored but no overlay triggers it"


def test_kube_score_catches_the_hpa_fighting_the_deployment(kube_score, tmp_path):
    """The hole this fixed: `replicas` in a Deployment an HPA targets (kube-score: critical)."""
    docs = render.render("kind")
    for doc in docs:
        if doc["kind"] == "Deployment":
            doc["spec"]["replicas"] = 3
    path = tmp_path / "with-replicas.yaml"
    path.write_text(render.to_yaml(docs))
    findings = score.score(path, binary=kube_score)
    assert any("static replica count" in f.message and f.level == "CRITICAL" for f in findings), findings


def test_an_ignore_without_reason_is_refused(tmp_path):
    path = tmp_path / "ignore.txt"
    path.write_text("pod-networkpolicy\n")
    with pytest.raises(ShipmlError, match="without a reason"):
        score.ignored_checks(path)
