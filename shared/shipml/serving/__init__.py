"""Real-time serving: a typed FastAPI model server over a TF-Serving-style model repository.

``create_app(settings)`` builds the app (:mod:`shipml.serving.app`); ``shipml serve --models DIR`` runs
it under uvicorn; :class:`BackgroundServer` starts it in a child process from a notebook or a test and
always stops it. Modules: ``repository`` (versions on disk), ``schemas`` (pydantic models generated
from a bundle), ``routes_*`` (one per protocol), ``middleware``, ``metrics``, ``logs``, ``docs``.
"""

from shipml.serving.app import create_app
from shipml.serving.background import BackgroundServer

__all__ = ["BackgroundServer", "create_app"]
