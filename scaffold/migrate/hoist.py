"""Splits a training helper's call out of the expression that uses its result.

``losses.append(train(epoch))`` and ``print("loss", train(epoch))`` call a function that takes
optimizer steps inside a larger expression; the loop converter follows only calls written as
statements (``train(...)``, ``x = train(...)``). This pass rewrites such a statement as

    train_result = train(epoch)
    losses.append(train_result)

which computes the same: what the statement evaluates before the call is pure (names,
attributes, literals and arithmetic on them) and reads nothing the helper declares ``global``
or ``nonlocal``, so running the call first cannot change those values; what it evaluates
after the call is unchanged. A call that runs conditionally or repeatedly (``a and train()``,
``x if c else train()``, inside a lambda or a comprehension) is left alone.
"""

from __future__ import annotations

from dataclasses import dataclass

import libcst as cst

import scaffold.migrate.match as m
from scaffold.migrate.dataflow import declared_global
from scaffold.migrate.syntax import _fresh, _used, body_without_docstring, calls_of, pure

BACKWARD = m.Call(func=m.Attribute(attr=m.Name("backward")))
STEP = m.Call(func=m.Attribute(attr=m.Name("step")))


@dataclass(frozen=True)
class Hoisted:
    module: cst.Module
    helper: str  # the function whose call was split out
    result: str  # the variable that now holds its result


def _training_functions(module: cst.Module) -> dict[str, cst.FunctionDef]:
    found = {}
    for fn in m.findall(module, m.FunctionDef()):
        if m.findall(fn, BACKWARD) and m.findall(fn, STEP):
            found.setdefault(fn.name.value, fn)
    return found


def _evaluated_before(node, target) -> list | None:
    """The expressions ``node`` evaluates before ``target`` (a node inside it), when the path
    from ``node`` down to ``target`` evaluates ``target`` exactly once and unconditionally;
    None otherwise."""
    if node is target:
        return []
    if isinstance(node, cst.Expr):
        return _evaluated_before(node.value, target)
    if isinstance(node, cst.Assign):
        return _evaluated_before(node.value, target)  # targets are bound after the value
    if isinstance(node, cst.AugAssign):
        inner = _evaluated_before(node.value, target)
        return None if inner is None else [node.target, *inner]
    if isinstance(node, cst.Call):
        ahead: list = [node.func]
        for arg in node.args:
            inner = _evaluated_before(arg.value, target)
            if inner is not None:
                return None if arg.star else [*ahead, *inner]
            ahead.append(arg.value)
        return None
    if isinstance(node, cst.BinaryOperation):
        inner = _evaluated_before(node.left, target)
        if inner is not None:
            return inner
        inner = _evaluated_before(node.right, target)
        return None if inner is None else [node.left, *inner]
    if isinstance(node, cst.UnaryOperation):
        return _evaluated_before(node.expression, target)
    if isinstance(node, (cst.Tuple, cst.List)):
        ahead = []
        for el in node.elements:
            inner = _evaluated_before(el.value, target)
            if inner is not None:
                return None if isinstance(el, cst.StarredElement) else [*ahead, *inner]
            ahead.append(el.value)
        return None
    if isinstance(node, cst.FormattedString):
        ahead = []
        for part in node.parts:
            if isinstance(part, cst.FormattedStringExpression):
                inner = _evaluated_before(part.expression, target)
                if inner is not None:
                    return [*ahead, *inner]
                ahead.append(part.expression)
        return None
    return None


def _names_only(target) -> bool:
    if isinstance(target, (cst.Tuple, cst.List)):
        return all(_names_only(e.value) for e in target.elements)
    return isinstance(target, cst.Name)


class _Replace(cst.CSTTransformer):
    def __init__(self, target, name: str) -> None:
        self.target, self.name = target, name

    def on_leave(self, original, updated):
        return cst.Name(self.name) if original is self.target else updated


def hoist_training_calls(module: cst.Module) -> Hoisted | None:
    """The module with one training helper's call split out of its statement, or None."""
    helpers = _training_functions(module)
    if not helpers:
        return None
    for loop in m.findall(module, m.For() | m.While()):
        if not isinstance(loop.body, cst.IndentedBlock):
            continue
        for i, line in enumerate(loop.body.body):
            if not isinstance(line, cst.SimpleStatementLine) or len(line.body) != 1:
                continue
            small = line.body[0]
            if m.matches(small, m.Expr(value=m.Call(func=m.Name()))) or (
                m.matches(small, m.Assign(value=m.Call(func=m.Name())))
                and all(_names_only(t.target) for t in small.targets)
            ):
                continue  # already a statement of its own
            for call in m.findall(small, m.Call(func=m.Name())):
                name = call.func.value
                if name not in helpers or calls_of(module, name) != 1:
                    continue
                ahead = _evaluated_before(small, call)
                if ahead is None or not all(pure(e) for e in ahead):
                    continue
                body = body_without_docstring(helpers[name])
                if _used(list(ahead)) & declared_global(body, (cst.Global, cst.Nonlocal)):
                    continue
                result = _fresh(f"{name}_result", _used([*module.body]))
                split = line.with_changes(
                    body=[cst.Assign([cst.AssignTarget(cst.Name(result))], call)],
                    trailing_whitespace=cst.TrailingWhitespace(),
                )
                rest = line.with_changes(
                    body=[small.visit(_Replace(call, result))], leading_lines=[]
                )
                stmts = [*loop.body.body[:i], split, rest, *loop.body.body[i + 1 :]]
                new_loop = loop.with_changes(body=loop.body.with_changes(body=stmts))
                return Hoisted(module.deep_replace(loop, new_loop), name, result)
    return None
