"""Plain answers as the grader decodes them: JSON data, and numpy arrays of plain dtypes only, capped.

``checks.from_plain`` trusts the ``dtype`` and ``shape`` a record names; a record is written by the
student's kernel, so here it is checked first: a flat list of numbers, a numeric/bool dtype without
sub-arrays or fields (``"(190000000,)f8"`` is refused, not allocated), a shape that matches, at most
``MAX_ELEMENTS`` elements.
"""

from __future__ import annotations

import math
import re
from typing import Any

import numpy as np

MAX_ELEMENTS = 1_000_000
PLAIN_DTYPE = re.compile(r"^[<>|=]?(b1|[iu][1248]|f[248])$")


class NotPlain(ValueError):
    """The record holds something that is not plain data."""


def _array(value: dict) -> np.ndarray:
    flat, dtype, shape = value.get("__ndarray__"), value.get("dtype"), value.get("shape")
    if not isinstance(dtype, str) or not PLAIN_DTYPE.match(dtype):
        raise NotPlain(f"an array of dtype {str(dtype)[:40]!r} (only plain numbers and booleans)")
    if not isinstance(shape, list) or len(shape) > 8 or not all(type(n) is int and n >= 0 for n in shape):
        raise NotPlain("an array with an invalid shape")
    if not isinstance(flat, list) or len(flat) > MAX_ELEMENTS or len(flat) != math.prod(shape):
        raise NotPlain(f"an array whose {len(flat) if isinstance(flat, list) else '?'} values do not fit its shape "
                       f"(at most {MAX_ELEMENTS:,} values)")
    if not all(type(v) in (int, float, bool) or (type(v) is dict and set(v) == {"__float__"}) for v in flat):
        raise NotPlain("an array holding something other than numbers")
    values = [float(v["__float__"]) if type(v) is dict else v for v in flat]
    return np.array(values, dtype=np.dtype(dtype)).reshape(shape)


def decode(value: Any) -> Any:
    """The plain answer as evaluate functions expect it (arrays rebuilt); :class:`NotPlain` otherwise."""
    if isinstance(value, list):
        return [decode(v) for v in value]
    if isinstance(value, dict):
        if "__ndarray__" in value:
            return _array(value)
        if set(value) == {"__float__"}:
            return float(value["__float__"])
        return {k: decode(v) for k, v in value.items()}
    return value
