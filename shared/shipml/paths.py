"""Where things live, found from the installed package (works from any working directory)."""

from __future__ import annotations

from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parent


def repo_root() -> Path:
    """The checkout this package was installed from (editable install): shared/shipml -> repo root."""
    root = PACKAGE_DIR.parent.parent
    if (root / "pyproject.toml").exists():
        return root
    raise FileNotFoundError(
        "shipml is not installed from a checkout (no pyproject.toml above shared/); "
        "course files such as deploy/ are only available in the repository"
    )
