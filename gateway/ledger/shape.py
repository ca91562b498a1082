"""The shape of a ledger row: the `requests` columns in insert order, how a row's values are
made to fit them, and how a fitted row is written to (and read back from) the journal.

A value that does not fit its column would fail its whole batch on PostgreSQL (a `model` of
250 characters in VARCHAR(200) is `StringDataRightTruncation`; SQLite does not check), so
every value is fitted when the row is built, before any database sees it:

- strings longer than their column are cut to it, ending in "…";
- NUL characters (PostgreSQL text cannot hold them: "invalid byte sequence … 0x00") become
  U+FFFD, as do lone surrogates (not encodable as UTF-8; JSON's "\\ud800" decodes to one);
- integers are clamped to INTEGER's range, NUMERIC values to their precision, and a float
  that is not finite is clamped (or NULL where the column allows it).

The names of the columns that were changed are recorded in the row's own `clipped` column
(NULL for a row kept as it came), so a clipped row is visibly incomplete, never silently wrong.
Rows the database still refuses are found by bisection and dead-lettered (`deliver.py`).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Hashable, Mapping, Sequence
from datetime import datetime
from decimal import Decimal
from operator import itemgetter, le
from typing import Any

import orjson
from sqlalchemy import Boolean, DateTime, Integer, Numeric, String, Table, Text

from gateway.ledger.tables import Money, requests_table

Values = tuple[Any, ...]  # one row, in `RowShape.columns` order
ELLIPSIS = "…"
INT_MAX, INT_MIN = 2**31 - 1, -(2**31)
CLIPPED = "clipped"


def fix_text(s: str) -> str:
    if "\x00" in s:
        s = s.replace("\x00", "\ufffd")
    if not s.isascii():
        try:
            s.encode("utf-8")
        except UnicodeEncodeError:  # a lone surrogate
            s = s.encode("utf-8", "surrogatepass").decode("utf-8", "replace")
    return s


def _string_fitter(limit: int | None) -> Callable[[Any], tuple[Any, bool]]:
    def fit(v: Any) -> tuple[Any, bool]:
        if v is None:
            return None, False
        s = v if isinstance(v, str) else str(v)
        fixed = fix_text(s)
        if limit is not None and len(fixed) > limit:
            fixed = fixed[: limit - 1] + ELLIPSIS
        return fixed, fixed is not v

    return fit


def _int_fitter(v: Any) -> tuple[Any, bool]:
    if v is None or isinstance(v, bool):
        return v, False
    n = int(v)
    clamped = min(max(n, INT_MIN), INT_MAX)
    return clamped, clamped != v


def _numeric_fitter(
    precision: int, scale: int, nullable: bool
) -> Callable[[Any], tuple[Any, bool]]:
    # the largest magnitude NUMERIC(p, s) holds: p - s integer digits
    top = Decimal(10) ** (precision - scale) - Decimal(1).scaleb(-scale)

    def fit(v: Any) -> tuple[Any, bool]:
        if v is None:
            return None, False
        if isinstance(v, float):
            if not math.isfinite(v):
                return (None if nullable else 0.0), True
            if abs(v) > top:
                return math.copysign(float(top), v), True
            return v, False
        d = v if isinstance(v, Decimal) else Decimal(str(v))
        if not d.is_finite():
            return (None if nullable else Decimal(0)), True
        if abs(d) > top:
            return top.copy_sign(d), True
        return d, False

    return fit


def _keep(v: Any) -> tuple[Any, bool]:
    return v, False


def _precision(t: Any) -> tuple[int, int] | None:
    if isinstance(t, Money):
        return 20, 12
    if isinstance(t, Numeric) and t.precision is not None:
        return t.precision, t.scale or 0
    return None


def _fitter(column: Any) -> Callable[[Any], tuple[Any, bool]]:
    t = column.type
    if (ps := _precision(t)) is not None:
        return _numeric_fitter(*ps, column.nullable)
    if isinstance(t, Boolean):
        return _keep
    if isinstance(t, Integer):
        return _int_fitter
    if isinstance(t, Text):
        return _string_fitter(None)
    if isinstance(t, String):
        return _string_fitter(t.length)
    return _keep


def _fits(column: Any) -> Callable[[Any], bool]:
    """A quick test that a value is fine as it is (the common case); the fitter decides the
    rest. Runs for every column of every row in the writer's task: ~10 µs a row was the cost
    of calling the fitters themselves."""
    t = column.type
    if (ps := _precision(t)) is not None:
        precision, scale = ps
        top_d = Decimal(10) ** (precision - scale) - Decimal(1).scaleb(-scale)
        top_f = float(top_d)
        return lambda v: (
            v is None
            or (v.__class__ is float and -top_f <= v <= top_f)  # NaN compares false
            or (v.__class__ is Decimal and v.is_finite() and -top_d <= v <= top_d)
        )
    if isinstance(t, Boolean):
        return lambda v: True
    if isinstance(t, Integer):
        return lambda v: v is None or (v.__class__ is int and INT_MIN <= v <= INT_MAX)
    if isinstance(t, String):  # Text included (no length)
        limit = t.length or 2**62
        return lambda v: (
            v is None
            or (
                v.__class__ is str
                and len(v) <= limit
                and "\x00" not in v
                and (v.isascii() or _encodable(v))
            )
        )
    return lambda v: True


def _encodable(s: str) -> bool:
    try:
        s.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


Check = tuple[int, Callable[[Any], bool], Callable[[Any], tuple[Any, bool]]]
_STR_OR_NONE = frozenset({str, type(None)})


def _kind(column: Any) -> Hashable | None:
    """Columns of one kind share one quick test for a whole row (see `_group_fits`)."""
    t = column.type
    if (ps := _precision(t)) is not None:
        return ps
    if isinstance(t, Boolean):
        return None
    if isinstance(t, Integer):
        return "int"
    if isinstance(t, String):
        return "str"
    return None


def _group_fits(kind: Hashable, columns: Sequence[Any]) -> Callable[[tuple[Any, ...]], bool]:
    """`_fits` for several columns of one kind at once, in a few C-level calls instead of one
    Python call a column (the writer's task fits every row; ~23 calls a row showed in the
    profile). Never looser than `_fits`: a group that fails is looked at column by column."""
    if kind == "str":
        limits = tuple(c.type.length or 2**62 for c in columns)

        def strings(vs: tuple[Any, ...]) -> bool:
            if not _STR_OR_NONE.issuperset(map(type, vs)):
                return False
            texts = [v or "" for v in vs]
            if not all(map(le, map(len, texts), limits)):
                return False
            joined = "".join(texts)  # a lone surrogate stays one when joined
            return "\x00" not in joined and (joined.isascii() or _encodable(joined))

        return strings
    if kind == "int":
        return lambda vs: {*map(type, vs)} == {int} and INT_MIN <= min(vs) and max(vs) <= INT_MAX
    assert isinstance(kind, tuple)
    precision, scale = kind
    top_d = Decimal(10) ** (precision - scale) - Decimal(1).scaleb(-scale)
    top_f = float(top_d)

    def numbers(vs: tuple[Any, ...]) -> bool:
        xs = [v for v in vs if v is not None]
        if not xs:
            return True
        kinds = {*map(type, xs)}
        if kinds == {float}:  # isfinite first: min and max let a NaN through
            return all(map(math.isfinite, xs)) and -top_f <= min(xs) and max(xs) <= top_f
        if kinds == {Decimal}:
            return all(map(Decimal.is_finite, xs)) and -top_d <= min(xs) and max(xs) <= top_d
        return False

    return numbers


class RowShape:
    """The ledger table's insert columns, with a fitter and a journal codec for each."""

    def __init__(self, table: Table = requests_table) -> None:
        self.table = table
        self.columns: tuple[str, ...] = tuple(c.name for c in table.columns)
        self.id_index = self.columns.index("id")
        self.created_index = self.columns.index("created_at")
        self._clipped_index = self.columns.index(CLIPPED)
        self._fitters = [_fitter(c) for c in table.columns]
        # only the columns a value can overflow are looked at
        self._checks: list[Check] = [
            (i, _fits(c), self._fitters[i])
            for i, c in enumerate(table.columns)
            if not isinstance(c.type, Boolean | DateTime)
        ]
        # the checks by kind: one quick test a kind a row, the columns' own when it fails
        by_kind: dict[Hashable, list[Check]] = {}
        self._singles: list[Check] = []
        for check in self._checks:
            kind = _kind(table.columns[check[0]])
            if kind is None:
                self._singles.append(check)
            else:
                by_kind.setdefault(kind, []).append(check)
        self._groups: list[tuple[Callable[[Any], Any], Callable[[Any], bool], list[Check]]] = []
        for kind, checks in by_kind.items():
            if len(checks) == 1:
                self._singles += checks
                continue
            cols = [table.columns[i] for i, _, _ in checks]
            pick = itemgetter(*(i for i, _, _ in checks))
            self._groups.append((pick, _group_fits(kind, cols), checks))
        self.datetimes = frozenset(
            i for i, c in enumerate(table.columns) if isinstance(c.type, DateTime)
        )
        self.decimals = frozenset(
            i
            for i, c in enumerate(table.columns)
            if isinstance(c.type, Money)
            or (isinstance(c.type, Numeric) and c.type.asdecimal is not False)
        )

    def fit(self, row: Mapping[str, Any]) -> Values:
        """The row's values in column order, each made to fit its column."""
        values = [*map(row.get, self.columns)]
        clipped: list[int] = []
        for pick, fit_all, checks in self._groups:
            if not fit_all(pick(values)):
                self._fit_each(values, checks, clipped)
        self._fit_each(values, self._singles, clipped)
        values[self._clipped_index] = (
            ",".join(self.columns[i] for i in sorted(clipped)) if clipped else None
        )
        return tuple(values)

    @staticmethod
    def _fit_each(values: list[Any], checks: list[Check], clipped: list[int]) -> None:
        for i, fits, fitter in checks:
            v = values[i]
            if fits(v):
                continue
            values[i], changed = fitter(v)
            if changed:
                clipped.append(i)

    def was_clipped(self, values: Values) -> bool:
        return values[self._clipped_index] is not None

    # --- the journal's encoding: one JSON array a line, in the columns of the file's header ---

    def header(self, database: str) -> bytes:
        return orjson.dumps({"ledger_journal": 1, "database": database, "columns": self.columns})

    def encode(self, rows: Sequence[Values]) -> bytes:
        return b"".join(orjson.dumps(r, default=_json_default) + b"\n" for r in rows)

    def decoder(self, columns: Sequence[str]) -> Callable[[bytes], Values]:
        """Reads lines written under a header naming `columns` (an older or newer schema's):
        columns the file lacks are NULL, columns this schema lacks are dropped."""
        where = {name: i for i, name in enumerate(columns)}
        picks = [where.get(name) for name in self.columns]
        datetimes, decimals = self.datetimes, self.decimals

        def decode(line: bytes) -> Values:
            raw = orjson.loads(line)
            if not isinstance(raw, list) or len(raw) != len(columns):
                raise ValueError("not a journal record")
            out: list[Any] = []
            for i, pick in enumerate(picks):
                v = None if pick is None else raw[pick]
                if v is not None:
                    if i in datetimes:
                        v = datetime.fromisoformat(v)
                    elif i in decimals:
                        v = Decimal(v)
                out.append(v)
            return tuple(out)

        return decode

    def as_json(self, values: Values) -> str:
        """A row as a JSON object (the dead-letter table keeps it so it can be repaired)."""
        import json

        return json.dumps(dict(zip(self.columns, values, strict=True)), default=str)


def _json_default(v: Any) -> Any:
    if isinstance(v, Decimal):
        return str(v)
    raise TypeError(f"cannot journal a {type(v).__name__}")
