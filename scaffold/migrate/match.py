"""A small structural matcher over libcst nodes: the subset of ``libcst.matchers`` migrate
uses (``Call(func=Attribute(attr=Name("step")))``, ``|``, ``matches``, ``findall``), without
its import cost (~0.17 s, most of a single-file migration's budget)."""

from __future__ import annotations

from typing import Any

import libcst as cst

from scaffold.migrate.walk import walk


class Pattern:
    def __init__(self, kind: str, *args: Any, **fields: Any) -> None:
        self.kinds = (getattr(cst, kind),)
        if args:  # Name("x") -> value="x"
            fields = {"value": args[0], **fields}
        self.fields = fields

    def __or__(self, other: Pattern) -> Pattern:
        return OneOf(self, other)

    def test(self, node: Any) -> bool:
        if not isinstance(node, self.kinds):
            return False
        return all(_field_matches(getattr(node, k, None), v) for k, v in self.fields.items())


class OneOf(Pattern):
    def __init__(self, *options: Pattern) -> None:
        self.options = options

    def __or__(self, other: Pattern) -> Pattern:
        return OneOf(*self.options, other)

    def test(self, node: Any) -> bool:
        return any(o.test(node) for o in self.options)


def _field_matches(value: Any, pattern: Any) -> bool:
    if isinstance(pattern, Pattern):
        return pattern.test(value)
    if isinstance(pattern, list):
        return (
            isinstance(value, (list, tuple))
            and len(value) == len(pattern)
            and all(_field_matches(v, p) for v, p in zip(value, pattern, strict=True))
        )
    return value == pattern


def matches(node: Any, pattern: Pattern) -> bool:
    return pattern.test(node)


def findall(tree: cst.CSTNode, pattern: Pattern) -> list:
    """The nodes under ``tree`` (itself included) that match, in source order."""
    test = pattern.test
    return [node for node in walk(tree) if test(node)]


def __getattr__(kind: str):
    if kind[:1].isupper() and hasattr(cst, kind):
        return lambda *args, **fields: Pattern(kind, *args, **fields)
    raise AttributeError(kind)
