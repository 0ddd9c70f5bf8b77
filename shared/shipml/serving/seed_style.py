"""The lecture's FastAPI snippet, made just runnable with a kit bundle: the baseline of the benchmark.

    SHIPML_SEED_MODEL=models/fraud-lr/1/model.joblib uvicorn shipml.serving.seed_style:app

Kept as the seed wrote it, on purpose (notebook 02 lists what is wrong): the model is unpickled at
import without checking its hashes, ``data: dict`` accepts anything (no schema, no validation: a
missing field or a string is a 500), one model and no versions, no health, no metrics, a sync route
(a thread-pool hop per request) and scikit-learn with its default threads. Only two things changed so
it runs at all: the features are the bundle's (not ``feature1, feature2``), and the numpy label is
turned into an ``int`` (FastAPI cannot serialise ``numpy.int64``: the seed's version answers 500).
"""

import os

import joblib
import pandas as pd
from fastapi import FastAPI

app = FastAPI()
model = joblib.load(os.environ["SHIPML_SEED_MODEL"])


@app.post("/predict")
def predict(data: dict):
    prediction = model.predict(pd.DataFrame([data]))
    return {"prediction": int(prediction[0])}
