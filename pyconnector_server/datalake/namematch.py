"""``nameRegex``: a regular expression matched without backtracking.

Python's ``re`` backtracks: a pattern such as ``(a+)+$`` takes exponential time on a
name of a few dozen characters, and a name comes from users. So the pattern is parsed by
``re``'s own parser (the syntax users know) and run here as a Thompson NFA: every step
advances the set of live states by one character, so a match costs at most characters ×
states, whatever the pattern. What needs backtracking (back-references, look-arounds,
conditionals, atomic groups, possessive repeats) is refused with a 400 naming
``nameRegex``, as are inline flags.

Matching is a search, as PostgreSQL's ``~`` and ``grep``: ``csv`` matches ``a.csv.gz``;
anchor with ``^`` and ``$`` for the whole name.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from ..errors import bad_request

try:  # Python 3.11+
    from re import _constants as c  # type: ignore[attr-defined]
    from re import _parser as sre_parse  # type: ignore[attr-defined]
except ImportError:  # pragma: no cover - Python 3.10
    import sre_constants as c  # type: ignore[no-redef]
    import sre_parse  # type: ignore[no-redef]

MAX_PATTERN = 256   # characters of a nameRegex
MAX_STATES = 2000   # NFA states ({m,n} repeats are copies: a{999} is 999 states)
FIELD = "nameRegex"

_CATEGORIES: dict[Any, Callable[[str], bool]] = {
    c.CATEGORY_DIGIT: str.isdecimal,
    c.CATEGORY_NOT_DIGIT: lambda ch: not ch.isdecimal(),
    c.CATEGORY_SPACE: str.isspace,
    c.CATEGORY_NOT_SPACE: lambda ch: not ch.isspace(),
    c.CATEGORY_WORD: lambda ch: ch.isalnum() or ch == "_",
    c.CATEGORY_NOT_WORD: lambda ch: not (ch.isalnum() or ch == "_"),
}


def _refuse(what: str) -> Exception:
    return bad_request(f"{FIELD}: {what} is not supported (a name pattern is matched "
                       "without backtracking: no back-references, look-arounds, "
                       "conditionals or inline flags)", FIELD)


class NamePattern:
    """A compiled ``nameRegex``; :meth:`search` tells whether a name matches."""

    def __init__(self, pattern: str) -> None:
        if len(pattern) > MAX_PATTERN:
            raise bad_request(f"{FIELD}: at most {MAX_PATTERN} characters", FIELD)
        try:
            parsed = sre_parse.parse(pattern)
        except (re.error, OverflowError, RecursionError) as exc:
            raise bad_request(f"{FIELD}: {pattern!r} is not a regular expression: {exc}",
                              FIELD) from None
        if parsed.state.flags & ~re.UNICODE:
            raise _refuse("an inline flag")
        # A state: ("char", test, next) | ("split", [next, …]) | ("at", kind, next) | ("end",)
        self.states: list[list[Any]] = [["end"]]
        self.start = self._seq(list(parsed), 0)

    # -- building, from the end backwards: each piece gets the state that follows it --------
    def _new(self, state: list[Any]) -> int:
        if len(self.states) >= MAX_STATES:
            raise bad_request(f"{FIELD}: too complex (at most {MAX_STATES} states; large "
                              "{m,n} repeats count as copies)", FIELD)
        self.states.append(state)
        return len(self.states) - 1

    def _seq(self, items: list[Any], nxt: int) -> int:
        for op, av in reversed(items):
            nxt = self._one(op, av, nxt)
        return nxt

    def _one(self, op: Any, av: Any, nxt: int) -> int:
        if op is c.LITERAL:
            ch = chr(av)
            return self._new(["char", lambda x: x == ch, nxt])
        if op is c.NOT_LITERAL:
            ch = chr(av)
            return self._new(["char", lambda x: x != ch, nxt])
        if op is c.ANY:
            return self._new(["char", lambda x: x != "\n", nxt])
        if op is c.IN:
            return self._new(["char", self._set(av), nxt])
        if op is c.SUBPATTERN:
            _group, add_flags, del_flags, sub = av
            if add_flags or del_flags:
                raise _refuse("an inline flag")
            return self._seq(list(sub), nxt)
        if op is c.BRANCH:
            return self._new(["split", [self._seq(list(alt), nxt) for alt in av[1]]])
        # A lazy repeat matches where a greedy one does (a search only says whether);
        # atomic groups and possessive repeats change which names match: refused below.
        if op in (c.MAX_REPEAT, c.MIN_REPEAT):
            lo, hi, sub = av
            items = list(sub)
            if hi == c.MAXREPEAT:
                loop = self._new(["split", []])
                loop_state = self.states[loop]
                loop_state[1] = [self._seq(items, loop), nxt]
                start = loop
            else:
                start = nxt
                for _ in range(hi - lo):
                    start = self._new(["split", [self._seq(items, start), nxt]])
            for _ in range(lo):
                start = self._seq(items, start)
            return start
        if op is c.AT:
            if av not in (c.AT_BEGINNING, c.AT_BEGINNING_STRING, c.AT_END, c.AT_END_STRING):
                raise _refuse(f"the anchor {av}")
            return self._new(["at", av, nxt])
        raise _refuse(str(op).lower().replace("_", " "))

    @staticmethod
    def _set(items: Any) -> Callable[[str], bool]:
        tests: list[Callable[[str], bool]] = []
        negate = False
        for op, av in items:
            if op is c.NEGATE:
                negate = True
            elif op is c.LITERAL:
                tests.append(lambda x, ch=chr(av): x == ch)
            elif op is c.RANGE:
                tests.append(lambda x, lo=av[0], hi=av[1]: lo <= ord(x) <= hi)
            elif op is c.CATEGORY and av in _CATEGORIES:
                tests.append(_CATEGORIES[av])
            else:
                raise _refuse(f"{op} in a character class".lower())
        return lambda x: any(t(x) for t in tests) != negate

    # -- matching ------------------------------------------------------------------------
    def _close(self, todo: list[int], live: set[int], pos: int, size: int,
               text: str) -> None:
        """Add ``todo`` and every state reachable from them without a character."""
        while todo:
            i = todo.pop()
            if i in live:
                continue
            live.add(i)
            state = self.states[i]
            if state[0] == "split":
                todo.extend(state[1])
            elif state[0] == "at":
                kind = state[1]
                at_start = pos == 0
                at_end = pos == size or (kind is c.AT_END and pos == size - 1
                                         and text[-1] == "\n")
                if (at_start if kind in (c.AT_BEGINNING, c.AT_BEGINNING_STRING)
                        else at_end):
                    todo.append(state[2])

    def search(self, text: str) -> bool:
        """Whether the pattern matches somewhere in ``text``."""
        live: set[int] = set()
        size = len(text)
        for pos in range(size + 1):
            self._close([self.start], live, pos, size, text)
            if 0 in live:
                return True
            if pos == size:
                break
            ch = text[pos]
            step = [s[2] for s in (self.states[i] for i in live)
                    if s[0] == "char" and s[1](ch)]
            live = set()
            self._close(step, live, pos + 1, size, text)
        return 0 in live
