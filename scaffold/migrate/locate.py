"""Finding the training loop: which ``for`` loop calls ``backward()``, the epoch loop around it,
and a ``train()`` function called once per epoch."""

from __future__ import annotations

from dataclasses import dataclass, field

import libcst as cst

import scaffold.migrate.match as m
from scaffold.migrate import rules as R
from scaffold.migrate.findings import CannotConvert, Finding
from scaffold.migrate.memo import by_identity
from scaffold.migrate.step import (
    _manual_update,
)
from scaffold.migrate.syntax import (
    _statement_index,
    calls_of,
)
from scaffold.migrate.walk import run_visitor, walk


@dataclass
class Site:
    """Where the loop is and what it needs."""

    batch_for: cst.For
    epoch_for: cst.For | None
    scope_body: list  # the statement list holding the outer loop (module body or function body)
    train_fn: cst.FunctionDef | None = None
    train_call: cst.SimpleStatementLine | None = None
    fn_pre: list = field(default_factory=list)
    fn_post: list = field(default_factory=list)
    epoch_pre: list = field(default_factory=list)
    epoch_post: list = field(default_factory=list)


# ------------------------------------------------------------------------------------ finding
class _LoopIndex(cst.CSTVisitor):
    """One pass over a module: which ``for`` loops hold a ``.backward()`` call as their
    innermost loop, and which loops contain a ``.step()`` call anywhere inside."""

    def __init__(self) -> None:
        self.stack: list[cst.For | cst.While] = []
        self.training: list[cst.For] = []
        self.while_training: list[cst.While] = []  # flat `while` loops calling backward()
        # (loop calling backward(), the loops around it), innermost first
        self.enclosing: dict[int, tuple] = {}
        self.stepping: set[int] = set()
        self.custom_steps: dict[int, str] = {}  # loop -> a `x.first_step(...)`-like call in it
        self.custom_receivers: dict[int, set[str]] = {}  # loop -> the `x` of those calls
        self.optimizer_methods: set[str] = set()  # such `x` that are optimizers (SAM)
        self.blocks: list[tuple] = []  # (statement list, owning FunctionDef or None)
        self.functions: list[cst.FunctionDef] = []

    def visit_FunctionDef(self, node: cst.FunctionDef) -> None:
        self.functions.append(node)
        if isinstance(node.body, cst.IndentedBlock):
            self.blocks.append((node.body.body, node))

    def visit_If(self, node: cst.If) -> None:
        if isinstance(node.body, cst.IndentedBlock):
            self.blocks.append((node.body.body, None))

    def visit_Try(self, node: cst.Try) -> None:
        # `try: <training> except ...: finally: ...`: the Trainer runs inside the same `try`
        # (an exception in a step reaches the same handlers)
        if isinstance(node.body, cst.IndentedBlock):
            self.blocks.append((node.body.body, None))

    def visit_For(self, node: cst.For) -> None:
        self.stack.append(node)

    def leave_For(self, original_node: cst.For) -> None:
        self.stack.pop()

    def visit_While(self, node: cst.While) -> None:
        self.stack.append(node)

    def leave_While(self, original_node: cst.While) -> None:
        self.stack.pop()

    def visit_Call(self, node: cst.Call) -> None:
        func = node.func
        if not self.stack or not isinstance(func, cst.Attribute):
            return
        if func.attr.value == "backward":
            innermost = self.stack[-1]
            found = self.training if isinstance(innermost, cst.For) else self.while_training
            if not any(f is innermost for f in found):
                found.append(innermost)
                self.enclosing[id(innermost)] = (innermost, tuple(reversed(self.stack[:-1])))
        elif func.attr.value == "step":
            self.stepping.update(id(f) for f in self.stack)
        elif "step" in func.attr.value.split("_") and "lr" not in func.attr.value.split("_")[:1]:
            called = f"{_code(func.value)}.{func.attr.value}()"
            for f in self.stack:
                self.custom_steps.setdefault(id(f), called)
                self.custom_receivers.setdefault(id(f), set()).add(_code(func.value))


