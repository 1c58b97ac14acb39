"""Unrolls a phase loop: ``for phase in ["train", "val"]:`` around a training batch loop.

The PyTorch transfer-learning tutorial and the many scripts written after it run training and
evaluation through one loop body, switching on the phase's name::

    for phase in ["train", "val"]:
        if phase == "train":
            model.train()
        else:
            model.eval()
        for inputs, labels in dataloaders[phase]:
            with torch.set_grad_enabled(phase == "train"):
                loss = criterion(model(inputs), labels)
                if phase == "train":
                    optimizer.zero_grad()
                    loss.backward()
                    optimizer.step()

This pass writes the loop out, one copy of the body per phase, each copy folded for its own
phase (``phase == "train"`` -> ``True``, ``dataloaders[phase]`` -> ``dataloaders["train"]``,
``if True: A else: B`` -> ``A``), so that the training phase is a plain batch loop and the
evaluation phase a plain evaluation loop, which the loop pass converts as it converts any other.

Unrolling ``for phase in <literals>: BODY`` into ``BODY`` once per literal is exact when nothing
in the body leaves the phase loop early or skips to its next phase (no ``break``/``continue`` of
its own, no ``else:``), and folding is exact where the body never rebinds ``phase``. A copy that
still reads ``phase`` (in a message, a nested function) keeps ``phase = "<literal>"`` ahead of
it, as does the last copy when code after the loop reads ``phase``.
"""

from __future__ import annotations

from dataclasses import dataclass

import libcst as cst

import scaffold.migrate.match as m
from scaffold.migrate.dataflow import _INNER_SCOPES as _NESTED_SCOPES
from scaffold.migrate.dataflow import written
from scaffold.migrate.syntax import _OwnBreaks, _used, code_of
from scaffold.migrate.walk import run_visitor

BACKWARD = m.Call(func=m.Attribute(attr=m.Name("backward")))


@dataclass(frozen=True)
class Unrolled:
    module: cst.Module
    variable: str  # the phase variable
    phases: tuple[str, ...]  # the phases' literals, as written


def _literals(expr, scope: list) -> list[cst.SimpleString] | None:
    """The string literals a phase loop iterates over: a list/tuple literal in the header, or a
    variable the scope binds once to one and never changes."""
    if isinstance(expr, cst.Name):
        binds = [s for s in scope if expr.value in written([s])]
        if len(binds) != 1:
            return None
        small = binds[0].body[0] if isinstance(binds[0], cst.SimpleStatementLine) else None
        if not (
            isinstance(small, cst.Assign)
            and len(small.targets) == 1
            and m.matches(small.targets[0].target, m.Name(expr.value))
        ):
            return None
        expr = small.value
    if not isinstance(expr, (cst.List, cst.Tuple)) or not 2 <= len(expr.elements) <= 4:
        return None
    values = [e.value for e in expr.elements]
    if any(isinstance(e, cst.StarredElement) for e in expr.elements) or not all(
        isinstance(v, cst.SimpleString) for v in values
    ):
        return None
    return values


class _LoopExits(_OwnBreaks):
    """``break`` and ``continue`` of the visited loop body itself (not of loops nested in it)."""

    visit_Continue = _OwnBreaks.visit_Break


def _exits(stmts) -> bool:
    finder = _LoopExits()
    for st in stmts:
        run_visitor(st, finder)
    return finder.count > 0


def _declares(stmts, name: str) -> bool:
    return any(
        n.value == name
        for s in stmts
        for decl in m.findall(s, m.Global() | m.Nonlocal())
        for n in (x.name for x in decl.names)
    )


