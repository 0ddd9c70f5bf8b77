"""Releasing a new model version safely: automated canary analysis (:mod:`shipml.release.analysis`) and
deliberately bad models to rehearse a rollback with (:mod:`shipml.release.faults`).

Pure: nothing here imports the server; the server's rollouts (:mod:`shipml.serving.rollout`) use it.
"""
