"""Name patterns of the ``feature`` and ``sensorID`` filters: exact names, globs, regexes.

How a value is read (TCUP shows ``health*`` and ``^[a-zA-Z0-9]*$`` without saying more):

* it starts with ``^`` or ends with ``$``: a regular expression (Python syntax), searched
  in the name, so its anchors mean what they say (``^health`` is a prefix);
* else it holds ``*``, ``?`` or ``[``: a glob matching the whole name (``health*``,
  ``room?_temp``, ``node[0-9]``), case-sensitive;
* else: the exact name.

Python's ``re`` has no timeout and the rule engine runs every tenant's rules on shared
threads, so a pattern that can backtrack for seconds on one name (``(a+)+$``,
``(a|aa)*b``, ``.*a.*a.*a.*b``) would stall everyone's routing. :func:`check` refuses the
shapes that do that before a rule is stored; names over :data:`NAME_MAX` characters
never match, which bounds what is left. Results are cached per name by
:class:`NameFilter`, so each distinct name costs one match.
"""

from __future__ import annotations

import fnmatch
import re
import warnings
from collections.abc import Callable, Iterable
from functools import lru_cache
from typing import Any

try:  # Python 3.11+
    from re import _parser as _sre  # type: ignore[attr-defined]
except ImportError:  # pragma: no cover - Python 3.10
    import sre_parse as _sre

PATTERN_MAX = 256  # characters in one pattern
PATTERNS_MAX = 64  # names or patterns in one filter
NAME_MAX = 255  # the longest feature or sensor name the platform stores
# Repeats of varying width (``*``, ``+``, ``?``, ``{2,9}``) in one regex. With 3, the worst
# regex measured on a 255-character name takes about 25 ms; with 4, half a second.
VARIABLE_REPEATS_MAX = 3
CACHE_MAX = 4096  # names remembered per filter (the cache is emptied when full)

_GLOB_CHARS = frozenset("*?[")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_REPEATS = ("MAX_REPEAT", "MIN_REPEAT", "POSSESSIVE_REPEAT")

Matcher = Callable[[str], bool]


class PatternError(ValueError):
    """A pattern the platform refuses; the message says why (without the field)."""


def kind(pattern: str) -> str:
    """``"regex"``, ``"glob"`` or ``"name"``: how :func:`compile_pattern` reads ``pattern``."""
    if pattern.startswith("^") or pattern.endswith("$"):
        return "regex"
    if _GLOB_CHARS.intersection(pattern):
        return "glob"
    return "name"


def check(pattern: Any) -> str:
    """``pattern`` if the platform accepts it, else :class:`PatternError` saying why."""
    if not isinstance(pattern, str):
        raise PatternError(f"expected a string, got {type(pattern).__name__}")
    if not pattern:
        raise PatternError("must not be empty")
    if len(pattern) > PATTERN_MAX:
        raise PatternError(f"at most {PATTERN_MAX} characters, got {len(pattern)}")
    if _CONTROL.search(pattern):
        raise PatternError("must not contain control characters")
    compile_pattern(pattern)
    return pattern


@lru_cache(maxsize=1024)
def compile_pattern(pattern: str) -> Matcher:
    """A test ``name -> bool`` for one checked pattern, compiled once and shared by every
    rule that uses it; raises :class:`PatternError` for a refused regex."""
    how = kind(pattern)
    if how == "name":
        return pattern.__eq__
    if how == "glob":
        body = pattern[:-1]
        if pattern.endswith("*") and not _GLOB_CHARS.intersection(body):
            return lambda name: name.startswith(body)  # the common "health*": no regex
        # fnmatch's translation cannot backtrack badly (it guards its own '*'s).
        return _compile(fnmatch.translate(pattern)).match  # type: ignore[return-value]
    compiled = _compile(pattern)
    _refuse_slow(pattern, compiled.flags)
    return compiled.search  # type: ignore[return-value]


