"""nameRegex's matcher agrees with Python's ``re`` on what it accepts, and refuses what
would need backtracking."""

from __future__ import annotations

import itertools
import re

import pytest

from pyconnector_server.datalake.namematch import NamePattern
from pyconnector_server.errors import APIError

PATTERNS = [r"csv", r"^a.*\.csv$", r"(a|b)+c", r"x{2,3}", r"^$", r"[^a-c]\d", r"\w+_\d{2}",
            r"a?b", r"(ab)*$", r"^(a+)+$", r".", r"a|^b", r"[a-z-]", r"z*", r"(?:x|y){0,2}q",
            r"\.", r"[\s\S]b", r"\D\W", r"a+?b", r"\Aab\Z", r"a{2,}", r"[.]"]
ALPHABET = "abxyqz1_.- "


@pytest.mark.parametrize("pattern", PATTERNS)
def test_matches_as_re_searches(pattern: str) -> None:
    mine, theirs = NamePattern(pattern), re.compile(pattern)
    for n in range(5):
        for chars in itertools.product(ALPHABET, repeat=n):
            name = "".join(chars)
            assert mine.search(name) == bool(theirs.search(name)), (pattern, name)


def test_a_nested_quantifier_is_answered_without_backtracking() -> None:
    # re.search would take about 2**60 steps on this name.
    assert NamePattern(r"^(a+)+$").search("a" * 60 + "!") is False
    assert NamePattern(r"^(a|aa)+$").search("a" * 250) is True


@pytest.mark.parametrize("pattern", [r"(a)\1", "(?=a)", "(?<=a)b", "(?i)x", r"\bx",
                                     "(a)?(?(1)b|c)", "(?>a+)ab", "a++b", "(", "a" * 257,
                                     "a{5000}"])
def test_what_needs_backtracking_or_is_not_a_pattern_is_400(pattern: str) -> None:
    with pytest.raises(APIError) as err:
        NamePattern(pattern)
    assert err.value.status == 400 and err.value.field == "nameRegex"
