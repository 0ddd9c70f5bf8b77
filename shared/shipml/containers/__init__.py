"""Docker driven from Python, for the containers lesson and its tests.

- :func:`engine_available` says whether an engine answers, and why not;
- :func:`build_image` builds with streamed progress; :func:`temporary_image` removes it afterwards;
- :func:`run_container` publishes ports on free loopback ports and always stops and removes the
  container; :meth:`RunningContainer.wait_until_ready` waits for HTTP 200 or a healthy HEALTHCHECK;
- :func:`image_size` and :func:`image_layers` feed the layer-size plot;
- :func:`prepare_image_models` trains and exports the models the images bake in (``artifacts/``);
- :func:`build_base_image` makes a ``python:3.11-slim``-compatible image without any registry.
"""

from shipml.containers.base_image import BaseImageResult, build_base_image
from shipml.containers.build import (
    BuildError,
    BuildResult,
    build_image,
    remove_image,
    remove_tags,
    temporary_image,
)
from shipml.containers.engine import LABEL, EngineStatus, docker_client, engine_available
from shipml.containers.images import Layer, image_layers, image_size
from shipml.containers.models import ImageModels, prepare_image_models
from shipml.containers.run import (
    ReadyTimes,
    RunningContainer,
    leftover_containers,
    measure_time_to_ready,
    remove_container,
    run_container,
)

__all__ = [
    "LABEL",
    "BaseImageResult",
    "BuildError",
    "BuildResult",
    "EngineStatus",
    "ImageModels",
    "Layer",
    "ReadyTimes",
    "RunningContainer",
    "build_base_image",
    "build_image",
    "docker_client",
    "engine_available",
    "image_layers",
    "image_size",
    "leftover_containers",
    "measure_time_to_ready",
    "prepare_image_models",
    "remove_container",
    "remove_image",
    "remove_tags",
    "run_container",
    "temporary_image",
]
