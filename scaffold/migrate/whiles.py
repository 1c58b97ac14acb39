"""Writes an endless training ``while True:`` loop as ``for _ in itertools.count():``.

Scripts that count optimizer steps rather than epochs (makemore, many language-model scripts)
loop until a ``break``::

    step = 0
    while True:
        X, Y = batch_loader.next()
        loss = model(X, Y)
        model.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        step += 1
        if step >= max_steps:
            break

``while True: BODY`` and ``for _ in itertools.count(): BODY`` run ``BODY`` the same number of
times with the same effects (``break``/``continue`` mean the same in both, and neither header
evaluates anything the body can observe), so the rewrite is exact; it gives the loop pass a
batch loop over an endless iterable, whose ``break`` ends the Trainer's one epoch exactly where
the script stopped.

A loop on a test (``while step < max_steps:``) is written with the test where an epoch can
see it, before the first pass and after each pass::

    if step < max_steps:
        for _ in itertools.count():
            BODY
            if not (step < max_steps):
                break

The test is evaluated as often, and at the same points relative to ``BODY``, as ``while``
evaluates it (once before each pass, once more when it ends the loop); a ``break`` in ``BODY``
leaves both at once. Not where ``BODY`` has a ``continue`` of its own (it would skip the test
at the end) or the loop has an ``else:`` block: those stay refused (SCF330).
"""

from __future__ import annotations

from dataclasses import dataclass

import libcst as cst

import scaffold.migrate.match as m
from scaffold.migrate.locate import flat_while_training, micro_batch_whiles
from scaffold.migrate.syntax import _used, own_continues


@dataclass(frozen=True)
class Counted:
    module: cst.Module
    loops: int  # how many loops were rewritten


def _endless(loop: cst.While) -> bool:
    test = loop.test
    return loop.orelse is None and (
        m.matches(test, m.Name("True")) or m.matches(test, m.Integer("1"))
    )


def _guardable(loop: cst.While) -> bool:
    """A ``while <test>:`` loop without ``else:`` whose body has no ``continue`` of its own."""
    return loop.orelse is None and not own_continues(loop.body.body)


def why_kept(loop: cst.While) -> str:
    """Why a training ``while`` loop was not rewritten as a ``for`` loop (see above)."""
    if loop.orelse is not None:
        return "it has an `else:` block (run when the test fails, not after a `break`)"
    if own_continues(loop.body.body):
        return (
            "its body has a `continue`, which would skip the test this tool moves to the end "
            "of each pass"
        )
    return "`itertools` (or the loop variable) names something else in this script"


class _Count(cst.CSTTransformer):
    def __init__(self, targets: set[int], guarded: set[int], variable: str) -> None:
        self.targets = targets
        self.guarded = guarded
        self.variable = variable
        self.done = 0

    def leave_While(self, original: cst.While, updated: cst.While):
        if id(original) not in self.targets | self.guarded:
            return updated
        self.done += 1
        header = cst.parse_statement(f"for {self.variable} in itertools.count():\n    pass\n")
        if id(original) in self.targets:
            return header.with_changes(body=updated.body, leading_lines=updated.leading_lines)
        test = cst.Module([]).code_for_node(updated.test)
        check = cst.parse_statement(f"if not ({test}):\n    break\n")
        body = updated.body.with_changes(body=[*updated.body.body, check])
        guard = cst.parse_statement(f"if {test}:\n    pass\n")
        return guard.with_changes(
            body=guard.body.with_changes(body=[header.with_changes(body=body)]),
            leading_lines=updated.leading_lines,
        )


def count_endless_loops(module: cst.Module) -> Counted | None:
    """``module`` with each endless training ``while`` loop rewritten (see the module
    docstring); None when there is none, or when ``itertools`` names something of the
    script's own."""
    loops = [*flat_while_training(module), *micro_batch_whiles(module)]
    targets = {id(loop) for loop in loops if _endless(loop)}
    guarded = {id(loop) for loop in loops if not _endless(loop) and _guardable(loop)}
    if not targets and not guarded:
        return None
    used = _used([module])
    if "itertools" in used and not _imports_itertools(module):
        return None
    variable = "_" if "_" not in used else "_step"
    if variable in used:
        return None
    rewriter = _Count(targets, guarded, variable)
    new = module.visit(rewriter)
    if not rewriter.done:
        return None
    return Counted(new, rewriter.done)  # the caller adds `import itertools`


def _imports_itertools(module: cst.Module) -> bool:
    pattern = m.Import(names=[m.ImportAlias(name=m.Name("itertools"), asname=None)])
    return bool(m.findall(module, pattern))