class _Fold(cst.CSTTransformer):
    """Folds one copy of the body for ``name == value`` (outside nested scopes)."""

    def __init__(self, name: str, value: cst.SimpleString) -> None:
        self.name, self.value, self.text = name, value, value.evaluated_value
        self.depth = 0
        self.not_reads: set[int] = set()  # `x.phase`'s attr, `f(phase=...)`'s keyword

    def on_visit(self, node) -> bool:
        if isinstance(node, (*_NESTED_SCOPES, cst.FormattedString)):
            self.depth += 1  # f-strings too: a literal inside one would need other quotes
        elif isinstance(node, cst.Attribute):
            self.not_reads.add(id(node.attr))
        elif isinstance(node, cst.Arg) and node.keyword is not None:
            self.not_reads.add(id(node.keyword))
        return True

    def on_leave(self, original, updated):
        if isinstance(original, (*_NESTED_SCOPES, cst.FormattedString)):
            self.depth -= 1
            return updated
        if self.depth:
            return updated
        if isinstance(updated, cst.Comparison):
            return self._comparison(updated)
        if (
            isinstance(original, cst.Name)
            and original.value == self.name
            and id(original) not in self.not_reads
        ):
            return self.value  # the body never rebinds it: every read is the literal
        if isinstance(updated, cst.UnaryOperation) and isinstance(updated.operator, cst.Not):
            truth = _truth(updated.expression)
            if truth is not None:
                return cst.Name(str(not truth))
        if isinstance(updated, cst.BooleanOperation):
            return _boolean(updated)
        if isinstance(updated, cst.IfExp):
            truth = _truth(updated.test)
            if truth is not None:
                return updated.body if truth else updated.orelse
        return updated

    def _comparison(self, node: cst.Comparison):
        """A comparison of the phase (now its literal) with string literals, decided."""
        if len(node.comparisons) != 1:
            return node
        op, right = node.comparisons[0].operator, node.comparisons[0].comparator
        left = node.left
        if right is self.value and isinstance(op, (cst.Equal, cst.NotEqual)):
            left, right = right, left
        if left is not self.value:
            return node
        if isinstance(op, (cst.Equal, cst.NotEqual)) and isinstance(right, cst.SimpleString):
            same = right.evaluated_value == self.text
            return cst.Name(str(same if isinstance(op, cst.Equal) else not same))
        if isinstance(op, (cst.In, cst.NotIn)) and isinstance(
            right, (cst.List, cst.Tuple, cst.Set)
        ):
            items = [e.value for e in right.elements]
            if all(isinstance(v, cst.SimpleString) for v in items) and not any(
                isinstance(e, cst.StarredElement) for e in right.elements
            ):
                inside = any(v.evaluated_value == self.text for v in items)
                return cst.Name(str(inside if isinstance(op, cst.In) else not inside))
        return node


def _truth(expr) -> bool | None:
    if isinstance(expr, cst.Name) and expr.value in ("True", "False"):
        return expr.value == "True"
    return None


def _boolean(node: cst.BooleanOperation):
    """``True and x`` -> ``x``, ``False and x`` -> ``False``, ``True or x`` -> ``True``,
    ``False or x`` -> ``x`` (the left operand decides; a constant right operand is left alone,
    since the left one is evaluated either way)."""
    truth = _truth(node.left)
    if truth is None:
        return node
    if isinstance(node.operator, cst.And):
        return node.right if truth else node.left
    return node.left if truth else node.right


class _Prune(cst.CSTTransformer):
    """``if True: A else: B`` -> ``A``; ``if False: A else: B`` -> ``B`` (an ``elif`` kept as
    an ``if``); an ``if False:`` with no ``else`` goes, its comments moving to the statement
    after it (or to the end of the block)."""

    def leave_IndentedBlock(self, original, updated):
        body, footer = _pruned(list(updated.body))
        if not body:
            body = [cst.SimpleStatementLine(body=[cst.Pass()], leading_lines=footer)]
            footer = []
        return updated.with_changes(body=body, footer=[*footer, *updated.footer])

    def leave_Module(self, original, updated):
        body, footer = _pruned(list(updated.body))
        return updated.with_changes(body=body, footer=[*footer, *updated.footer])


def _pruned(stmts: list) -> tuple[list, list]:
    """(the statements with constant ``if`` tests decided, comments left over at the end)."""
    out: list = []
    carry: list = []
    for st in stmts:
        truth = _truth(st.test) if isinstance(st, cst.If) else None
        if truth is None:
            kept = [st]
        elif truth:
            kept = list(st.body.body) if isinstance(st.body, cst.IndentedBlock) else []
        elif isinstance(st.orelse, cst.If):
            kept = [st.orelse]
        elif isinstance(st.orelse, cst.Else):
            kept = list(st.orelse.body.body)
        else:
            kept = []
        lead = [*carry, *(st.leading_lines if truth is not None else [])]
        comments = [ln for ln in lead if ln.comment is not None]
        if not kept:
            carry = comments
            continue
        first = kept[0]
        kept[0] = first.with_changes(leading_lines=[*lead, *first.leading_lines])
        if truth is None:
            kept[0] = first.with_changes(leading_lines=[*carry, *first.leading_lines])
        carry = []
        out.extend(kept)
    return out, carry


