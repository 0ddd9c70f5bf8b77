"""Rows to columns, one way for the whole kit.

Clients send rows (``[{"amount": 12.5, "hour": 3, ...}, ...]`` or, TF Serving style, lists in the
signature's order); models want columns. The edge device and the API's TF Serving routes both turn
one into the other with :func:`columns_from_rows`, which reports *every* bad row (the first few, with a
count of the rest) instead of the first one only, so a client fixes its payload in one go.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from shipml.errors import SchemaError

SHOWN_PROBLEMS = 5


class RowsError(SchemaError):
    """Rows that cannot become columns; ``problems`` lists each one (``"instance 3: missing field 'hour'"``)."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        more = f"; ... and {len(problems) - SHOWN_PROBLEMS} more" if len(problems) > SHOWN_PROBLEMS else ""
        super().__init__("; ".join(problems[:SHOWN_PROBLEMS]) + more)


def columns_from_rows(rows: Any, names: Sequence[str], optional: Sequence[str] = (), what: str = "instances",
                    allow_lists: bool = True) -> dict[str, list[Any]]:
    """``[{name: value}, ...]`` (or ``[[v1, v2, ...], ...]`` in ``names`` order) to ``{name: [values]}``.

    Every row needs every name in ``names``; names in ``optional`` (an ``id`` column) may be present and
    are kept when any row has them; any other key is an error. Raises :class:`RowsError`.
    """
    if not isinstance(rows, list) or not rows:
        raise RowsError([f"'{what}' must be a non-empty list of rows"])
    known = set(names) | set(optional)
    problems: list[str] = []
    records: list[Mapping[str, Any]] = []
    for i, row in enumerate(rows):
        if allow_lists and isinstance(row, list):
            if len(row) != len(names):
                problems.append(f"instance {i} has {len(row)} values; a row in list form needs {len(names)}, "
                                f"in this order: {', '.join(names)}")
                continue
            row = dict(zip(names, row, strict=True))
        elif not isinstance(row, Mapping):
            shape = " (feature name to value) or a list" if allow_lists else ""
            problems.append(f"instance {i}: not an object{shape}")
            continue
        bad = [f"instance {i}: missing field '{n}'" for n in names if n not in row]
        bad += [f"instance {i}: unexpected field '{k}'" for k in row if k not in known]
        problems += bad
        records.append(row)
    if problems:
        raise RowsError(problems)
    columns = {n: [r[n] for r in records] for n in names}
    for extra in optional:
        if any(extra in r for r in records):
            columns[extra] = [r.get(extra) for r in records]
    return columns
