"""Fast read-only traversal of libcst trees, in the order libcst's own visitors use.

``node.visit(CSTVisitor)`` and ``node.children`` rebuild every node they pass (libcst's
``_visit_and_replace_children`` runs for visitors too) and call four dispatch methods per
field; a migration walks the same tree dozens of times, so that machinery was most of a
single-file migration's time. Nodes are frozen dataclasses, so reading their fields gives the
same children without building anything.

The order of a class's fields is learnt once, from libcst itself: a visitor that stops below
the first instance it sees records the ``on_visit_attribute`` calls, which libcst makes for
every field in the order it visits them (``Call``: ``lpar`` before ``func``; ``FunctionDef``:
decorators before the name and body). ``tests/tests_scaffold/test_migrate_walk.py`` checks
that ``walk`` yields exactly what a visitor sees, node for node, on real scripts.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator

import libcst as cst

# class -> (fields in visiting order, fields not seen visited yet). A few classes visit a
# field only when it is set (``FormattedStringExpression.format_spec``): an instance that has
# one of the unseen fields set teaches the order again.
_FIELDS: dict[type, tuple[tuple[str, ...], tuple[str, ...]]] = {}


class _FieldOrder(cst.CSTVisitor):
    def __init__(self, root: cst.CSTNode) -> None:
        self.root = root
        self.fields: list[str] = []

    def on_visit(self, node: cst.CSTNode) -> bool:
        return node is self.root

    def on_leave(self, original_node: cst.CSTNode) -> None:
        pass

    def on_visit_attribute(self, node: cst.CSTNode, attribute: str) -> None:
        if node is self.root and attribute not in self.fields:
            self.fields.append(attribute)

    def on_leave_attribute(self, original_node: cst.CSTNode, attribute: str) -> None:
        pass


def _learn(node: cst.CSTNode) -> tuple[str, ...]:
    recorder = _FieldOrder(node)
    node.visit(recorder)
    order = tuple(recorder.fields)
    known = _FIELDS.get(type(node))
    if known is not None:
        order = _merge(known[0], order)
    # fields not visited here that are empty here (None, (), a sentinel) may hold nodes on
    # another instance; fields holding strings or numbers never do
    rest = tuple(
        f
        for f in _field_names(type(node))
        if f not in order and not isinstance(getattr(node, f, None), (str, int, float))
    )
    _FIELDS[type(node)] = (order, rest)
    return order


def _field_names(kind: type) -> list[str]:
    return [f.name for f in dataclasses.fields(kind) if not f.name.startswith("_")]


def _merge(old: tuple[str, ...], new: tuple[str, ...]) -> tuple[str, ...]:
    """``new`` was recorded on an instance with more fields set; it is the longer truth, but
    keep any field only ``old`` saw, in its place relative to its predecessor."""
    out = list(new)
    for i, name in enumerate(old):
        if name not in out:
            before = old[i - 1] if i else None
            out.insert(out.index(before) + 1 if before in out else 0, name)
    return tuple(out)


def _holds_nodes(node: cst.CSTNode, name: str) -> bool:
    value = getattr(node, name, None)
    if isinstance(value, cst.CSTNode):
        return True
    return isinstance(value, (tuple, list)) and any(isinstance(v, cst.CSTNode) for v in value)


def _order(node: cst.CSTNode) -> tuple[str, ...]:
    known = _FIELDS.get(type(node))
    if known is None:
        return _learn(node)
    order, rest = known
    if rest and any(_holds_nodes(node, f) for f in rest):
        return _learn(node)
    return order


def children(node: cst.CSTNode) -> list[cst.CSTNode]:
    """``node.children`` without rebuilding the node (same nodes, same order)."""
    out: list[cst.CSTNode] = []
    for name in _order(node):
        value = getattr(node, name)
        if isinstance(value, cst.CSTNode):
            out.append(value)
        elif isinstance(value, (tuple, list)):
            out.extend(v for v in value if isinstance(v, cst.CSTNode))
    return out


def walk(node: cst.CSTNode) -> Iterator[cst.CSTNode]:
    """Every node under ``node`` (itself first), in the pre-order a ``CSTVisitor`` sees them."""
    stack = [node]
    while stack:
        current = stack.pop()
        yield current
        kids = children(current)
        kids.reverse()
        stack.extend(kids)


_HOOKS: dict[tuple[type, type], tuple] = {}
_GENERIC = ("on_visit", "on_leave", "on_visit_attribute", "on_leave_attribute")


def _hooks(visitor_type: type, node_type: type) -> tuple:
    """The ``visit_<Kind>``/``leave_<Kind>`` methods ``visitor_type`` defines itself for nodes
    of ``node_type`` (libcst's no-op defaults count as absent)."""
    key = (visitor_type, node_type)
    found = _HOOKS.get(key)
    if found is None:
        kind = node_type.__name__
        found = tuple(
            None
            if getattr(visitor_type, f"{verb}_{kind}", None)
            is getattr(cst.CSTVisitor, f"{verb}_{kind}", None)
            else getattr(visitor_type, f"{verb}_{kind}")
            for verb in ("visit", "leave")
        )
        if len(_HOOKS) > 4096:  # visitor classes defined inside functions: one per call
            _HOOKS.clear()
        _HOOKS[key] = found
    return found


def run_visitor(node: cst.CSTNode, visitor: cst.CSTVisitor) -> None:
    """``node.visit(visitor)`` for a read-only visitor that uses ``visit_<Kind>`` /
    ``leave_<Kind>`` methods: the same calls in the same order (``visit_X`` returning False
    skips the children, ``leave_X`` still runs), without rebuilding the tree. Visitors that
    override libcst's generic ``on_*`` hooks get libcst's own traversal."""
    kind = type(visitor)
    if any(getattr(kind, name) is not getattr(cst.CSTVisitor, name) for name in _GENERIC):
        node.visit(visitor)
        return
    stack: list[tuple[cst.CSTNode, bool]] = [(node, False)]
    while stack:
        current, leaving = stack.pop()
        enter, leave = _hooks(kind, type(current))
        if leaving:
            leave(visitor, current)
            continue
        if leave is not None:
            stack.append((current, True))
        if enter is not None and enter(visitor, current) is False:
            continue
        kids = children(current)
        stack.extend((kid, False) for kid in reversed(kids))
