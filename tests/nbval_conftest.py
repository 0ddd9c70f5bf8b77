"""Copied to build/nbval/conftest.py by tests/prepare_notebooks.py: a notebook whose metadata says
``"shipml": {"requires": ["docker"]}`` (or "cluster") is skipped, with the reason, on a machine that
lacks it — `shipml doctor` decides, the same way it reports which course parts run here."""

import pytest
from shipml.doctor import unmet_requirement

_reasons: dict[str, str | None] = {}


def pytest_collection_modifyitems(items):
    for item in items:
        path = str(item.path)
        if path.endswith(".ipynb"):
            if path not in _reasons:
                _reasons[path] = unmet_requirement(path)
            if _reasons[path]:
                item.add_marker(pytest.mark.skip(reason=_reasons[path]))