@by_identity(maxsize=8)
def _index(module: cst.Module) -> _LoopIndex:
    """Cached per module object (a full visit of a large module costs ~0.1 s)."""
    index = _LoopIndex()
    run_visitor(module, index)
    _count_optimizer_methods(module, index)
    _lift_micro_batch_loops(index)
    _lift_repeated_updates(index)
    return index


def _count_optimizer_methods(module: cst.Module, index: _LoopIndex) -> None:
    """``optimizer.first_step()`` / ``second_step()`` on an instance of a ``torch.optim.Optimizer``
    subclass (SAM): the loop steps that optimizer (manual optimization keeps the calls)."""
    from scaffold.migrate.helpers import optimizer_subclass_instance

    known: dict[str, bool] = {}
    for loop_id, receivers in index.custom_receivers.items():
        for receiver in receivers:
            if receiver not in known:
                known[receiver] = receiver.isidentifier() and bool(
                    optimizer_subclass_instance(module, receiver)
                )
            if known[receiver]:
                index.stepping.add(loop_id)
                index.optimizer_methods.add(receiver)


def _repeat_loop(loop) -> bool:
    """``for _ in range(k):``: the body runs k times; the loop iterates over no data."""
    it = loop.iter
    return (
        isinstance(loop, cst.For)
        and isinstance(loop.target, cst.Name)
        and isinstance(it, cst.Call)
        and isinstance(it.func, cst.Name)
        and it.func.value == "range"
    )


def _lift_repeated_updates(index: _LoopIndex) -> None:
    """A critic trained k times per generator step (WGAN's ``for _ in range(n_critic): ...;
    d_opt.step()`` inside a loop that also trains and steps the generator): the outer loop is
    the training loop, each of its passes one batch; the inner loop stays in its body as
    written (manual optimization keeps it, see ``step.manual_reason``). Only a ``range`` loop
    directly in the body of a ``for`` loop that calls backward() and steps itself."""
    for inner in list(index.training):
        if not _repeat_loop(inner):
            continue
        around = index.enclosing[id(inner)][1]
        if not around or not isinstance(around[0], cst.For):
            continue
        outer = around[0]
        if id(outer) not in index.stepping or not any(f is outer for f in index.training):
            continue
        if not isinstance(outer.body, cst.IndentedBlock) or not any(
            s is inner for s in outer.body.body
        ):
            continue
        index.training.remove(inner)
        del index.enclosing[id(inner)]


def _lift_micro_batch_loops(index: _LoopIndex) -> None:
    """Gradient accumulation written as an inner loop (nanoGPT's ``for micro_step in
    range(k): ...; loss.backward()`` with the step in the loop around it): the loop that steps
    is the training loop, each of its passes one optimizer step; the inner loop stays in its
    body as written (manual optimization keeps it). Only where the inner loop is the only
    loop calling backward() in a ``for`` loop that steps, directly inside it."""
    for inner in list(index.training):
        if id(inner) in index.stepping or _manual_update(inner) is not None:
            continue
        around = index.enclosing[id(inner)][1]
        if not around or not isinstance(around[0], cst.For) or id(around[0]) not in index.stepping:
            continue
        outer = around[0]
        if not isinstance(outer.body, cst.IndentedBlock) or not any(
            s is inner for s in outer.body.body
        ):
            continue
        if (
            any(f is outer for f in index.training)
            or sum(1 for f in index.training if any(o is outer for o in index.enclosing[id(f)][1]))
            != 1
        ):
            continue
        index.training[index.training.index(inner)] = outer
        del index.enclosing[id(inner)]
        index.enclosing[id(outer)] = (outer, around[1:])


def optimizers_with_own_steps(module: cst.Module) -> set[str]:
    """Optimizers (``torch.optim.Optimizer`` subclasses, SAM) the script steps through methods
    of their own (``first_step``/``second_step``)."""
    return set(_index(module).optimizer_methods)


def innermost_training_loops(module: cst.Module) -> list[cst.For]:
    """``for`` loops that call ``.backward()`` in their own body (not in a nested loop)."""
    return _index(module).training


