"""Messages a user reads say what they mean: no doubled articles or stray format letters."""

from __future__ import annotations

import argparse

import pytest

from pyconnector_server.cli import build_parser
from pyconnector_server.datalake.query import MetadataExpression
from pyconnector_server.errors import APIError

TYPOS = ("manage an API keys", "(JWT mode)s", "unexpected an", "an an ", "a an ")


def _helps() -> list[str]:
    parser = build_parser()
    out = [parser.format_help()]
    todo = [parser]
    while todo:
        p = todo.pop()
        for action in p._actions:
            if isinstance(action, argparse._SubParsersAction):
                for sub in action.choices.values():
                    out.append(sub.format_help())
                    todo.append(sub)
    return out


def test_every_command_help_is_free_of_the_known_typos() -> None:
    helps = _helps()
    assert len(helps) > 8  # the commands and their actions were all reached
    text = " ".join(" ".join(h.split()) for h in helps)
    assert "manage API keys" in text and "(JWT mode)" in text
    for typo in TYPOS:
        assert typo not in text, typo


def test_an_unclosed_quote_in_a_metadata_query_says_so_plainly() -> None:
    with pytest.raises(APIError) as caught:
        MetadataExpression("site='pune", "metadata")
    message = caught.value.message
    assert message.startswith("metadata: an unterminated quote at position 6 of")
    assert "unexpected an" not in message
