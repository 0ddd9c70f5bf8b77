#!/bin/sh
# Trim a virtual environment for a runtime image: keep what runs, drop what only builds or tests.
#
#   slim-venv.sh VENV [MODULE ...]
#
# Removes byte-code caches, test suites, type stubs, C sources and headers, strips debug symbols
# from extension modules, then imports each MODULE once so byte code exists for exactly what the
# program loads (fast start, without paying for .pyc files of code that never runs).
set -eu
venv=$1
shift
site=$(echo "$venv"/lib/python3*/site-packages)
before=$(du -sm "$venv" | cut -f1)

find "$site" -depth -type d \( -name __pycache__ -o -name tests \) -exec rm -rf {} +
find "$site" -type f \( -name '*.pyi' -o -name '*.pxd' -o -name '*.pyx' -o -name '*.pxi' \
    -o -name '*.c' -o -name '*.cpp' -o -name '*.h' -o -name '*.hpp' -o -name '*.a' \
    -o -name '*.js.map' -o -name '*.css.map' \) -delete
# Build-time parts of numpy (C headers; not numpy.f2py: `from numpy import *` touches it) and
# onnxruntime's offline tools; its Python module does not load the C-API library shipped with it.
rm -rf "$site/numpy/_core/include" "$site/numpy/_pyinstaller" "$site/numpy/distutils" \
    "$site/onnxruntime/transformers" "$site/onnxruntime/quantization" "$site/onnxruntime/tools"
rm -f "$site"/onnxruntime/capi/libonnxruntime.so*
# numpy's compiled test helpers (only its own test suite imports them) and pytest hooks.
rm -f "$site"/numpy/_core/_simd.*.so "$site"/numpy/_core/_*_tests.*.so
find "$site" -name conftest.py -delete
# Debug symbols of extension modules (the vendored *.libs are left alone: patched by auditwheel).
if command -v strip >/dev/null 2>&1; then
    find "$site" -path '*.libs' -prune -o -type f -name '*.so' -print \
        | xargs -r strip --strip-unneeded
fi

if [ "$#" -gt 0 ]; then
    "$venv/bin/python" -c 'import importlib, sys
for name in sys.argv[1:]:
    importlib.import_module(name)' "$@"
fi
echo "slim-venv: $venv $before MB -> $(du -sm "$venv" | cut -f1) MB"
