"""Show package code and course files in a notebook instead of copying them (one source of truth)."""

from __future__ import annotations

import inspect
from pathlib import Path
from typing import Any

from shipml.paths import repo_root

_LANGUAGES = {".py": "python", ".yaml": "yaml", ".yml": "yaml", ".json": "json", ".toml": "toml",
              ".sh": "bash", ".md": "markdown"}


def _code(text: str, language: str) -> Any:
    try:
        from IPython.display import Code

        return Code(text, language=language)
    except ImportError:  # outside IPython: plain text
        return text


def source(obj: Any) -> Any:
    """The source of a package function, class or module, highlighted in a notebook."""
    return _code(inspect.getsource(obj), "python")


def file(relative_path: str) -> Any:
    """A course file (Dockerfile, manifest, app), read from the repository, highlighted."""
    path = repo_root() / relative_path
    language = "docker" if path.name.startswith("Dockerfile") else _LANGUAGES.get(path.suffix, "text")
    return _code(path.read_text(), language)


def path(relative_path: str) -> Path:
    """Absolute path of a course file, for ``!cat {path}`` or to open it."""
    return repo_root() / relative_path