def _assignment(name: str, value: cst.SimpleString, leading) -> cst.SimpleStatementLine:
    return cst.SimpleStatementLine(
        body=[cst.Assign(targets=[cst.AssignTarget(cst.Name(name))], value=value)],
        leading_lines=leading,
    )


class _Unroll(cst.CSTTransformer):
    def __init__(self) -> None:
        self.scopes: list[list] = []  # the statement lists of the enclosing defs (module first)
        self.done: tuple[str, tuple[str, ...]] | None = None  # (variable, the phases)

    def visit_Module(self, node) -> None:
        self.scopes.append(list(node.body))

    def visit_FunctionDef(self, node) -> None:
        body = node.body.body if isinstance(node.body, cst.IndentedBlock) else []
        self.scopes.append(list(body))

    def leave_FunctionDef(self, original, updated):
        self.scopes.pop()
        return updated

    def leave_For(self, original: cst.For, updated: cst.For):
        if self.done is not None:
            return updated  # one loop per round
        found = self._unrollable(original)
        if found is None:
            return updated
        name, literals = found
        body = list(original.body.body)
        scope = self.scopes[-1]
        read_after = _reads_elsewhere(scope, original, name)
        out: list = []
        left: list = []  # comments a copy's last removed statement left over
        for k, literal in enumerate(literals):
            copy = cst.Module(body=body).visit(_Fold(name, literal)).visit(_Prune())
            stmts = list(copy.body) or [cst.SimpleStatementLine(body=[cst.Pass()])]
            keep = name in _used(stmts) or (k == len(literals) - 1 and read_after)
            lead = [*(original.leading_lines if k == 0 else []), *left]
            left = list(copy.footer)
            if keep:
                out.append(_assignment(name, literal, lead))
            elif lead:
                stmts[0] = stmts[0].with_changes(leading_lines=[*lead, *stmts[0].leading_lines])
            out.extend(stmts)
        if left:
            out.append(cst.SimpleStatementLine(body=[cst.Pass()], leading_lines=left))
        self.done = (name, tuple(code_of(v) for v in literals))
        return cst.FlattenSentinel(out)

    def _unrollable(self, loop: cst.For):
        if (
            not isinstance(loop.target, cst.Name)
            or loop.orelse is not None
            or loop.asynchronous is not None
            or not isinstance(loop.body, cst.IndentedBlock)
        ):
            return None
        name = loop.target.value
        literals = _literals(loop.iter, self.scopes[-1])
        body = list(loop.body.body)
        if literals is None or _exits(body) or _declares(body, name) or name in written(body):
            return None
        if not any(m.findall(s, BACKWARD) for s in body):
            return None  # only loops around a training loop are written out
        compared = cst.Module(body=body).visit(_Fold(name, literals[0]))
        if compared.deep_equals(cst.Module(body=body)):
            return None  # the body does not switch on the phase
        return name, literals


def _reads_elsewhere(scope: list, loop: cst.For, name: str) -> bool:
    """Whether statements of the loop's scope other than the loop read ``name``."""

    class _Reads(cst.CSTVisitor):
        def __init__(self) -> None:
            self.hit = False

        def visit_For(self, node) -> bool:
            return node is not loop

        def visit_Name(self, node) -> None:
            if node.value == name:
                self.hit = True

    finder = _Reads()
    for s in scope:
        run_visitor(s, finder)
    return finder.hit


def unroll_phase_loop(module: cst.Module) -> Unrolled | None:
    """The module with one phase loop written out, or None when there is none."""
    unroll = _Unroll()
    new = module.visit(unroll)
    if unroll.done is None:
        return None
    return Unrolled(new, *unroll.done)