def has_hand_written_loop(module: cst.Module) -> bool:
    index = _index(module)
    for loop in index.training:
        if id(loop) in index.stepping or _manual_update(loop, module) is not None:
            return True
    return False


def loops_stepping(module: cst.Module) -> bool:
    """Whether some loop of the module calls ``.step()``."""
    return bool(_index(module).stepping)


def flat_while_training(module: cst.Module) -> list[cst.While]:
    """``while`` loops that run backward() and an optimizer step themselves, drawing their own
    batches (``next(it)``, fresh tensors): hand-written loops this tool does not convert."""
    index = _index(module)
    return [loop for loop in index.while_training if id(loop) in index.stepping]


def micro_batch_whiles(module: cst.Module) -> list[cst.While]:
    """``while`` loops that step an optimizer around an inner ``for`` loop calling backward()
    directly in their body (nanoGPT's ``while True:`` around ``for micro_step in ...``)."""
    index = _index(module)
    found = []
    for inner in index.training:
        around = index.enclosing[id(inner)][1]
        if id(inner) in index.stepping or not around or not isinstance(around[0], cst.While):
            continue
        outer = around[0]
        if (
            id(outer) in index.stepping
            and isinstance(outer.body, cst.IndentedBlock)
            and any(s is inner for s in outer.body.body)
        ):
            found.append(outer)
    return found


def _code(node) -> str:
    return cst.Module(body=[]).code_for_node(node)


def custom_step_loops(module: cst.Module) -> list[tuple]:
    """``(loop, call)``: a loop runs backward() and updates through a method that is not
    ``step()`` (``optimizer.first_step(...)`` for SAM, ``step_and_update_lr()``), and no
    ``step()`` is called in it or around it."""
    index = _index(module)
    found = []
    for loop, outer in index.enclosing.values():
        if id(loop) in index.stepping or any(id(o) in index.stepping for o in outer):
            continue
        call = index.custom_steps.get(id(loop))
        if call is not None:
            found.append((loop, call))
    return found


def accumulation_loops(module: cst.Module) -> list[tuple]:
    """``(inner loop, enclosing loop)`` pairs: a loop runs backward() but takes no optimizer step
    itself, and a loop around it does (micro-batch gradient accumulation written as a nested
    loop). Not a loop this tool converts, but a hand-written one all the same."""
    index = _index(module)
    found = []
    for inner, outer in index.enclosing.values():
        if id(inner) in index.stepping:
            continue
        if isinstance(inner, cst.For) and _manual_update(inner, module) is not None:
            continue
        stepping = next((loop for loop in outer if id(loop) in index.stepping), None)
        if stepping is not None:
            found.append((inner, stepping))
    return found


def _bodies(module: cst.Module):
    """Every statement list of the module that can hold a loop: module, functions (and their
    ``if __name__ == "__main__":`` blocks)."""
    yield module.body
    for body, _ in _index(module).blocks:
        yield body


def locate(module: cst.Module, position) -> Site:
    """The site of the first training loop. A file with several is converted one loop at a time
    (the engine calls this again on the result) when each loop, with the epoch loop and the
    per-epoch helper that drive it, is a unit of its own: no unit holds or calls another loop."""
    loops = innermost_training_loops(module)
    if not loops:
        raise LookupError
    if len(loops) == 1:
        return site_of(module, loops[0], position)
    for loop in loops:
        if not _trains_itself(module, loop):
            where = position(loop)
            raise CannotConvert(
                Finding(
                    R.LOOP_NOT_FOUND_SHAPE,
                    "manual",
                    f"more than one loop calls backward(), and the one on line {where.line} takes "
                    "no optimizer step of its own; files whose every backward() loop is a "
                    "training loop of its own are converted",
                    where.line,
                    where.column + 1,
                )
            )
    sites = [site_of(module, loop, position) for loop in loops]
    _separate_units(module, sites, position)
    return sites[0]