def _compile(regex: str) -> re.Pattern[str]:
    """``re.compile``, its failures as :class:`PatternError`. Python warns (FutureWarning)
    of set syntax whose meaning a later version changes (``[[a]``): refused, so a rule
    means the same on every Python."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", FutureWarning)
            return re.compile(regex)
    except FutureWarning as exc:
        raise PatternError(f"ambiguous regular expression: {exc}; escape the '[', '&', "
                           "'~' or '|'") from None
    except (re.error, OverflowError, RecursionError) as exc:
        raise PatternError(f"not a valid regular expression: {exc}") from None


def _refuse_slow(pattern: str, flags: int) -> None:
    """Refuse the regex shapes whose matching time can explode (see the module's doc)."""
    tree = _sre.parse(pattern, flags)
    # An unanchored regex is tried at every position: one more varying-width repeat.
    repeats = _walk(tree, in_repeat=False) + (0 if pattern.startswith("^") else 1)
    if repeats > VARIABLE_REPEATS_MAX:
        raise PatternError(
            f"at most {VARIABLE_REPEATS_MAX} repeats of varying width ('*', '+', '?', "
            "'{m,n}'; a regex not starting with '^' counts one more): matching such a "
            "regex can take seconds")


def _walk(tree: Iterable[tuple[Any, Any]], in_repeat: bool) -> int:
    """The number of varying-width repeats in ``tree``; raises for nested ones, for
    alternatives that overlap inside a repeat, and for backreferences."""
    count = 0
    for op, arg in tree:
        name = str(op)
        if name in _REPEATS:
            low, high, sub = arg
            varying = high != low
            if varying and in_repeat:
                raise PatternError("nested repeats such as '(a+)+' are not allowed: "
                                   "matching them can take seconds")
            count += varying + _walk(sub, in_repeat or high > 1)
        elif name in ("GROUPREF", "GROUPREF_EXISTS"):
            raise PatternError("backreferences are not allowed: matching them can take "
                               "seconds")
        elif name == "BRANCH":
            branches = arg[1]
            if in_repeat:
                _distinct_starts(branches)
            count += sum(_walk(b, in_repeat) for b in branches)
        elif name == "SUBPATTERN":
            count += _walk(arg[-1], in_repeat)
        elif name == "ATOMIC_GROUP":
            count += _walk(arg, in_repeat)
        elif name in ("ASSERT", "ASSERT_NOT"):
            count += _walk(arg[1], in_repeat)
    return count


def _distinct_starts(branches: list[Any]) -> None:
    """Alternatives in a repeat must start with different literal characters, or a
    name can be split between them in exponentially many ways (``(a|aa)*``)."""
    firsts = []
    for branch in branches:
        items = list(branch)
        if not items or str(items[0][0]) != "LITERAL":
            raise PatternError("alternatives inside a repeat must each start with a "
                               "different plain character (like '(ab|cd)+'): matching "
                               "others can take seconds")
        firsts.append(items[0][1])
    if len(set(firsts)) != len(firsts):
        raise PatternError("alternatives inside a repeat must each start with a different "
                           "plain character (like '(ab|cd)+'): matching others can take "
                           "seconds")


class NameFilter:
    """Whether a feature or sensor name matches any of a filter's names or patterns.
    Answers are kept in :attr:`seen` (a hot loop may look there first and call
    :meth:`match` only for a name it lacks); exact names are a set lookup."""

    __slots__ = ("_exact", "_patterns", "seen")

    def __init__(self, patterns: Iterable[str]) -> None:
        patterns = list(patterns)
        self._exact = frozenset(p for p in patterns if kind(p) == "name")
        self._patterns = tuple(compile_pattern(p) for p in patterns if kind(p) != "name")
        self.seen: dict[str, bool] = {}

    def __call__(self, name: Any) -> bool:
        hit = self.seen.get(name) if type(name) is str else False
        return self.match(name) if hit is None else hit

    def match(self, name: str) -> bool:
        """Match ``name`` (a string) and remember the answer."""
        hit = name in self._exact or (len(name) <= NAME_MAX and any(
            match(name) for match in self._patterns))
        if len(self.seen) >= CACHE_MAX:
            self.seen.clear()  # a simple bound: names seen again are matched once more
        self.seen[name] = hit
        return hit
