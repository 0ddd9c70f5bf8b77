"""The decision threshold: chosen from costs on held-out rows, stored in the bundle, used by every server."""

from __future__ import annotations

import httpx
import numpy as np
import pytest
from shipml.bundle import read_metadata
from shipml.data import make_transactions
from shipml.models import save_bundle, train
from shipml.predictor import decide, load_predictor
from shipml.thresholds import choose_threshold


def test_decide_without_threshold_is_the_most_probable_class():
    proba = np.array([[0.7, 0.3], [0.4, 0.6], [0.5, 0.5]])
    assert decide(proba).tolist() == [0, 1, 0]  # a tie goes to the first class, as argmax does
    assert decide(proba, 0.25).tolist() == [1, 1, 1]
    assert decide(proba, 0.65).tolist() == [0, 0, 0]
    three = np.array([[0.2, 0.5, 0.3]])
    assert decide(three, 0.1).tolist() == [1]  # a threshold only means something for two classes


def test_choose_threshold_minimises_the_cost_and_moves_with_it():
    rng = np.random.default_rng(0)
    y = rng.random(20_000) < 0.02
    p = np.clip(np.where(y, rng.beta(4, 3, y.size), rng.beta(1, 12, y.size)), 0, 1)
    cheap_alarms = choose_threshold(y, p, cost_missed_fraud=200, cost_false_alarm=5)
    dear_alarms = choose_threshold(y, p, cost_missed_fraud=200, cost_false_alarm=100)
    assert cheap_alarms.threshold < 0.5 and cheap_alarms.threshold < dear_alarms.threshold
    best = cheap_alarms.at(cheap_alarms.threshold)
    brute = min(((~y & (p >= t)).sum() * 5 + (y & (p < t)).sum() * 200) for t in cheap_alarms.thresholds)
    assert best["cost"] == brute
    assert best["recall"] > cheap_alarms.at(0.5)["recall"]
    with pytest.raises(ValueError, match="both classes"):
        choose_threshold(np.zeros(10), np.zeros(10), cost_missed_fraud=1, cost_false_alarm=1)


@pytest.fixture(scope="module")
def tuned(tmp_path_factory):
    """An lr bundle with a low threshold, in a model repository."""
    repo = tmp_path_factory.mktemp("repo")
    result = train(make_transactions(5_000, seed=3), "lr", seed=0)
    return save_bundle(result, repo / "fraud-lr" / "1", name="fraud-lr", decision_threshold=0.05), repo


def test_the_bundle_carries_the_threshold_to_predict_and_onnx(tuned, tmp_path):
    from shipml.edge.export import export_bundle

    bundle, _ = tuned
    rows = make_transactions(2_000, seed=4)
    predictor = load_predictor(bundle)
    p = predictor.predict_proba(rows)[:, 1]
    assert read_metadata(bundle).decision_threshold == 0.05
    assert (predictor.predict(rows) == (p >= 0.05)).all() and (p >= 0.05).sum() > (p >= 0.5).sum()
    edge = load_predictor(export_bundle(bundle, tmp_path / "edge", parity_rows=2_000).path)
    assert edge.metadata.decision_threshold == 0.05
    assert (edge.predict(rows) == predictor.predict(rows)).all()


@pytest.mark.slow
def test_the_server_labels_with_the_bundles_threshold(tuned):
    from shipml.serving import BackgroundServer

    bundle, repo = tuned
    rows = make_transactions(400, seed=5)
    p = load_predictor(bundle).predict_proba(rows)[:, 1]
    between = rows[(p >= 0.05) & (p < 0.5)].head(1)  # fraud by the bundle's rule, legit by 0.5
    assert len(between) == 1
    record = {k: (v.item() if hasattr(v, "item") else v) for k, v in between.iloc[0].to_dict().items()
              if k in load_predictor(bundle).schema.names}
    with BackgroundServer(repo) as server:
        one = httpx.post(f"{server.url}/predict", json=record, timeout=30).json()
        many = httpx.post(f"{server.url}/predict/batch", json={"records": [record]}, timeout=30).json()
    assert one["prediction"] == 1 and one["class_name"] == "fraud" and one["probabilities"]["fraud"] < 0.5, one
    assert many["predictions"][0]["prediction"] == 1, many


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_decide_one_agrees_with_decide_row_by_row(dtype):
    """The one-row rule of the REST server and the batch rule give the same class, ties and float32 included."""
    from shipml.predictor import decide_one

    rng = np.random.default_rng(1)
    p1 = np.concatenate([rng.random(2_000), [0.5, 0.3, 0.1, 0.7]]).astype(dtype)
    two = np.stack([1 - p1, p1], axis=1).astype(dtype)
    three = rng.dirichlet([1, 1, 1], 500).astype(dtype)
    three[:3] = [[0.4, 0.4, 0.2], [0.2, 0.4, 0.4], [1 / 3, 1 / 3, 1 / 3]]
    # 0.7 and 0.3 are not float32 values (0.7 rounds down, 0.3 up): a float32 row holding the rounded value
    # decides as numpy compares it, in float32, in both (a comparison of Python floats would differ for 0.7)
    for proba, threshold in [(two, None), (two, 0.3), (two, 0.7), (two, 0.5), (three, None), (three, 0.2)]:
        rows = [decide_one(row, threshold) for row in proba]
        assert rows == decide(proba, threshold).tolist()
    assert isinstance(decide_one(two[0], 0.3), int)
