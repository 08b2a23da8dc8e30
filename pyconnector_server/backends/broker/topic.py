"""AMQP topic matching: which routing keys a binding key such as ``sensor.*.temp`` or
``#.alarm`` selects, exactly as RabbitMQ decides.

A key is a list of words separated by ``.``; the empty key has no words, and ``a..b``
has three (the middle one empty). In a binding key ``*`` stands for exactly one word and
``#`` for zero or more; any other word must equal the routing key's word.
"""

from __future__ import annotations

from functools import lru_cache


@lru_cache(maxsize=4096)
def split_words(key: str) -> tuple[str, ...]:
    """The words of ``key``: ``()`` for ``""`` (RabbitMQ's reading), else split on ``.``."""
    return tuple(key.split(".")) if key else ()


def topic_matches(binding_key: str, routing_key: str) -> bool:
    """True if ``binding_key`` (with ``*``/``#``) selects ``routing_key``.

    Runs the pattern over the key once, keeping the set of key positions the pattern
    read so far can end at: no backtracking, so ``#.#.#…`` costs no more than its length
    times the key's.
    """
    key = split_words(routing_key)
    n = len(key)
    ends = {0}
    for word in split_words(binding_key):
        if word == "#":
            ends = set(range(min(ends), n + 1))
        elif word == "*":
            ends = {i + 1 for i in ends if i < n}
        else:
            ends = {i + 1 for i in ends if i < n and key[i] == word}
        if not ends:
            return False
    return n in ends


def has_wildcards(binding_key: str) -> bool:
    """True if ``binding_key`` has a ``*`` or ``#`` word (else it matches only itself)."""
    return any(w in ("*", "#") for w in split_words(binding_key))
