"""Monitoring models in production: what the model saw at training, what it sees now, and whether it still works.

One module per concern:

* :mod:`~shipml.monitoring.reference` — the reference profile written into every bundle at training
  (``reference.json``: per-feature bins and counts, a sample for the Kolmogorov-Smirnov test, the score
  distribution and held-out metrics);
* :mod:`~shipml.monitoring.predlog` — the prediction log: a bounded queue and a writer thread off the hot
  path, rotated Parquet files, dropped records counted;
* :mod:`~shipml.monitoring.drift` — PSI, Kolmogorov-Smirnov and chi-square (scipy) per feature and on the score;
* :mod:`~shipml.monitoring.windows` — reading the log and cutting it into windows by rows or time;
* :mod:`~shipml.monitoring.performance` — delayed labels joined to the log: ROC AUC, precision, recall,
  calibration per window;
* :mod:`~shipml.monitoring.report` — the drift report as HTML (tables and plots);
* :mod:`~shipml.monitoring.live` — what the server exports to Prometheus (score histogram, rolling drift gauges).
"""