def _trains_itself(module: cst.Module, loop: cst.For) -> bool:
    return id(loop) in _index(module).stepping or _manual_update(loop, module) is not None


def _unit(site: Site) -> list:
    """What one conversion takes over: the epoch loop (or the batch loop) and the helper."""
    return [site.epoch_for or site.batch_for] + ([site.train_fn] if site.train_fn else [])


def _contains(node, target) -> bool:
    return any(n is target for n in walk(node))


def _callers_of(module: cst.Module, loop: cst.For) -> set[str]:
    """Names of the functions that run ``loop``: those holding it, and those calling them."""
    functions = _index(module).functions
    names = {fn.name.value for fn in functions if _contains(fn, loop)}
    while True:
        more = {
            fn.name.value
            for fn in functions
            if fn.name.value not in names
            and any(
                m.findall(fn, m.Call(func=m.Name(n) | m.Attribute(attr=m.Name(n)))) for n in names
            )
        }
        if not more:
            return names
        names |= more


def _separate_units(module: cst.Module, sites: list, position) -> None:
    callers = [_callers_of(module, site.batch_for) for site in sites]
    for i, site in enumerate(sites):
        for j, other in enumerate(sites):
            if i == j:
                continue
            shared = any(_contains(node, other.batch_for) for node in _unit(site)) or any(
                m.findall(node, m.Call(func=m.Name(n) | m.Attribute(attr=m.Name(n))))
                for node in _unit(site)
                for n in callers[j]
            )
            if shared:
                a, b = position(site.batch_for), position(other.batch_for)
                raise CannotConvert(
                    Finding(
                        R.LOOP_NOT_FOUND_SHAPE,
                        "manual",
                        f"the training loops on lines {a.line} and {b.line} run in the same epoch "
                        "loop (or one runs the other); each would need its own Trainer, but one "
                        "Trainer's epochs cannot interleave with another's. Convert by hand "
                        "(manual optimization in one LightningModule) or give each loop an epoch "
                        "loop of its own",
                        b.line,
                        b.column + 1,
                    )
                )


def site_of(module: cst.Module, batch_for: cst.For, position) -> Site:
    """Where ``batch_for`` sits: its epoch loop, the function that holds it, the helper call."""
    for body in _bodies(module):
        i = _statement_index(body, batch_for)
        if i is not None:
            owner_fn = function_owning(module, body)
            if owner_fn is not None and owner_fn.name.value not in ("main",):
                call_site = _find_call_site(module, owner_fn.name.value)
                if call_site is not None:
                    scope_body, epoch_for, call_stmt = call_site
                    inner = epoch_for.body.body
                    k = _statement_index(inner, call_stmt)
                    return Site(
                        batch_for,
                        epoch_for,
                        scope_body,
                        owner_fn,
                        call_stmt,
                        fn_pre=list(body[:i]),
                        fn_post=list(body[i + 1 :]),
                        epoch_pre=list(inner[:k]),
                        epoch_post=list(inner[k + 1 :]),
                    )
            return Site(batch_for, None, body)
        for stmt in body:
            if isinstance(stmt, (cst.For, cst.While)) and isinstance(stmt.body, cst.IndentedBlock):
                k = _statement_index(stmt.body.body, batch_for)
                if k is not None:
                    inner = stmt.body.body
                    return Site(
                        batch_for,
                        stmt,
                        body,
                        epoch_pre=list(inner[:k]),
                        epoch_post=list(inner[k + 1 :]),
                    )
    pos = position(batch_for)
    raise CannotConvert(
        Finding(
            R.NESTED_TOO_DEEP,
            "manual",
            "the training loop is nested in a block this tool does not "
            "convert (it must sit directly in an epoch `for` loop, a function or the module)",
            pos.line,
            pos.column + 1,
        )
    )


def function_owning(module: cst.Module, body) -> cst.FunctionDef | None:
    """The ``def`` whose own statement list ``body`` is (None for blocks and the module)."""
    for block, fn in _index(module).blocks:
        if block is body:
            return fn
    return None


