"""What routes get injected (``Annotated[..., Depends(...)]``): the repository, the metrics, the settings.

All three live on ``app.state``, put there by :func:`shipml.serving.app.create_app` and its lifespan:
nothing is loaded at import and there is no module-level state. The dependencies are ``async def`` so
FastAPI calls them in the event loop (a plain ``def`` would hop to a thread pool on every request).
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from shipml.serving.errors import ApiError
from shipml.serving.metrics import Metrics
from shipml.serving.repository import ModelRepository
from shipml.settings import Settings


async def get_repository(request: Request) -> ModelRepository:
    repo = getattr(request.app.state, "repository", None)
    if repo is None:
        raise ApiError(503, "the server is starting; the model repository is not open yet")
    return repo


async def get_metrics(request: Request) -> Metrics:
    return request.app.state.metrics


async def get_settings(request: Request) -> Settings:
    return request.app.state.settings


Repository = Annotated[ModelRepository, Depends(get_repository)]
MetricsDep = Annotated[Metrics, Depends(get_metrics)]
SettingsDep = Annotated[Settings, Depends(get_settings)]
