"""The paths added for throughput give the same answers as the plain ones.

* ``SklearnPredictor``'s direct path (the pipeline's preprocessing as numpy) against the pipeline itself,
  for every input shape the kit hands it, and its fall-back to the pipeline for data it cannot encode;
* the local engine's scoring threads against a single scorer, and an error on a scoring thread.
"""

from __future__ import annotations

import joblib
import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest
from shipml import batch
from shipml.models import SklearnPredictor
from shipml.predictor import load_predictor


def _pipeline_proba(predictor, df: pd.DataFrame) -> np.ndarray:
    return predictor.pipeline.predict_proba(df[predictor.schema.names])


@pytest.mark.parametrize("kind", ["lr", "hgb"])
def test_direct_path_matches_the_pipeline_for_every_input_shape(request, batch_df, kind):
    predictor = load_predictor(request.getfixturevalue(f"{kind}_bundle"))
    assert predictor._plan is not None  # the kit's own pipelines qualify
    expected = _pipeline_proba(predictor, batch_df)
    as_objects = {n: batch_df[n].to_numpy() for n in predictor.schema.names}
    as_objects["merchant_category"] = batch_df["merchant_category"].astype(object).to_numpy()
    shapes = {
        "DataFrame (categorical)": batch_df,
        "DataFrame (text)": batch_df.astype({"merchant_category": object}),
        "dict of arrays (text)": as_objects,
        "validated columns": predictor.validate(batch_df).columns,
        "dict of lists": {k: list(v) for k, v in as_objects.items()},
    }
    for name, data in shapes.items():
        np.testing.assert_allclose(predictor.predict_proba(data), expected, rtol=1e-12, atol=1e-15, err_msg=name)


def test_unknown_or_missing_categories_go_through_the_pipeline(lr_bundle, batch_df):
    predictor = load_predictor(lr_bundle)
    df = batch_df.head(20).astype({"merchant_category": object})
    df.loc[3, "merchant_category"] = "casino"  # OneHotEncoder(handle_unknown="ignore"): all zeros
    df.loc[5, "merchant_category"] = None
    assert predictor._matrix(df, predictor._plan) is None
    np.testing.assert_array_equal(predictor.predict_proba(df), _pipeline_proba(predictor, df))


def test_text_in_a_number_column_is_the_pipelines_to_judge(lr_bundle, batch_df):
    predictor = load_predictor(lr_bundle)
    df = batch_df.head(5).astype({"amount": object})
    df.loc[2, "amount"] = "lots"
    assert predictor._matrix(df, predictor._plan) is None
    with pytest.raises(ValueError):  # exactly what the pipeline raises
        predictor.predict_proba(df)


def test_a_pipeline_of_another_shape_is_used_as_it_is(lr_bundle, batch_df):
    from sklearn.pipeline import Pipeline

    predictor = load_predictor(lr_bundle)
    wrapped = Pipeline([("model", joblib.load(lr_bundle / "model.joblib"))])  # one step: not the kit's shape
    other = SklearnPredictor(predictor.path, predictor.metadata, wrapped)
    assert other._plan is None
    np.testing.assert_array_equal(other.predict_proba(batch_df), _pipeline_proba(predictor, batch_df))


def test_a_plan_that_does_not_reproduce_the_pipeline_is_refused(lr_bundle):
    predictor = load_predictor(lr_bundle)
    pipeline = joblib.load(lr_bundle / "model.joblib")
    scaler = pipeline[0].named_transformers_["numeric"]
    scaler.transform = lambda X, copy=None: np.zeros((len(X), scaler.n_features_in_))  # not its mean_/scale_
    assert SklearnPredictor(predictor.path, predictor.metadata, pipeline)._plan is None


@pytest.mark.parametrize("workers", [1, 3])
def test_scoring_threads_do_not_change_the_output(hgb_bundle, bad_text_df, tmp_path, workers):
    src = tmp_path / "in.csv"
    bad_text_df.to_csv(src, index=False)
    ref = batch.score(hgb_bundle, src, tmp_path / "ref.parquet", tmp_path / "ref-q.csv", chunk_rows=300,
                      workers=2, progress=False)
    run = batch.score(hgb_bundle, src, tmp_path / "run.parquet", tmp_path / "run-q.csv", chunk_rows=300,
                      workers=workers, progress=False)
    assert (run.rows_in, run.rows_scored, run.rows_quarantined, run.chunks) == \
        (ref.rows_in, ref.rows_scored, ref.rows_quarantined, ref.chunks)
    assert pq.read_table(tmp_path / "run.parquet").equals(pq.read_table(tmp_path / "ref.parquet"))
    assert (tmp_path / "run-q.csv").read_text() == (tmp_path / "ref-q.csv").read_text()


def test_an_error_on_a_scoring_thread_fails_the_job_without_output(lr_bundle, batch_files, tmp_path):
    predictor = load_predictor(lr_bundle)
    calls = []

    def failing(data):
        calls.append(1)
        if len(calls) == 3:
            raise MemoryError("out of memory (simulated)")
        return SklearnPredictor.predict_proba(predictor, data)

    predictor.predict_proba = failing
    out = tmp_path / "run"
    with pytest.raises(MemoryError, match="simulated"):
        batch.score(predictor, batch_files["csv"], out / "s.parquet", chunk_rows=500, workers=2, progress=False)
    assert sorted(p.name for p in out.iterdir()) == []


@pytest.mark.parametrize("workers, ok", [("1", True), ("0", False)])
def test_cli_workers_option(lr_bundle, batch_files, tmp_path, workers, ok):
    import contextlib
    import io

    from shipml.cli import main

    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        code = main(["batch", "score", "--model", str(lr_bundle), "--input", str(batch_files["csv"]),
                     "--output", str(tmp_path / "s.parquet"), "--workers", workers, "--no-progress"])
    if ok:
        assert code == 0
        assert pq.read_table(tmp_path / "s.parquet").num_rows == pq.read_table(batch_files["parquet"]).num_rows
    else:
        assert code == 1 and "--workers must be at least 1" in err.getvalue() and "Traceback" not in err.getvalue()
        assert list(tmp_path.iterdir()) == []


def test_each_scoring_thread_runs_the_model_on_one_openmp_thread(hgb_bundle, batch_files, tmp_path):
    import os
    import threading

    from sklearn.utils._openmp_helpers import _openmp_effective_n_threads

    if (os.cpu_count() or 1) < 2:
        pytest.skip("one CPU: OpenMP uses one thread anyway, the cap cannot be seen")
    before = _openmp_effective_n_threads()
    predictor = load_predictor(hgb_bundle)
    seen: dict[str, int] = {}

    def recording(data):
        seen[threading.current_thread().name] = _openmp_effective_n_threads()
        return SklearnPredictor.predict_proba(predictor, data)

    predictor.predict_proba = recording
    batch.score(predictor, batch_files["csv"], tmp_path / "s.parquet", chunk_rows=500, workers=2, threads=1,
                progress=False)
    assert seen and all(name.startswith("shipml-batch-score") for name in seen)
    assert set(seen.values()) == {1}
    assert _openmp_effective_n_threads() == before  # the caller's setting is back
