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
the script stopped. Only a loop on a constant true test (``True``, ``1``) with no ``else:`` is
rewritten: a ``while step < n:`` test is evaluated before each pass, which no epoch hook can do
at the same point, and stays refused (SCF330).
"""

from __future__ import annotations

from dataclasses import dataclass

import libcst as cst

import scaffold.migrate.match as m
from scaffold.migrate.locate import flat_while_training, micro_batch_whiles
from scaffold.migrate.syntax import _used


@dataclass(frozen=True)
class Counted:
    module: cst.Module
    loops: int  # how many loops were rewritten


def _endless(loop: cst.While) -> bool:
    test = loop.test
    return loop.orelse is None and (
        m.matches(test, m.Name("True")) or m.matches(test, m.Integer("1"))
    )


class _Count(cst.CSTTransformer):
    def __init__(self, targets: set[int], variable: str) -> None:
        self.targets = targets
        self.variable = variable
        self.done = 0

    def leave_While(self, original: cst.While, updated: cst.While):
        if id(original) not in self.targets:
            return updated
        self.done += 1
        header = cst.parse_statement(f"for {self.variable} in itertools.count():\n    pass\n")
        return header.with_changes(
            body=updated.body,
            leading_lines=updated.leading_lines,
        )


def count_endless_loops(module: cst.Module) -> Counted | None:
    """``module`` with each endless training ``while`` loop rewritten (see the module
    docstring); None when there is none, or when ``itertools`` names something of the
    script's own."""
    loops = [*flat_while_training(module), *micro_batch_whiles(module)]
    targets = {id(loop) for loop in loops if _endless(loop)}
    if not targets:
        return None
    used = _used([module])
    if "itertools" in used and not _imports_itertools(module):
        return None
    variable = "_" if "_" not in used else "_step"
    if variable in used:
        return None
    rewriter = _Count(targets, variable)
    new = module.visit(rewriter)
    if not rewriter.done:
        return None
    return Counted(new, rewriter.done)  # the caller adds `import itertools`


def _imports_itertools(module: cst.Module) -> bool:
    pattern = m.Import(names=[m.ImportAlias(name=m.Name("itertools"), asname=None)])
    return bool(m.findall(module, pattern))
