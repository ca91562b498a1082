"""One short string that a regular expression matches (pure): for JSON-schema `pattern`s.

Walks the pattern as Python's own regex parser reads it (`re._parser`, the engine behind
`re`), taking the shortest way through: each repeat its minimum count, each alternation its
first branch, each character class its first member. Lookarounds and anchors emit nothing.
The result is checked with `re.search`; a pattern this cannot satisfy gives "example".
"""

from __future__ import annotations

import re
from re import _constants as c  # type: ignore[attr-defined,unused-ignore]
from re import _parser  # type: ignore[attr-defined,unused-ignore]
from typing import Any

_CATEGORIES: dict[Any, str] = {
    c.CATEGORY_DIGIT: "0",
    c.CATEGORY_NOT_DIGIT: "a",
    c.CATEGORY_WORD: "a",
    c.CATEGORY_NOT_WORD: "-",
    c.CATEGORY_SPACE: " ",
    c.CATEGORY_NOT_SPACE: "a",
}
_CANDIDATES = "aA0_- xZ9.@"


def sample(pattern: str, n: int = 0) -> str:
    try:
        text = _emit(_parser.parse(pattern), n)
    except (re.error, RecursionError, ValueError):
        return "example"
    return text if re.search(pattern, text) else "example"


def _in_set(ch: str, members: list[tuple[Any, Any]]) -> bool:
    for op, av in members:
        if op is c.LITERAL and chr(av) == ch:
            return True
        if op is c.RANGE and av[0] <= ord(ch) <= av[1]:
            return True
        if op is c.CATEGORY and re.fullmatch(_category_class(av), ch):
            return True
    return False


def _category_class(category: Any) -> str:
    return {
        c.CATEGORY_DIGIT: r"\d",
        c.CATEGORY_NOT_DIGIT: r"\D",
        c.CATEGORY_WORD: r"\w",
        c.CATEGORY_NOT_WORD: r"\W",
        c.CATEGORY_SPACE: r"\s",
        c.CATEGORY_NOT_SPACE: r"\S",
    }.get(category, ".")


def _one_of(members: list[tuple[Any, Any]], n: int) -> str:
    if members and members[0][0] is c.NEGATE:
        rest = members[1:]
        return next((ch for ch in _CANDIDATES if not _in_set(ch, rest)), "~")
    for op, av in members:
        if op is c.LITERAL:
            return chr(av)
        if op is c.RANGE:
            low, high = av
            return chr(low + n % (high - low + 1))
        if op is c.CATEGORY:
            return _CATEGORIES.get(av, "a")
    return "a"


def _emit(items: Any, n: int) -> str:
    out: list[str] = []
    for op, av in items:
        if op is c.LITERAL:
            out.append(chr(av))
        elif op is c.NOT_LITERAL:
            out.append("b" if av == ord("a") else "a")
        elif op is c.ANY:
            out.append("a")
        elif op is c.IN:
            out.append(_one_of(av, n))
        elif op is c.CATEGORY:
            out.append(_CATEGORIES.get(av, "a"))
        elif op in (c.MAX_REPEAT, c.MIN_REPEAT, c.POSSESSIVE_REPEAT):
            low, _high, sub = av
            out.append(_emit(sub, n) * low)
        elif op is c.SUBPATTERN:
            out.append(_emit(av[-1], n))
        elif op is c.BRANCH:
            out.append(_emit(av[1][0], n))
        elif op is c.ATOMIC_GROUP:
            out.append(_emit(av, n))
        # AT (anchors), ASSERT, ASSERT_NOT, GROUPREF: nothing to emit
    return "".join(out)
