"""Opens a progress-bar ``with`` block around a training batch loop.

Scripts that size their bar by samples rather than batches write the batch loop inside the bar's
context manager (Pytorch-UNet, many segmentation and detection repositories)::

    for epoch in range(epochs):
        with tqdm(total=n_train, desc=f"Epoch {epoch}") as pbar:
            for images, masks in train_loader:
                ...
                loss.backward()
                optimizer.step()
                pbar.update(images.shape[0])

The loop converter sees a batch loop directly in the epoch loop's body only. This pass writes
the block out as the statements the ``with`` runs::

    pbar = tqdm(total=n_train, desc=f"Epoch {epoch}")
    for images, masks in train_loader:
        ...
    pbar.close()

which is what ``tqdm.__exit__`` does on the normal path (it closes the bar). The bar draws no
random numbers and touches no tensor, so nothing the script computes changes. The pass applies
only where the bar is a tqdm bar (as the name resolves, however imported), the ``with`` holds that
one item, and its body holds a loop calling ``backward()`` and cannot leave the block early
(``break``/``continue`` of an enclosing loop, ``return``, ``yield``): on such a path the bar
would not be closed.
"""

from __future__ import annotations

from dataclasses import dataclass

import libcst as cst

import scaffold.migrate.match as m
from scaffold.migrate import names
from scaffold.migrate.syntax import _fresh, _used, variable_nodes
from scaffold.migrate.walk import run_visitor

BACKWARD = m.Call(func=m.Attribute(attr=m.Name("backward")))
# `trange(n)` is `tqdm(range(n))`, from the same modules
BARS = names.PROGRESS_BARS | {q[: -len("tqdm")] + "trange" for q in names.PROGRESS_BARS}


@dataclass(frozen=True)
class Opened:
    module: cst.Module
    bars: tuple[str, ...]  # the bars' variable names, in the order their blocks were opened


class _Escapes(cst.CSTVisitor):
    """Whether a block can leave itself other than by falling through: a ``break``/``continue``
    not owned by a loop inside it, a ``return``, a ``yield`` (not inside a nested function)."""

    def __init__(self) -> None:
        self.found = False
        self._loops = 0

    def visit_For(self, node) -> None:
        self._loops += 1

    def leave_For(self, node) -> None:
        self._loops -= 1

    visit_While = visit_For
    leave_While = leave_For

    def visit_FunctionDef(self, node) -> bool:
        return False

    visit_ClassDef = visit_FunctionDef
    visit_Lambda = visit_FunctionDef

    def visit_Break(self, node) -> None:
        self.found |= self._loops == 0

    visit_Continue = visit_Break

    def visit_Return(self, node) -> None:
        self.found = True

    visit_Yield = visit_Return


def _escapes(block: cst.BaseSuite) -> bool:
    visitor = _Escapes()
    run_visitor(block, visitor)
    return visitor.found


def _bar(node: cst.With) -> cst.Call | None:
    if node.asynchronous is not None or len(node.items) != 1:
        return None
    item = node.items[0]
    call = item.item
    if not isinstance(call, cst.Call) or names.qualified(call) not in BARS:
        return None
    if item.asname is not None and not isinstance(item.asname.name, cst.Name):
        return None
    return call


# what a script may do with the bar without reading its state: the bar only draws
_DISPLAY = frozenset(
    {
        "update",
        "set_postfix",
        "set_postfix_str",
        "set_description",
        "set_description_str",
        "write",
        "refresh",
        "clear",
        "close",
    }
)


def _display_only(block: cst.BaseSuite, bar: str) -> bool:
    """Whether ``block`` uses ``bar`` only as ``bar.<display method>(...)``: never iterates it
    (the Trainer iterates the loader, so the bar would count nothing), reads its counters
    (``bar.n``) or hands it on."""
    allowed = {
        id(c.func.value)
        for c in m.findall(block, m.Call(func=m.Attribute(value=m.Name(bar))))
        if c.func.attr.value in _DISPLAY
    }
    return all(id(n) in allowed for n in variable_nodes([block]) if n.value == bar)


def _trains(block: cst.BaseSuite) -> bool:
    return any(m.findall(loop, BACKWARD) for loop in m.findall(block, m.For() | m.While()))


class _Open(cst.CSTTransformer):
    def __init__(self, taken: set[str]) -> None:
        self.taken = taken
        self.bars: list[str] = []

    def leave_With(self, original: cst.With, updated: cst.With):
        call = _bar(original)
        if call is None or not isinstance(updated.body, cst.IndentedBlock):
            return updated
        item = updated.items[0]
        if not _trains(updated.body) or _escapes(updated.body):
            return updated
        if item.asname is not None and not _display_only(updated.body, item.asname.name.value):
            return updated
        if item.asname is not None:
            name = item.asname.name.value
        else:
            name = _fresh("pbar", self.taken)
            self.taken.add(name)
        self.bars.append(name)
        opened = cst.SimpleStatementLine(
            body=[cst.Assign(targets=[cst.AssignTarget(cst.Name(name))], value=item.item)],
            leading_lines=updated.leading_lines,
        )
        closed = cst.SimpleStatementLine(
            body=[
                cst.Expr(cst.Call(func=cst.Attribute(value=cst.Name(name), attr=cst.Name("close"))))
            ]
        )
        inner = list(updated.body.body)
        if updated.body.header.comment is not None:
            # `with tqdm(...) as pbar:  # note` -> the note rides on the assignment
            opened = opened.with_changes(
                trailing_whitespace=cst.TrailingWhitespace(
                    whitespace=cst.SimpleWhitespace("  "), comment=updated.body.header.comment
                )
            )
        footer = list(updated.body.footer)
        if footer:
            closed = closed.with_changes(leading_lines=footer)
        return cst.FlattenSentinel([opened, *inner, closed])


def open_progress_blocks(module: cst.Module) -> Opened | None:
    """``module`` with each tqdm ``with`` block around a training loop written out (see the
    module docstring); None when there is none."""
    if "backward" not in module.code:
        return None
    if not names.resolving():
        from libcst.metadata import MetadataWrapper

        with names.using(MetadataWrapper(module, unsafe_skip_copy=True)):
            return open_progress_blocks(module)
    opener = _Open(set(_used([module])))
    new = module.visit(opener)
    if not opener.bars:
        return None
    return Opened(new, tuple(opener.bars))
