"""Keep only the modules a program imports from a package installed with ``pip --target``.

    python keep-imported.py TARGET PACKAGE MODULE [MODULE ...]

Imports each MODULE (with TARGET first on sys.path), then deletes every file of PACKAGE under TARGET
that none of them loaded (a loaded package's ``__main__.py`` stays): the edge image ships the device
side of the kit, not its training, grading or serving code. Run the program's own import check
afterwards (the Dockerfile does).
"""

import importlib
import sys
from pathlib import Path

target, package, *modules = sys.argv[1:]
root = Path(target).resolve() / package
sys.path.insert(0, str(root.parent))
for name in modules:
    importlib.import_module(name)
loaded = {Path(m.__file__).resolve() for m in list(sys.modules.values())
          if getattr(m, "__file__", None) and Path(m.__file__).resolve().is_relative_to(root)}
# A kept package keeps its __main__.py: `python -m` runs it, and importing it here would run the program.
loaded |= {f.parent / "__main__.py" for f in loaded if f.name == "__init__.py" and (f.parent / "__main__.py").exists()}
files = [p for p in root.rglob("*") if p.is_file() and "__pycache__" not in p.parts]
before = sum(p.stat().st_size for p in files)
for path in files:
    if path.resolve() not in loaded:
        path.unlink()
for folder in sorted((p for p in root.rglob("*") if p.is_dir()), key=lambda p: -len(p.parts)):
    if folder.name == "__pycache__" or not any(folder.iterdir()):
        for cached in folder.glob("*"):
            cached.unlink()
        folder.rmdir()
after = sum(p.stat().st_size for p in root.rglob("*") if p.is_file())
print(f"keep-imported: {package} {len(loaded)} of {len(files)} files, {before // 1024} kB -> {after // 1024} kB")
