"""Inlines a per-batch helper (``def train_step(...)`` with zero_grad/backward/step and no
loop of its own) at its single call site inside a loop, so the loop converter sees the whole
step. Parameters become assignments; the final ``return X`` becomes ``target = X``; helper
locals that clash with names of the calling loop are renamed."""

from __future__ import annotations

import libcst as cst

import scaffold.migrate.match as m
from scaffold.migrate.dataflow import declared_global, written
from scaffold.migrate.syntax import (
    _fresh,
    _Renamer,
    _used,
    body_without_docstring,
    call_bindings,
    calls_of,
    code_of,
    comment_holder,
    comments_of,
)

BACKWARD = m.Call(func=m.Attribute(attr=m.Name("backward")))
STEP = m.Call(func=m.Attribute(attr=m.Name("step")))


def _is_step_helper(fn: cst.FunctionDef) -> bool:
    if not m.findall(fn, BACKWARD) or not m.findall(fn, STEP):
        return False
    if any(
        m.findall(loop, BACKWARD) or m.findall(loop, STEP)
        for loop in m.findall(fn.body, m.For() | m.While())
    ):
        return False  # it loops over batches itself: a loop, not a step
    params = fn.params
    if (
        params.star_arg not in (None, cst.MaybeSentinel.DEFAULT)
        or params.kwonly_params
        or params.star_kwarg
    ):
        return False
    returns = m.findall(fn.body, m.Return())
    body = fn.body.body
    return len(returns) <= 1 and (
        not returns or m.matches(body[-1], m.SimpleStatementLine(body=[m.Return()]))
    )


def _call_sites(module: cst.Module, name: str) -> list:
    """(loop, statement) for statements ``name(...)`` / ``x = name(...)`` directly in a for loop."""
    sites = []
    pattern = m.SimpleStatementLine(
        body=[
            m.Expr(value=m.Call(func=m.Name(name)))
            | m.Assign(targets=[m.AssignTarget()], value=m.Call(func=m.Name(name)))
            | m.AugAssign(value=m.Call(func=m.Name(name)))
        ]
    )
    for loop in m.findall(module, m.For()):
        if isinstance(loop.body, cst.IndentedBlock):
            sites += [(loop, s) for s in loop.body.body if m.matches(s, pattern)]
    return sites


def inline_step_helpers(module: cst.Module) -> cst.Module | None:
    """The module with one helper inlined, or None when there is none to inline."""
    for fn in (s for s in module.body if isinstance(s, cst.FunctionDef)):
        if not _is_step_helper(fn):
            continue
        name = fn.name.value
        sites = _call_sites(module, name)
        if len(sites) != 1 or calls_of(module, name) != 1:
            continue
        loop, call_stmt = sites[0]
        declared = declared_global(body_without_docstring(fn))
        if declared:
            # the helper's `global` names: at module level they are the caller's own names
            # (the declaration goes); a calling function must declare them global itself
            caller = _enclosing_function(module, loop)
            if caller is not None and not declared <= declared_global(caller.body.body):
                continue
        replacement = _inline(fn, loop, call_stmt)
        if replacement is None:
            continue
        if declared:
            replacement = [
                (comment_holder(comments_of(s)) if comments_of(s) else None) if _is_global(s) else s
                for s in replacement
            ]
            replacement = [s for s in replacement if s is not None] or [
                cst.SimpleStatementLine(body=[cst.Pass()])
            ]
        return module.visit(_Replace(call_stmt, replacement, fn))
    return None


def _is_global(statement) -> bool:
    return m.matches(statement, m.SimpleStatementLine(body=[m.Global()]))


def _enclosing_function(module: cst.Module, loop: cst.For) -> cst.FunctionDef | None:
    for fn in m.findall(module, m.FunctionDef()):
        if any(inner is loop for inner in m.findall(fn.body, m.For())):
            return fn
    return None


def split_return(fn: cst.FunctionDef) -> tuple[list, cst.SimpleStatementLine | None]:
    """(body without docstring and final ``return``, that return statement or None)."""
    body = body_without_docstring(fn)
    if body and m.matches(body[-1], m.SimpleStatementLine(body=[m.Return()])):
        return body[:-1], body[-1]
    return body, None


