"""Copy notebooks/ and solutions/ into OUT with the CI parameters injected (papermill, no execution).

nbval then runs the copies. The committed notebooks keep the real sizes as their defaults; CI passes
the smaller ones listed in tests/notebook_params.yml (one key per notebook file name).
"""

import shutil
import sys
from pathlib import Path

import papermill
import yaml

ROOT = Path(__file__).resolve().parent.parent


def main(out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    shutil.copy(ROOT / "tests" / "nbval_conftest.py", out / "conftest.py")
    params = yaml.safe_load((ROOT / "tests" / "notebook_params.yml").read_text()) or {}
    for folder in ("notebooks", "solutions"):
        for nb in sorted((ROOT / folder).glob("*.ipynb")):
            target = out / folder / nb.name
            target.parent.mkdir(parents=True, exist_ok=True)
            papermill.execute_notebook(
                str(nb), str(target), parameters=params.get(nb.name, {}), prepare_only=True,
                kernel_name="shipml", progress_bar=False,
            )
            print(f"prepared {folder}/{nb.name} {params.get(nb.name, {})}")


if __name__ == "__main__":
    main(Path(sys.argv[1]))