def _plain_target(small) -> bool:
    """``train(...)``, ``x = train(...)`` or ``loss, acc = train(...)`` (names only)."""
    if not isinstance(small, cst.Assign):
        return True
    target = small.targets[0].target
    if isinstance(target, cst.Tuple):
        return all(isinstance(e.value, cst.Name) for e in target.elements)
    return isinstance(target, cst.Name)


def _find_call_site(module: cst.Module, name: str):
    """``(statement list, epoch for, call statement)`` of the single ``name(...)`` call made as a
    statement directly in an epoch ``for`` loop."""
    hits = []
    for body in _bodies(module):
        for stmt in body:
            if isinstance(stmt, (cst.For, cst.While)) and isinstance(stmt.body, cst.IndentedBlock):
                for inner in stmt.body.body:
                    if m.matches(
                        inner,
                        m.SimpleStatementLine(
                            body=[
                                m.Expr(value=m.Call(func=m.Name(name)))
                                | m.Assign(
                                    targets=[m.AssignTarget()],
                                    value=m.Call(func=m.Name(name)),
                                )
                            ]
                        ),
                    ) and _plain_target(inner.body[0]):
                        hits.append((body, stmt, inner))
    if len(hits) == 1 and calls_of(module, name) == 1:
        return hits[0]
    return None


def around_block(module: cst.Module, body) -> tuple[list, list]:
    """(what ran before, what may run after) the statement list ``body`` of an ``if``/``try``/
    loop block, up to the function or module holding it: the statements ahead of the block in
    each enclosing list; a ``try``'s handlers, ``else`` and ``finally``, then the statements
    behind it. ``([], [])`` when ``body`` is no such block's."""

    def walk(stmts, before: list, after: list) -> tuple[list, list] | None:
        for i, st in enumerate(stmts):
            if not isinstance(st, cst.Try | cst.If | cst.For | cst.While | cst.With):
                continue  # a function's or class's own statements end with it
            ahead, behind = [*before, *stmts[:i]], [*stmts[i + 1 :], *after]
            if isinstance(st, cst.Try):
                behind = [*st.handlers, *(x for x in (st.orelse, st.finalbody) if x), *behind]
            inner = getattr(st.body, "body", None)
            if inner is body:
                return ahead, behind
            if isinstance(inner, (list, tuple)) and (found := walk(inner, ahead, behind)):
                return found
        return None

    bodies = [module.body] + [
        fn.body.body for fn in _index(module).functions if isinstance(fn.body, cst.IndentedBlock)
    ]
    for stmts in bodies:
        found = walk(stmts, [], [])
        if found:
            return found
    return [], []


@by_identity(maxsize=8)
def loop_bodies(module: cst.Module) -> tuple:
    """The statement lists of the module's ``for``/``while`` loops (a call made once per
    epoch sits in one)."""
    return tuple(
        node.body.body
        for node in walk(module)
        if isinstance(node, (cst.For, cst.While)) and isinstance(node.body, cst.IndentedBlock)
    )


def statement_calls(module: cst.Module, name: str) -> list[tuple] | None:
    """``(statement list, statement, call, enclosing function or None)`` for every
    ``name(...)`` call of the module, each in a simple statement line of its own; None when a
    call sits elsewhere (a loop header, an ``if`` test) or there is none."""
    return statement_calls_matching(module, m.Call(func=m.Name(name)), calls_of(module, name))


def statement_calls_matching(module: cst.Module, plain, count: int) -> list[tuple] | None:
    """``statement_calls`` for the calls ``plain`` (a matcher) matches, of which the module
    makes ``count`` in all."""
    if not count:
        return None
    found = []
    functions = _index(module).functions
    for body in (*_bodies(module), *loop_bodies(module)):
        for stmt in body:
            if not isinstance(stmt, cst.SimpleStatementLine):
                continue
            for call in m.findall(stmt, plain):
                enclosing = [fn for fn in functions if _contains(fn, stmt)]
                # the innermost def holding the statement (nested defs come after their parent)
                found.append((body, stmt, call, enclosing[-1] if enclosing else None))
    return found if len(found) == count else None