def inline_call(
    fn: cst.FunctionDef,
    params: list,
    bound: dict,
    body: list,
    ret,
    target,
    call_stmt,
    caller_names: set[str],
    suffix: str,
) -> list:
    """The statements a call of ``fn`` becomes: parameters bound by assignment (where the
    argument differs), the body with locals that clash with the caller's names suffixed, the
    returned value assigned to ``target``, and the call's and the def's comments in front."""
    # the helper's own locals (a name it declares `global` is the caller's too)
    local_names = (written(body) - declared_global(body)) | set(bound)
    clashes = {n for n in local_names if n in caller_names and bound.get(n) != n}
    mapping = {n: cst.Name(f"{n}_{suffix}") for n in clashes}
    renamer = _Renamer(mapping)
    lines = []
    for p in params:
        name = p.name.value
        if bound[name] == name and name not in clashes:
            continue
        new_name = mapping[name].value if name in clashes else name
        lines.append(cst.parse_statement(f"{new_name} = {bound[name]}\n"))
    inlined = [*lines, *(cst.Module(body=body).visit(renamer).body)]
    if ret is not None and ret.body[0].value is not None and target is not None:
        value = cst.Module(body=[cst.SimpleStatementLine([cst.Expr(ret.body[0].value)])]).visit(
            renamer
        )
        assign = cst.Assign(targets=[cst.AssignTarget(target)], value=value.body[0].body[0].value)
        inlined.append(cst.SimpleStatementLine(body=[assign], leading_lines=ret.leading_lines))
    elif ret is not None and comments_of(ret):
        inlined.append(comment_holder(comments_of(ret)))
    if not inlined:
        inlined = [cst.SimpleStatementLine(body=[cst.Pass()])]
    lead = [*call_stmt.leading_lines, *[ln for ln in fn.leading_lines if ln.comment is not None]]
    if fn.body.header.comment is not None:
        lead.append(cst.EmptyLine(comment=fn.body.header.comment))
    trailing = getattr(call_stmt, "trailing_whitespace", None)
    if trailing is not None and trailing.comment is not None:
        lead.append(cst.EmptyLine(comment=trailing.comment))  # `x = step(...)  # note`
    inlined[0] = inlined[0].with_changes(leading_lines=[*lead, *inlined[0].leading_lines])
    return inlined


def _inline(fn: cst.FunctionDef, loop: cst.For, call_stmt) -> list | None:
    small = call_stmt.body[0]
    call = small.value
    target = small.targets[0].target if isinstance(small, cst.Assign) else None
    augmented = None
    if isinstance(small, cst.AugAssign):
        # `total += step(...)`: the value goes through a variable, then `total += it`
        taken = _used(loop.body.body) | written(loop.body.body)
        target = cst.Name(_fresh(f"{fn.name.value}_result", taken))
        augmented = small.with_changes(value=target)
    params = list(fn.params.params)
    bound = call_bindings(fn, call)
    if bound is None or any(p.name.value not in bound for p in params):
        return None
    body, ret = split_return(fn)
    # helper locals (and parameters) that also appear in the calling loop get a suffix
    caller = [s for s in loop.body.body if s is not call_stmt]
    caller_names = (
        _used(caller) | _used([loop.target]) | ({code_of(target)} if target is not None else set())
    )
    if augmented is not None and (ret is None or ret.body[0].value is None):
        return None
    inlined = inline_call(
        fn, params, bound, body, ret, target, call_stmt, caller_names, fn.name.value
    )
    if augmented is not None:
        inlined.append(cst.SimpleStatementLine(body=[augmented]))
    return inlined


class _Replace(cst.CSTTransformer):
    def __init__(self, call_stmt, replacement: list, fn) -> None:
        self.call_stmt, self.replacement, self.fn = call_stmt, replacement, fn

    def on_leave(self, original, updated):
        if original is self.call_stmt:
            return cst.FlattenSentinel(self.replacement)
        if original is self.fn:
            return cst.RemoveFromParent()
        return updated
