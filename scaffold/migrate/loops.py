"""Converts a hand-written training loop into a LightningModule + ``Trainer.fit``.

Supported shapes (the dominant ones in real scripts):

* nested loops: ``for epoch in range(...):`` holding ``for ... in loader:`` with the
  zero_grad/backward/step sequence, at module level or in a function such as ``main()``;
* a ``train(...)`` function holding the batch loop, called once per epoch from such an epoch
  loop (the function is inlined into the LightningModule and removed);
* a single batch loop with no epoch loop (one epoch).

Behaviour is preserved by construction: the LightningModule is defined where the loop was, so
its methods read the same variables (closures or globals); the optimizer and scheduler objects
the script built are handed to ``configure_optimizers`` unchanged (same construction order, same
random numbers); statements of the epoch loop run in ``on_train_epoch_start`` /
``on_train_epoch_end`` in their original order; variables carried across batches become
attributes of the module. Anything else is left alone and explained (``CannotConvert``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import libcst as cst
from libcst.metadata import MetadataWrapper, PositionProvider

import scaffold.migrate.match as m
from scaffold.migrate.findings import FIXED, CannotConvert, Finding

OPTIMIZER_CLASSES = {
    "SGD", "Adam", "AdamW", "Adadelta", "Adagrad", "Adamax", "ASGD", "LBFGS", "NAdam",
    "RAdam", "RMSprop", "Rprop", "SparseAdam", "Adafactor",
}  # fmt: skip
LIGHTNING_ATTRS = {
    "device", "dtype", "trainer", "hparams", "logger", "loggers", "global_step",
    "current_epoch", "training", "model", "optimizer", "scheduler", "example_input_array",
    "automatic_optimization", "fabric", "log", "print", "forward",
}  # fmt: skip


def code_of(node: cst.CSTNode) -> str:
    return cst.Module(body=[]).code_for_node(node)


def _method_call(stmt: cst.CSTNode, method: str) -> cst.Call | None:
    """``<expr>.method(...)`` when ``stmt`` is exactly that expression statement."""
    if not m.matches(
        stmt,
        m.SimpleStatementLine(body=[m.Expr(value=m.Call(func=m.Attribute(attr=m.Name(method))))]),
    ):
        return None
    return stmt.body[0].value  # type: ignore[attr-defined,return-value]


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
        self.stack: list[cst.For] = []
        self.training: list[cst.For] = []
        self.stepping: set[int] = set()
        self.blocks: list[tuple] = []  # (statement list, owning FunctionDef or None)
        self.functions: list[cst.FunctionDef] = []

    def visit_FunctionDef(self, node: cst.FunctionDef) -> None:
        self.functions.append(node)
        if isinstance(node.body, cst.IndentedBlock):
            self.blocks.append((node.body.body, node))

    def visit_If(self, node: cst.If) -> None:
        if isinstance(node.body, cst.IndentedBlock):
            self.blocks.append((node.body.body, None))

    def visit_For(self, node: cst.For) -> None:
        self.stack.append(node)

    def leave_For(self, original_node: cst.For) -> None:
        self.stack.pop()

    def visit_Call(self, node: cst.Call) -> None:
        func = node.func
        if not self.stack or not isinstance(func, cst.Attribute):
            return
        if func.attr.value == "backward":
            if not any(f is self.stack[-1] for f in self.training):
                self.training.append(self.stack[-1])
        elif func.attr.value == "step":
            self.stepping.update(id(f) for f in self.stack)


_INDEX_CACHE: dict[int, tuple[cst.Module, _LoopIndex]] = {}


def _index(module: cst.Module) -> _LoopIndex:
    """Cached per module object (a full visit of a large module costs ~0.1 s)."""
    hit = _INDEX_CACHE.get(id(module))
    if hit is not None and hit[0] is module:
        return hit[1]
    index = _LoopIndex()
    module.visit(index)
    if len(_INDEX_CACHE) > 8:
        _INDEX_CACHE.clear()
    _INDEX_CACHE[id(module)] = (module, index)
    return index


def innermost_training_loops(module: cst.Module) -> list[cst.For]:
    """``for`` loops that call ``.backward()`` in their own body (not in a nested loop)."""
    return _index(module).training


def has_hand_written_loop(module: cst.Module) -> bool:
    index = _index(module)
    for loop in index.training:
        if id(loop) in index.stepping or _manual_update(loop) is not None:
            return True
    return False


def _statement_index(body, node) -> int | None:
    for i, stmt in enumerate(body):
        if stmt is node:
            return i
    return None


def _bodies(module: cst.Module):
    """Every statement list of the module that can hold a loop: module, functions (and their
    ``if __name__ == "__main__":`` blocks)."""
    yield module.body
    for body, _ in _index(module).blocks:
        yield body


def locate(module: cst.Module, position) -> Site:
    loops = innermost_training_loops(module)
    if not loops:
        raise LookupError
    if len(loops) > 1:
        first = position(loops[1])
        raise CannotConvert(
            Finding(
                "SCF301",
                "manual",
                "more than one training loop (backward in several loops); "
                "only scripts with one training loop are converted",
                first.line,
                first.column + 1,
            )
        )
    batch_for = loops[0]
    for body in _bodies(module):
        i = _statement_index(body, batch_for)
        if i is not None:
            owner_fn = _owning_function(module, body)
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
            "SCF302",
            "manual",
            "the training loop is nested in a block this tool does not "
            "convert (it must sit directly in an epoch `for` loop, a function or the module)",
            pos.line,
            pos.column + 1,
        )
    )


def _owning_function(module: cst.Module, body) -> cst.FunctionDef | None:
    for block, fn in _index(module).blocks:
        if block is body:
            return fn
    return None


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
                                    targets=[m.AssignTarget(target=m.Name())],
                                    value=m.Call(func=m.Name(name)),
                                )
                            ]
                        ),
                    ):
                        hits.append((body, stmt, inner))
    all_calls = m.findall(module, m.Call(func=m.Name(name)))
    if len(hits) == 1 and len(all_calls) == 1:
        return hits[0]
    return None


# ---------------------------------------------------------------------------- batch-loop body
@dataclass
class StepPlan:
    body: list  # statements of training_step after removals
    loss: cst.BaseExpression
    optimizers: list[str]
    step_schedulers: list[str]
    clip: tuple[str, str] | None  # (value expression, "norm" | "value")
    breaks: bool
    findings: list[Finding]
    trailing_comments: list  # comments of removed statements after the last kept one
    amp: dict | None = None  # {"precision": code} when autocast/GradScaler were used
    accumulate: str | None = None  # accumulate_grad_batches, as code
    manual: bool = False  # several optimizers/backward passes: manual optimization


def _name_of(expr) -> str | None:
    return expr.value if isinstance(expr, cst.Name) else None


def _receiver(call: cst.Call) -> cst.BaseExpression:
    return call.func.value  # type: ignore[attr-defined]


def _is_batch_transfer(stmt, batch_names: set[str]) -> bool:
    """``x = x.to(device)`` / ``x, y = x.to(d), y.to(d)`` / ``x = x.cuda()`` on batch names."""
    if not isinstance(stmt, cst.SimpleStatementLine) or len(stmt.body) != 1:
        return False
    assign = stmt.body[0]
    if not isinstance(assign, cst.Assign) or len(assign.targets) != 1:
        return False
    target, value = assign.targets[0].target, assign.value
    targets = target.elements if isinstance(target, cst.Tuple) else [target]
    values = value.elements if isinstance(value, cst.Tuple) else [value]
    if len(targets) != len(values):
        return False
    for t, v in zip(targets, values, strict=True):
        t = getattr(t, "value", t)
        v = getattr(v, "value", v)
        if not (isinstance(t, cst.Name) and t.value in batch_names):
            return False
        if not m.matches(
            v, m.Call(func=m.Attribute(value=m.Name(t.value), attr=m.Name("to") | m.Name("cuda")))
        ):
            return False
    return True


def _target_names(node) -> set[str]:
    return {n.value for n in m.findall(node, m.Name())}


def _clip_call(stmt):
    if not isinstance(stmt, cst.SimpleStatementLine) or len(stmt.body) != 1:
        return None
    expr = stmt.body[0]
    if not isinstance(expr, cst.Expr) or not isinstance(expr.value, cst.Call):
        return None
    func = code_of(expr.value.func)
    for name, algo in (("clip_grad_norm_", "norm"), ("clip_grad_value_", "value")):
        if func.endswith(name):
            return expr.value, algo
    return None


def comments_of(node) -> list[cst.EmptyLine]:
    """The own-line and trailing comments a removed statement carries, as comment lines."""
    lines = [ln for ln in getattr(node, "leading_lines", ()) if ln.comment is not None]
    trailing = getattr(node, "trailing_whitespace", None)
    if trailing is not None and trailing.comment is not None:
        lines.append(cst.EmptyLine(comment=trailing.comment))
    return lines


def with_comments(node, lines: list[cst.EmptyLine]):
    if not lines:
        return node
    return node.with_changes(leading_lines=[*lines, *node.leading_lines])


AUTOCAST = re.compile(r"^(torch\.)?(cuda\.|cpu\.)?(amp\.)?autocast$")


def _autocast_item(node) -> cst.Call | None:
    if not isinstance(node, cst.With) or len(node.items) != 1:
        return None
    call = node.items[0].item
    if isinstance(call, cst.Call) and AUTOCAST.match(code_of(call.func)):
        return call
    return None


def _kwarg(call: cst.Call, name: str, index: int | None = None):
    for i, a in enumerate(call.args):
        if a.keyword is not None and a.keyword.value == name:
            return a.value
        if a.keyword is None and index is not None and i == index:
            return a.value
    return None


def _flatten_amp(stmts: list, position, loop) -> tuple[list, dict | None, list[Finding]]:
    """Unwraps ``with autocast(...)`` and turns GradScaler calls into plain ones; the precision
    they meant goes to the Trainer."""
    out: list = []
    amp: dict | None = None
    findings: list[Finding] = []
    scaler: str | None = None
    carry: list[cst.EmptyLine] = []

    def where(node):
        try:
            pos = position(node)
            return pos.line, pos.column + 1
        except KeyError:
            pos = position(loop)
            return pos.line, pos.column + 1

    for node in stmts:
        call = _autocast_item(node)
        if call is not None:
            dtype = _kwarg(
                call,
                "dtype",
                1
                if code_of(call.func).endswith("torch.autocast") or code_of(call.func) == "autocast"
                else None,
            )
            enabled = _kwarg(call, "enabled")
            amp = {
                "dtype": code_of(dtype) if dtype is not None else None,
                "enabled": code_of(enabled) if enabled is not None else None,
                "device": code_of(_kwarg(call, "device_type", 0))
                if _kwarg(call, "device_type", 0) is not None and "cuda." not in code_of(call.func)
                else None,
                "cuda_api": "cuda." in code_of(call.func),
            }
            inner = list(node.body.body)
            lead = comments_of(node) + (
                [cst.EmptyLine(comment=node.body.header.comment)]
                if node.body.header.comment
                else []
            )
            if inner:
                inner[0] = with_comments(inner[0], carry + lead)
                carry = []
            out += inner
            findings.append(
                Finding(
                    "SCF008",
                    FIXED,
                    "autocast block unwrapped: the Trainer's precision applies it",
                    *where(node),
                )
            )
            continue
        backward = _method_call(node, "backward")
        if backward is not None and m.matches(
            _receiver(backward), m.Call(func=m.Attribute(attr=m.Name("scale")))
        ):
            inner_call = _receiver(backward)
            scaler = code_of(inner_call.func.value)
            new = node.with_changes(
                body=[
                    cst.Expr(
                        cst.Call(func=cst.Attribute(inner_call.args[0].value, cst.Name("backward")))
                    )
                ]
            )
            out.append(with_comments(new, carry))
            carry = []
            continue
        for method in ("update", "unscale_", "step"):
            call = _method_call(node, method)
            if call is not None and scaler is not None and code_of(_receiver(call)) == scaler:
                if method == "step" and call.args:
                    opt = call.args[0].value
                    new = node.with_changes(
                        body=[cst.Expr(cst.Call(func=cst.Attribute(opt, cst.Name("step"))))]
                    )
                    out.append(with_comments(new, carry))
                    carry = []
                else:
                    carry += comments_of(node)
                    findings.append(
                        Finding(
                            "SCF008",
                            FIXED,
                            f"`{scaler}.{method}()` removed: the Trainer's precision plugin scales the loss",
                            *where(node),
                        )
                    )
                break
        else:
            out.append(with_comments(node, carry) if carry else node)
            carry = []
    if carry:
        out.append(cst.SimpleStatementLine(body=[cst.Pass()], leading_lines=carry))
    if scaler is not None and amp is None:
        amp = {"dtype": None, "enabled": None, "device": None, "cuda_api": True}
    if amp is not None:
        amp["scaler"] = scaler
    return out, amp, findings


def amp_precision(amp: dict) -> str | None:
    """The Trainer precision for what autocast/GradScaler did, as code (None = cannot tell)."""
    dtype = amp.get("dtype") or ""
    if "bfloat16" in dtype:
        mixed = '"bf16-mixed"'
    elif "float16" in dtype or "half" in dtype or amp.get("scaler") or amp.get("cuda_api"):
        mixed = '"16-mixed"'
    elif amp.get("device") in ('"cpu"', "'cpu'"):
        mixed = '"bf16-mixed"'
    else:
        return None
    enabled = amp.get("enabled")
    if enabled is None or enabled == "True":
        return mixed
    return f'{mixed} if {enabled} else "32-true"'


def _accumulation_k(test, loop) -> str | None:
    """K when ``test`` is ``(i + 1) % K == 0`` (enumerate from 0) or ``i % K == 0`` (from 1)."""
    _, enumerated, start = _unwrap_loader(loop.iter)
    if not enumerated or not isinstance(loop.target, cst.Tuple):
        return None
    index = code_of(loop.target.elements[0].value)
    text = code_of(test).replace(" ", "")
    found = re.fullmatch(rf"\({re.escape(index)}\+1\)%(.+)==0", text)
    if found and start in (None, "0"):
        return found.group(1)
    found = re.fullmatch(rf"{re.escape(index)}%(.+)==0", text)
    if found and start == "1":
        return found.group(1)
    return None


def _flatten_accumulation(stmts: list, loop) -> tuple[list, str | None]:
    """``if (i + 1) % K == 0: optimizer.step(); optimizer.zero_grad()`` -> the statements
    themselves, and K for ``accumulate_grad_batches``."""
    out, k = [], None
    for node in stmts:
        if (
            isinstance(node, cst.If)
            and node.orelse is None
            and isinstance(node.body, cst.IndentedBlock)
        ):
            inner = list(node.body.body)
            steps = [
                x
                for x in inner
                if _method_call(x, "step") or _method_call(x, "zero_grad") or _clip_call(x)
            ]
            candidate = _accumulation_k(node.test, loop)
            if (
                candidate is not None
                and steps
                and len(steps) == len(inner)
                or (
                    candidate is not None
                    and all(
                        _method_call(x, "step") or _method_call(x, "zero_grad") or _clip_call(x)
                        for x in inner
                    )
                )
            ):
                k = candidate
                inner[0] = with_comments(inner[0], comments_of(node))
                out += inner
                continue
        out.append(node)
    return out, k


def _undo_loss_division(body: list, loss, k: str, position, loop):
    """Finds ``loss = expr / K``; keeps it for the script and returns the undivided ``expr``."""
    if (
        isinstance(loss, cst.BinaryOperation)
        and isinstance(loss.operator, cst.Divide)
        and code_of(loss.right) == k
    ):
        return body, loss.left
    name = _name_of(loss)
    for i, node in enumerate(body):
        if not isinstance(node, cst.SimpleStatementLine) or len(node.body) != 1:
            continue
        small = node.body[0]
        if (
            isinstance(small, cst.Assign)
            and len(small.targets) == 1
            and _name_of(small.targets[0].target) == name
            and isinstance(small.value, cst.BinaryOperation)
            and isinstance(small.value.operator, cst.Divide)
            and code_of(small.value.right) == k
        ):
            undivided = cst.Assign(
                targets=[cst.AssignTarget(cst.Name("step_loss"))], value=small.value.left
            )
            divided = small.with_changes(value=small.value.with_changes(left=cst.Name("step_loss")))
            new = [
                node.with_changes(body=[undivided], trailing_whitespace=cst.TrailingWhitespace()),
                cst.SimpleStatementLine(
                    body=[divided], trailing_whitespace=node.trailing_whitespace
                ),
            ]
            return [*body[:i], *new, *body[i + 1 :]], cst.Name("step_loss")
    pos = position(loop)
    raise CannotConvert(
        Finding(
            "SCF325",
            "manual",
            f"gradient accumulation over {k} batches without "
            f"dividing the loss by {k}: Lightning averages, the script sums; not converted",
            pos.line,
            pos.column + 1,
        )
    )


def _plan_manual(stmts, loop, position, amp, accumulate, findings) -> StepPlan:
    """Several optimizers or backward passes per batch (GANs): manual optimization. The
    zero_grad/step calls stay where they are, on the Trainer's optimizer wrappers;
    ``backward()`` becomes ``self.manual_backward()``."""
    pos = position(loop)
    where = (pos.line, pos.column + 1)
    if amp is not None or accumulate is not None:
        raise CannotConvert(
            Finding(
                "SCF303",
                "manual",
                "several optimizers together with mixed "
                "precision or accumulation are not converted",
                *where,
            )
        )
    body, optimizers = [], []
    for node in stmts:
        step = _method_call(node, "step")
        if step is not None and not step.args:
            owner = _name_of(_receiver(step))
            if owner is None:
                raise CannotConvert(
                    Finding("SCF307", "manual", "the optimizer must be a plain variable", *where)
                )
            if owner not in optimizers:
                optimizers.append(owner)
        backward = _method_call(node, "backward")
        if backward is not None:
            if backward.args:
                raise CannotConvert(
                    Finding(
                        "SCF304", "manual", "backward() with arguments is not converted", *where
                    )
                )
            call = cst.Call(
                func=cst.Attribute(cst.Name("self"), cst.Name("manual_backward")),
                args=[cst.Arg(_receiver(backward))],
            )
            node = node.with_changes(body=[cst.Expr(call)])
        if _clip_call(node) is not None:
            raise CannotConvert(
                Finding(
                    "SCF308",
                    "manual",
                    "gradient clipping with several optimizers is not converted",
                    *where,
                )
            )
        body.append(node)
    findings.append(
        Finding(
            "SCF011",
            FIXED,
            f"{len(optimizers)} optimizers: manual optimization "
            "(automatic_optimization = False, self.optimizers(), self.manual_backward)",
            *where,
        )
    )
    breaks = bool(m.findall(cst.Module(body=body), m.Break()))
    return StepPlan(
        body, cst.Name("None"), optimizers, [], None, breaks, findings, [], None, None, True
    )


def _manual_update(loop) -> tuple | None:
    """A hand-written update in the batch loop: ``with torch.no_grad():`` or ``for p in
    X.parameters():`` that reads ``.grad``. Returns (statement, parameters code)."""
    for node in loop.body.body:
        target = node
        if isinstance(node, cst.With) and "no_grad" in code_of(node.items[0].item):
            inner = [x for x in node.body.body if isinstance(x, cst.For)]
            target = inner[0] if len(inner) == 1 else node
        if not m.findall(node, m.Attribute(attr=m.Name("grad"))):
            continue
        if isinstance(target, cst.For) and m.matches(
            target.iter, m.Call(func=m.Attribute(attr=m.Name("parameters")))
        ):
            return node, code_of(target.iter)
    return None


def _manual_update_optimizer(node, cls_name: str, var: str, params_code: str) -> list:
    """``class ManualUpdate(torch.optim.Optimizer)`` whose step runs the script's update code."""
    cls = cst.parse_statement(
        f"class {cls_name}(torch.optim.Optimizer):\n"
        '    """The script\'s own parameter update, run as an optimizer step by the Trainer."""\n'
        "\n"
        "    def __init__(self, params):\n"
        "        super().__init__(params, {})\n"
        "\n"
        "    def step(self, closure=None):\n"
        "        loss = closure() if closure is not None else None\n"
        "        pass\n"
        "        return loss\n"
    )
    step_fn = cls.body.body[2]
    body = list(step_fn.body.body)
    body[1] = node.with_changes(leading_lines=[])
    step_fn = step_fn.with_changes(body=step_fn.body.with_changes(body=body))
    cls = cls.with_changes(body=cls.body.with_changes(body=[*cls.body.body[:2], step_fn]))
    instance = cst.parse_statement(f"{var} = {cls_name}({params_code})\n")
    return [cls, instance.with_changes(leading_lines=[cst.EmptyLine(indent=False)] * 2)]


def _flatten_closure(stmts: list, loop, position) -> list:
    """``def closure(): ...; optimizer.step(closure)`` (LBFGS and friends) -> the closure's body
    as the step: Lightning builds the closure around training_step and may call it repeatedly,
    as the optimizer did with the script's closure."""
    defs = {x.name.value: i for i, x in enumerate(stmts) if isinstance(x, cst.FunctionDef)}
    for i, node in enumerate(stmts):
        call = _method_call(node, "step")
        if call is None or len(call.args) != 1 or not isinstance(call.args[0].value, cst.Name):
            continue
        name = call.args[0].value.value
        pos = position(loop)
        where = (pos.line, pos.column + 1)
        if name not in defs or defs[name] > i or stmts[i + 1 :]:
            raise CannotConvert(
                Finding(
                    "SCF305",
                    "manual",
                    "`step(closure)` with code after the "
                    "step or a closure defined elsewhere is not converted",
                    *where,
                )
            )
        fn = stmts[defs[name]]
        before = stmts[: defs[name]] + stmts[defs[name] + 1 : i]
        if any(
            m.findall(x, m.Call()) and not _method_call(x, "to")
            for x in before
            if not _is_batch_transfer(x, _target_names(loop.target))
        ):
            raise CannotConvert(
                Finding(
                    "SCF305",
                    "manual",
                    "`step(closure)`: statements outside the "
                    "closure would run once per closure call; not converted",
                    *where,
                )
            )
        body = list(fn.body.body)
        if not body or not m.matches(
            body[-1], m.SimpleStatementLine(body=[m.Return(value=m.Name())])
        ):
            raise CannotConvert(
                Finding("SCF305", "manual", "the closure must end with `return <loss>`", *where)
            )
        body = body[:-1]
        if not any(_method_call(x, "backward") for x in body):
            raise CannotConvert(
                Finding("SCF305", "manual", "the closure must call backward()", *where)
            )
        step = node.with_changes(body=[cst.Expr(cst.Call(func=call.func))])
        lead = with_comments(body[0], comments_of(fn)) if body else None
        if lead is not None:
            body[0] = lead
        # the closure returns ``loss``: make sure backward() sees that name
        return [*before, *body, step]
    return stmts


def plan_step(site: Site, position, model_names: set[str]) -> StepPlan:
    loop = site.batch_for
    batch_names = _target_names(loop.target)
    body: list = []
    optimizers: list[str] = []
    schedulers: list[str] = []
    loss = None
    clip = None
    findings: list[Finding] = []
    stepped = False
    pending: list[cst.EmptyLine] = []
    stmts, amp, amp_findings = _flatten_amp(list(loop.body.body), position, loop)
    findings += amp_findings
    stmts, accumulate = _flatten_accumulation(stmts, loop)
    stmts = _flatten_closure(stmts, loop, position)
    backwards = [x for x in stmts if _method_call(x, "backward")]
    owners = {
        _name_of(_receiver(c)) for x in stmts if (c := _method_call(x, "step")) and not c.args
    }
    if len(backwards) > 1 and len(owners) > 1:
        return _plan_manual(stmts, loop, position, amp, accumulate, findings)
    for stmt in stmts:
        pos = position(stmt)
        here = (pos.line, pos.column + 1)
        zero = _method_call(stmt, "zero_grad")
        backward = _method_call(stmt, "backward")
        step = _method_call(stmt, "step")
        clipped = _clip_call(stmt)
        if (
            zero is not None
            or backward is not None
            or step is not None
            or clipped is not None
            or _is_batch_transfer(stmt, batch_names)
        ):
            pending += comments_of(stmt)
        if zero is not None:
            findings.append(
                Finding(
                    "SCF002",
                    FIXED,
                    f"`{code_of(zero)}` removed: the Trainer zeroes gradients",
                    *here,
                )
            )
            continue
        if backward is not None:
            if loss is not None:
                raise CannotConvert(
                    Finding(
                        "SCF303",
                        "manual",
                        "several backward() calls per batch "
                        "(e.g. a GAN) need manual optimization; not converted yet",
                        *here,
                    )
                )
            if backward.args:
                raise CannotConvert(
                    Finding("SCF304", "manual", "backward() with arguments is not converted", *here)
                )
            loss = _receiver(backward)
            if not isinstance(loss, cst.Name) or loss.value in _assigned(
                stmts[stmts.index(stmt) + 1 :]
            ):
                # keep the value the loss had at backward() time
                assign = cst.Assign(targets=[cst.AssignTarget(cst.Name("step_loss"))], value=loss)
                body.append(with_comments(cst.SimpleStatementLine(body=[assign]), pending))
                pending = []
                loss = cst.Name("step_loss")
            findings.append(
                Finding(
                    "SCF002", FIXED, "`backward()` removed: training_step returns the loss", *here
                )
            )
            continue
        if step is not None:
            owner = _name_of(_receiver(step))
            if step.args:
                raise CannotConvert(
                    Finding(
                        "SCF305", "manual", "`step(closure)` (LBFGS) is not converted yet", *here
                    )
                )
            if stepped or loss is None:
                if owner is not None and stepped:
                    schedulers.append(owner)
                    findings.append(
                        Finding(
                            "SCF005",
                            FIXED,
                            f"per-batch `{owner}.step()` moved to configure_optimizers (interval='step')",
                            *here,
                        )
                    )
                    continue
                raise CannotConvert(
                    Finding("SCF306", "manual", "optimizer step before backward()", *here)
                )
            if owner is None:
                raise CannotConvert(
                    Finding("SCF307", "manual", "the optimizer must be a plain variable", *here)
                )
            optimizers.append(owner)
            stepped = True
            findings.append(
                Finding(
                    "SCF002",
                    FIXED,
                    f"`{owner}.step()` removed: the Trainer steps the optimizer",
                    *here,
                )
            )
            continue
        if clipped is not None:
            call, algo = clipped
            args = call.args
            params = code_of(args[0].value) if args else ""
            if (
                params not in {f"{n}.parameters()" for n in model_names}
                or len(args) < 2
                or (len(args) > 2 and code_of(args[2].value) not in ("2", "2.0"))
            ):
                raise CannotConvert(
                    Finding(
                        "SCF308",
                        "manual",
                        "gradient clipping of something other than "
                        "all the model's parameters (2-norm) is not converted",
                        *here,
                    )
                )
            clip = (code_of(args[1].value), algo)
            findings.append(
                Finding(
                    "SCF004",
                    FIXED,
                    f"`{code_of(call.func)}` mapped to Trainer(gradient_clip_algorithm={algo!r})",
                    *here,
                )
            )
            continue
        if _is_batch_transfer(stmt, batch_names):
            findings.append(
                Finding(
                    "SCF003",
                    FIXED,
                    "batch transfer removed: the Trainer moves batches to the device",
                    *here,
                )
            )
            continue
        body.append(with_comments(stmt, pending))
        pending = []
    if loss is None or not optimizers:
        pos = position(loop)
        raise CannotConvert(
            Finding(
                "SCF309",
                "manual",
                "backward() and optimizer.step() must be "
                "statements of the batch loop itself (not inside if/with blocks)",
                pos.line,
                pos.column + 1,
            )
        )
    if len(set(optimizers)) > 1:
        pos = position(loop)
        raise CannotConvert(
            Finding(
                "SCF303",
                "manual",
                "several optimizers step per batch; manual optimization is not converted yet",
                pos.line,
                pos.column + 1,
            )
        )
    breaks = bool(m.findall(cst.Module(body=body), m.Break()))
    for bad, code in (
        (m.Continue(), "`continue`"),
        (m.Return(), "`return`"),
        (m.Yield(), "`yield`"),
    ):
        if m.findall(cst.Module(body=body), bad):
            pos = position(loop)
            raise CannotConvert(
                Finding(
                    "SCF310",
                    "manual",
                    f"{code} inside the batch loop is not converted",
                    pos.line,
                    pos.column + 1,
                )
            )
    if accumulate is not None:
        body, loss = _undo_loss_division(body, loss, accumulate, position, loop)
        pos = position(loop)
        findings.append(
            Finding(
                "SCF009",
                FIXED,
                f"gradient accumulation mapped to Trainer(accumulate_grad_batches={accumulate}); "
                "the manual loss division is kept for what the script prints, the Trainer divides the returned loss. "
                f"If len(loader) is not a multiple of {accumulate}, the Trainer also steps on each epoch's last batch",
                pos.line,
                pos.column + 1,
            )
        )
    return StepPlan(
        body, loss, optimizers, schedulers, clip, breaks, findings, pending, amp, accumulate
    )


# ------------------------------------------------------------------------------- name analysis
def _assigned(stmts) -> set[str]:
    names: set[str] = set()
    mod = cst.Module(body=list(stmts))
    for node in m.findall(mod, m.Assign() | m.AugAssign() | m.AnnAssign() | m.For() | m.WithItem()):
        if isinstance(node, cst.Assign):
            for t in node.targets:
                names |= _bound_names(t.target)
        elif isinstance(node, (cst.AugAssign, cst.AnnAssign, cst.For)):
            names |= _bound_names(node.target)
        elif isinstance(node, cst.WithItem) and node.asname is not None:
            names |= _bound_names(node.asname.name)
    return names


def _bound_names(target) -> set[str]:
    if isinstance(target, cst.Name):
        return {target.value}
    if isinstance(target, (cst.Tuple, cst.List)):
        out: set[str] = set()
        for el in target.elements:
            out |= _bound_names(el.value)
        return out
    if isinstance(target, cst.StarredElement):
        return _bound_names(target.value)
    return set()


def _used(stmts) -> set[str]:
    """Names appearing as variables (attribute names and keywords excluded)."""
    collector = _NameCollector()
    cst.Module(body=list(stmts)).visit(collector)
    return collector.names


class _NameCollector(cst.CSTVisitor):
    def __init__(self) -> None:
        self.names: set[str] = set()

    def visit_Attribute(self, node: cst.Attribute) -> bool:
        node.value.visit(self)
        return False

    def visit_Arg(self, node: cst.Arg) -> bool:
        node.value.visit(self)
        return False

    def visit_Name(self, node: cst.Name) -> None:
        self.names.add(node.value)


class _Renamer(cst.CSTTransformer):
    """Replaces variable names by expressions (``n`` -> ``self.n``), keeping attribute names,
    keywords and parameter names as they are."""

    def __init__(self, mapping: dict[str, cst.BaseExpression]) -> None:
        self.mapping = mapping

    def visit_Attribute(self, node):
        return True

    def leave_Attribute(self, original, updated):
        return updated.with_changes(attr=original.attr)

    def leave_Arg(self, original, updated):
        return updated.with_changes(keyword=original.keyword)

    def leave_Param(self, original, updated):
        return updated.with_changes(name=original.name)

    def leave_Name(self, original, updated):
        return self.mapping.get(original.value, updated)


class _BreakReplacer(cst.CSTTransformer):
    """``break`` of the converted loop (not of loops nested in it) -> ``replacement``."""

    def __init__(self, replacement: cst.BaseSmallStatement) -> None:
        self.replacement = replacement
        self.depth = 0

    def visit_For(self, node):
        self.depth += 1

    def leave_For(self, original, updated):
        self.depth -= 1
        return updated

    def visit_While(self, node):
        self.depth += 1

    def leave_While(self, original, updated):
        self.depth -= 1
        return updated

    def leave_Break(self, original, updated):
        return self.replacement if self.depth == 0 else updated


def transform_stmts(stmts, transformer) -> list:
    return list(cst.Module(body=list(stmts)).visit(transformer).body)


def stmt(code: str):
    return cst.parse_statement(code)


# ----------------------------------------------------------------------------------- building
def _unwrap_loader(iter_expr):
    """``enumerate(x, 1)`` / ``tqdm(x)`` -> (x, enumerate start or None, index name used)."""
    start = None
    enumerated = False
    expr = iter_expr
    while isinstance(expr, cst.Call) and isinstance(expr.func, cst.Name) and expr.args:
        if expr.func.value == "enumerate":
            enumerated = True
            if len(expr.args) > 1:
                start = code_of(expr.args[1].value)
            expr = expr.args[0].value
        elif expr.func.value in ("tqdm", "iter"):
            expr = expr.args[0].value
        else:
            break
    return expr, enumerated, start


def _assignment_value(body, name: str):
    for s in body:
        if isinstance(s, cst.SimpleStatementLine):
            for small in s.body:
                if isinstance(small, cst.Assign):
                    for t in small.targets:
                        if isinstance(t.target, cst.Name) and t.target.value == name:
                            return small.value
    return None


def _param_map(fn: cst.FunctionDef, call: cst.Call) -> dict[str, str]:
    """Parameter name -> argument code at the call site (defaults for the rest)."""
    params = list(fn.params.params)
    mapping: dict[str, str] = {}
    positional = [a for a in call.args if a.keyword is None and not a.star]
    for p, a in zip(params, positional, strict=False):
        mapping[p.name.value] = code_of(a.value)
    for a in call.args:
        if a.keyword is not None:
            mapping[a.keyword.value] = code_of(a.value)
    for p in params:
        if p.name.value not in mapping and p.default is not None:
            mapping[p.name.value] = code_of(p.default)
    if (
        any(a.star for a in call.args)
        or fn.params.star_arg not in (None, cst.MaybeSentinel.DEFAULT)
        or fn.params.kwonly_params
    ):
        raise ValueError("star arguments")
    return mapping


def _simple(code: str) -> bool:
    """A name, a dotted name or a literal: evaluating it again gives the same object."""
    import re

    return bool(re.fullmatch(r"[A-Za-z_][\w.]*|-?\d+(\.\d*)?(e-?\d+)?|'[^']*'|\"[^\"]*\"", code))


def _fresh(base: str, taken: set[str]) -> str:
    name, i = base, 2
    while name in taken:
        name, i = f"{base}{i}", i + 1
    return name


def _loop_comments(node) -> list[cst.EmptyLine]:
    """Comments a dropped loop or function header would lose: its own leading lines, the
    header's trailing comment and the block's footer."""
    lines = [ln for ln in node.leading_lines if ln.comment is not None]
    body = node.body
    if isinstance(body, cst.IndentedBlock):
        if body.header.comment is not None:
            lines.append(cst.EmptyLine(comment=body.header.comment))
        lines += [ln for ln in body.footer if ln.comment is not None]
    return lines


def _scheduler_steps(stmts, names_ok) -> tuple[list, list[str], list[cst.EmptyLine]]:
    """Removes argument-less ``sched.step()`` statements; returns (kept, schedulers, comments)."""
    kept, found, comments = [], [], []
    for s in stmts:
        call = _method_call(s, "step")
        name = _name_of(_receiver(call)) if call is not None and not call.args else None
        if name is not None and names_ok(name):
            found.append(name)
            comments += comments_of(s)
            continue
        kept.append(with_comments(s, comments) if comments else s)
        comments = []
    return kept, found, comments


def _is_scheduler(name: str, scope_bodies) -> bool:
    for body in scope_bodies:
        value = _assignment_value(body, name)
        if value is not None:
            text = code_of(value)
            return (
                "lr_scheduler" in text
                or "Scheduler" in text
                or "LR(" in text
                or "LR" in text.split("(")[0]
            )
    return "sched" in name.lower()


def _find_device(scope_bodies, model_code: str) -> tuple[str | None, bool]:
    """(device expression the model is moved to, uses .cuda())."""
    for body in scope_bodies:
        for s in body:
            for call in m.findall(s, m.Call(func=m.Attribute(attr=m.Name("to") | m.Name("cuda")))):
                receiver = code_of(call.func.value)
                assigned_model = isinstance(s, cst.SimpleStatementLine) and any(
                    isinstance(x, cst.Assign)
                    and any(code_of(t.target) == model_code for t in x.targets)
                    for x in s.body
                )
                if receiver == model_code or assigned_model:
                    if call.func.attr.value == "cuda":
                        return None, True
                    if call.args:
                        return code_of(call.args[0].value), False
    return None, False


def convert(module: cst.Module, engine: str = "runtime") -> tuple[cst.Module, list[Finding]]:
    wrapper = MetadataWrapper(module)
    module = wrapper.module
    positions = wrapper.resolve(PositionProvider)

    fallback: list = []

    def position(node):
        # nodes made by a codemod have no position: report them at the loop
        if node in positions:
            return positions[node].start
        return positions[fallback[0]].start if fallback else positions[module].start

    site = locate(module, position)
    fallback.append(site.epoch_for or site.batch_for)
    outer = site.epoch_for or site.batch_for
    here = position(outer)
    where = (here.line, here.column + 1)

    def refuse(code: str, message: str):
        raise CannotConvert(Finding(code, "manual", message, *where))

    fn_map: dict[str, str] = {}
    if site.train_fn is not None:
        try:
            fn_map = _param_map(site.train_fn, site.train_call.body[0].value)
        except ValueError:
            refuse(
                "SCF312", f"`{site.train_fn.name.value}(...)` uses *args/**kwargs; not converted"
            )

    def outer_code(name: str) -> str:
        return fn_map.get(name, name)

    scope_bodies = [site.scope_body, module.body]
    findings_pre: list[Finding] = []
    # which optimizer, which model
    flat, _, _ = _flatten_amp(list(site.batch_for.body.body), position, site.batch_for)
    flat, _ = _flatten_accumulation(flat, site.batch_for)
    step_names = [_name_of(_receiver(c)) for s in flat if (c := _method_call(s, "step"))]
    synthesized: list = []  # statements defining an optimizer the script did not have
    construction = None
    if not step_names:
        update = _manual_update(site.batch_for)
        if update is not None:
            node, params_code = update
            taken_names = _used([*module.body])
            opt_cls, opt_var = (
                _fresh("ManualUpdate", taken_names),
                _fresh("manual_optimizer", taken_names),
            )
            synthesized = _manual_update_optimizer(node, opt_cls, opt_var, params_code)
            new_body = [
                stmt(f"{opt_var}.step()\n").with_changes(leading_lines=node.leading_lines)
                if x is node
                else x
                for x in site.batch_for.body.body
            ]
            site.batch_for = site.batch_for.with_changes(
                body=site.batch_for.body.with_changes(body=new_body)
            )
            step_names = [opt_var]
            construction = cst.parse_expression(f"{opt_cls}({params_code})")
            findings_pre.append(
                Finding(
                    "SCF012",
                    FIXED,
                    "hand-written parameter update wrapped as the "
                    f"step of an optimizer (`{opt_cls}`), run by the Trainer",
                    *where,
                )
            )
    if not step_names and m.findall(site.batch_for, m.Call(func=m.Attribute(attr=m.Name("step")))):
        refuse(
            "SCF305",
            "`optimizer.step(...)` is used inside an expression or a nested block "
            "(e.g. `loss = optimizer.step(closure)`); not converted",
        )
    if not step_names or step_names[0] is None:
        refuse("SCF309", "no `optimizer.step()` statement in the batch loop")
    opt_code = outer_code(step_names[0])
    for body in scope_bodies:
        if construction is not None:
            break
        construction = _assignment_value(body, opt_code)
    model_code = None
    if construction is not None:
        params = m.findall(construction, m.Call(func=m.Attribute(attr=m.Name("parameters"))))
        if params:
            model_code = code_of(params[0].func.value)
    if model_code is None:
        refuse(
            "SCF311",
            f"cannot tell which model `{opt_code}` trains (no `<model>.parameters()` "
            "in its construction in this scope)",
        )
    model_names = {model_code} | {p for p, a in fn_map.items() if a == model_code}
    plan = plan_step(site, position, model_names)
    findings = findings_pre + list(plan.findings)
    manual_models: list[str] = []
    manual_opts: list[str] = []

    def attr_of_model(name: str) -> str:
        return name if name not in LIGHTNING_ATTRS else f"{name}_"

    if plan.manual:
        order = {}
        for i, st in enumerate(site.scope_body):
            for n in _assigned([st]):
                order.setdefault(n, i)
        plan.optimizers = sorted(plan.optimizers, key=lambda n: order.get(outer_code(n), 1 << 30))
        for name in plan.optimizers:
            code = outer_code(name)
            value = next(
                (v for b in scope_bodies if (v := _assignment_value(b, code)) is not None), None
            )
            found = (
                m.findall(value, m.Call(func=m.Attribute(attr=m.Name("parameters"))))
                if value is not None
                else []
            )
            if not found or not re.fullmatch(r"[A-Za-z_]\w*", code):
                refuse("SCF311", f"cannot tell which model `{code}` trains")
            manual_opts.append(code)
            for call in found:
                model = code_of(call.func.value)
                if not re.fullmatch(r"[A-Za-z_]\w*", model):
                    refuse("SCF311", f"the model `{model}` must be a plain variable")
                if model not in manual_models:
                    manual_models.append(model)
        model_code = manual_models[0]
    manual_params = ([f"{n}_" if n in ("self",) else n for n in manual_models], manual_opts)

    # schedulers: per-batch ones from the plan, per-epoch ones from the epoch/function tails
    def sched_ok(name):
        # with manual optimization the Trainer does not step schedulers: keep the calls
        return not plan.manual and _is_scheduler(outer_code(name), scope_bodies)

    fn_post, fn_scheds, fn_tail_comments = _scheduler_steps(site.fn_post, sched_ok)
    epoch_post, epoch_scheds, ep_tail_comments = _scheduler_steps(site.epoch_post, sched_ok)
    call_target = None
    if site.train_fn is not None:
        call_small = site.train_call.body[0]
        if isinstance(call_small, cst.Assign):
            call_target = call_small.targets[0].target.value
        last = fn_post[-1] if fn_post else (site.fn_pre[-1] if False else None)
        if last is not None and m.matches(last, m.SimpleStatementLine(body=[m.Return()])):
            value = last.body[0].value
            if call_target is not None and value is not None:
                assign = cst.Assign(targets=[cst.AssignTarget(cst.Name(call_target))], value=value)
                fn_post = [*fn_post[:-1], last.with_changes(body=[assign])]
            else:
                fn_post = fn_post[:-1] + (
                    [last.with_changes(body=[cst.Pass()])] if comments_of(last) else []
                )
        elif call_target is not None:
            refuse(
                "SCF319",
                f"`{call_target} = {site.train_fn.name.value}(...)` needs the function "
                "to end with `return <value>`",
            )
    epoch_sched_names = [outer_code(n) for n in fn_scheds] + epoch_scheds
    step_sched_names = [outer_code(n) for n in plan.step_schedulers]
    all_scheds = epoch_sched_names + step_sched_names
    other_text = code_of(
        cst.Module(body=[*site.epoch_pre, *site.fn_pre, *fn_post, *epoch_post, *plan.body])
    )
    if len(all_scheds) > 1 or any(
        re_word(n, other_text) for n in [*plan.step_schedulers, *fn_scheds, *epoch_scheds]
    ):
        # keep the calls where they were: exact, at the cost of configure_optimizers not seeing them
        fn_post, epoch_post = list(site.fn_post), list(site.epoch_post)
        fn_tail_comments, ep_tail_comments = [], []
        if plan.step_schedulers:
            refuse("SCF313", "a per-batch scheduler that other code reads is not converted")
        all_scheds, epoch_sched_names, step_sched_names = [], [], []
    else:
        for name in all_scheds:
            interval = "epoch" if name in epoch_sched_names else "step"
            findings.append(
                Finding(
                    "SCF005",
                    FIXED,
                    f"`{name}.step()` moved to configure_optimizers (interval={interval!r})",
                    *where,
                )
            )

    # the epoch loop
    epoch_var = epoch_iter = None
    while_test = None
    if isinstance(site.epoch_for, cst.While):
        while_test = site.epoch_for.test
        if site.epoch_for.orelse is not None:
            refuse("SCF315", "`while ... else` on the epoch loop is not converted")
        if m.findall(cst.Module(body=list(site.epoch_pre)), m.Break() | m.Continue()):
            refuse("SCF316", "`break`/`continue` before the batch loop is not converted")
        findings.append(
            Finding(
                "SCF007",
                FIXED,
                f"`while {code_of(while_test)}` mapped to "
                "Trainer(max_epochs=-1), stopping when the condition turns false "
                "at an epoch's end",
                *where,
            )
        )
    elif site.epoch_for is not None:
        it = site.epoch_for.iter
        if not m.matches(it, m.Call(func=m.Name("range"))):
            refuse("SCF314", "the epoch loop must iterate over range(...)")
        if not isinstance(site.epoch_for.target, cst.Name):
            refuse("SCF314", "the epoch loop variable must be a plain name")
        epoch_var, epoch_iter = site.epoch_for.target.value, code_of(it)
        if site.epoch_for.orelse is not None:
            refuse("SCF315", "`for ... else` on the epoch loop is not converted")
        if m.findall(cst.Module(body=list(site.epoch_pre)), m.Break() | m.Continue()):
            refuse("SCF316", "`break`/`continue` before the batch loop is not converted")
        findings.append(
            Finding(
                "SCF007",
                FIXED,
                f"epoch loop mapped to Trainer(max_epochs=len({epoch_iter}))",
                *where,
            )
        )
    if site.batch_for.orelse is not None:
        refuse("SCF315", "`for ... else` on the batch loop is not converted")
    if m.findall(cst.Module(body=list(epoch_post)), m.Continue()):
        refuse("SCF316", "`continue` in the epoch loop is not converted")

    while_check = []
    if while_test is not None:
        # a while loop re-checks its condition before the next epoch
        while_check = [
            stmt(f"if not ({code_of(while_test)}):\n    self.trainer.should_stop = True\n")
        ]
    taken = _used([*module.body])
    cls_name = _fresh("LitModel", taken)
    inst = _fresh("lit_model", taken)
    trainer_var = _fresh("trainer", taken)
    stop_attr = "stop_epoch"

    # an evaluation helper called first after training becomes the validation hooks
    val = None
    if isinstance(site.epoch_for, cst.For):
        from scaffold.migrate.evaluation import plan_validation

        val = plan_validation(module, epoch_post, fn_post)
        if val is not None:
            epoch_post = epoch_post[1:]
            findings.append(
                Finding(
                    "SCF015",
                    FIXED,
                    f"evaluation helper `{val.fn.name.value}()` "
                    "converted to validation_step and the validation epoch hooks",
                    *where,
                )
            )
    # variables carried across batches or epochs become attributes of the module
    idx = _statement_index(site.scope_body, site.train_call if site.train_fn else outer)
    if site.train_fn is not None:
        idx = _statement_index(site.scope_body, site.epoch_for)
    before, after = site.scope_body[:idx], site.scope_body[idx + 1 :]
    targets = _bound_names(site.batch_for.target)
    u_after = _used(after)
    if site.train_fn is None:
        pre, post = list(site.epoch_pre), list(epoch_post) + while_check
        a_pre, a_body, a_post = _assigned(pre), _assigned(plan.body) | targets, _assigned(post)
        u_pre, u_body, u_post = _used(pre), _used(plan.body), _used(post)
        shared = (
            (a_pre & (u_body | u_post | u_after))
            | (a_body & (u_post | u_after))
            | (a_post & u_after)
            | (a_body & a_pre)
        )
        # carried from one epoch (or batch) to the next, or updating a variable set before the loop
        carried = (
            (a_post & (u_pre | u_body))
            | (a_body & u_pre)
            | ((a_pre | a_body | a_post) & _assigned(before))
        )
        shared = (shared | carried) - {epoch_var}
        fn_shared: set[str] = set()
    else:
        a_pre, a_post = _assigned(site.epoch_pre), _assigned(epoch_post) | ({call_target} - {None})
        u_pre, u_post = _used(site.epoch_pre), _used(epoch_post + while_check)
        shared = (a_pre & (u_post | u_after)) | (a_post & (u_after | u_pre))
        shared = (shared | ((a_pre | a_post) & _assigned(before))) - {epoch_var}
        f_pre, f_body, f_post = (
            _assigned(site.fn_pre),
            _assigned(plan.body) | targets,
            _assigned(fn_post),
        )
        fn_shared = (
            (f_pre & (_used(plan.body) | _used(fn_post)))
            | (f_body & _used(fn_post))
            | (f_body & f_pre)
        )
        if shared & fn_shared:
            refuse(
                "SCF317",
                f"variables {sorted(shared & fn_shared)} are used both in the epoch loop and in "
                f"`{site.train_fn.name.value}()`; not converted",
            )
    if val is not None and val.target is not None:
        shared.add(val.target)
    attr_of = {n: (n if n not in LIGHTNING_ATTRS else f"{n}_") for n in shared | fn_shared}
    renamer = _Renamer(
        {n: cst.Attribute(cst.Name("self"), cst.Name(a)) for n, a in attr_of.items()}
    )

    body = transform_stmts(plan.body, renamer)
    if plan.breaks:
        last = body[-1] if body else None
        if (
            last is None
            or not m.findall(last, m.Break())
            or any(m.findall(s, m.Break()) for s in body[:-1])
        ):
            refuse("SCF318", "`break` in the batch loop must be in its last statement")
        body = transform_stmts(
            body, _BreakReplacer(cst.parse_statement(f"self.{stop_attr} = True\n").body[0])
        )
        findings.append(
            Finding(
                "SCF006",
                FIXED,
                "`break` of the batch loop ends the epoch (on_train_batch_start returns -1)",
                *where,
            )
        )
    e_pre = transform_stmts(site.epoch_pre, renamer)
    e_post = transform_stmts(epoch_post, renamer)
    f_pre = transform_stmts(site.fn_pre, renamer)
    f_post = transform_stmts(fn_post, renamer)
    if m.findall(cst.Module(body=e_post), m.Break()):
        if not m.findall(e_post[-1], m.Break()) or any(
            m.findall(s, m.Break()) for s in e_post[:-1]
        ):
            refuse("SCF318", "`break` in the epoch loop must be in its last statement")
        e_post = transform_stmts(
            e_post, _BreakReplacer(cst.parse_statement("self.trainer.should_stop = True\n").body[0])
        )
        findings.append(
            Finding(
                "SCF006",
                FIXED,
                "`break` of the epoch loop stops the Trainer after this epoch",
                *where,
            )
        )
    if while_check:
        e_post = [*e_post, *transform_stmts(while_check, renamer)]
    if m.findall(cst.Module(body=f_pre + f_post), m.Return()):
        refuse(
            "SCF319",
            f"`{site.train_fn.name.value}()` returns early or from a nested block; not converted",
        )

    # preludes: epoch variable and train() parameters, where the hook's code needs them
    def prelude(code_stmts, fn_scope: bool) -> list:
        used = _used(code_stmts)
        lines: list[str] = []
        bindings = []
        if fn_scope:
            for p in site.train_fn.params.params:
                name = p.name.value
                if name in used and fn_map.get(name, None) != name:
                    if name not in fn_map:
                        refuse(
                            "SCF312",
                            f"parameter `{name}` of `{site.train_fn.name.value}()` has no value at the call",
                        )
                    if _simple(fn_map[name]):
                        bindings.append(f"{name} = {fn_map[name]}")
                    else:
                        # evaluated once per call, as the original call did (see arg_stmts)
                        bindings.append(f"{name} = self.{name}_arg")
                        evaluated_args.add(name)
        needs_epoch = epoch_var is not None and (
            epoch_var in used or any(re_word(epoch_var, b) for b in bindings)
        )
        if needs_epoch:
            lines.append(f"{epoch_var} = {epoch_iter}[self.current_epoch]")
        lines += bindings
        return [stmt(line + "\n") for line in lines]

    evaluated_args: set[str] = set()
    unpack = []
    loader, enumerated, start = _unwrap_loader(site.batch_for.iter)
    target = site.batch_for.target
    if enumerated:
        if not (isinstance(target, cst.Tuple) and len(target.elements) == 2):
            refuse("SCF320", "`enumerate` loop target must be `index, batch`")
        index, batch_target = target.elements[0].value, target.elements[1].value
        index_code = code_of(index)
        if start is not None:
            unpack.append(stmt(f"{index_code} = batch_idx + {start}\n"))
        elif index_code != "batch_idx":
            unpack.append(stmt(f"{index_code} = batch_idx\n"))
    else:
        batch_target = target
    batch_code = code_of(batch_target)
    if batch_code.startswith("(") and batch_code.endswith(")"):
        batch_code = batch_code[1:-1]
    if batch_code != "batch":
        unpack.append(stmt(f"{batch_code} = batch\n"))
    loader_code = code_of(loader)
    if site.train_fn is not None and isinstance(loader, cst.Name):
        loader_code = outer_code(loader.value)
    for scope in scope_bodies:
        value = _assignment_value(scope, loader_code)
        if isinstance(value, (cst.List, cst.Tuple, cst.ListComp)):
            refuse(
                "SCF322",
                f"`{loader_code}` is a Python list of batches; the Trainer takes a DataLoader (or "
                "a list of DataLoaders), so wrap the data in a Dataset/DataLoader first",
            )
        if value is not None:
            break

    if plan.manual:
        unpack.insert(
            0,
            stmt(
                f"{', '.join(plan.optimizers)}{',' if len(plan.optimizers) == 1 else ''} = self.optimizers()\n"
            ),
        )
    step_body = [*prelude(body + unpack, site.train_fn is not None), *unpack, *body]
    ret = with_comments(
        stmt(
            f"return {code_of(transform_stmts([cst.SimpleStatementLine([cst.Expr(plan.loss)])], renamer)[0].body[0].value)}\n"
        ),
        plan.trailing_comments,
    )
    if not plan.manual:
        # the loss the script printed is also logged (progress bar, callbacks, loggers)
        returned = ret.body[0].value
        step_body.append(stmt(f'self.log("train_loss", {code_of(returned)}, prog_bar=True)\n'))
        step_body.append(ret)
        findings.append(
            Finding("SCF014", FIXED, "training loss logged with self.log('train_loss')", *where)
        )
    elif ret.leading_lines:
        step_body.append(
            cst.SimpleStatementLine(body=[cst.Pass()], leading_lines=ret.leading_lines)
        )

    # --- the class
    methods: list = []

    def method(signature: str, stmts: list):
        fn = cst.parse_statement(f"def {signature}:\n    pass\n")
        return fn.with_changes(body=fn.body.with_changes(body=stmts), leading_lines=[])

    init = [
        stmt("super().__init__()\n"),
        stmt("self.model = model\n"),
        stmt("self.optimizer = optimizer\n"),
    ]
    init_sig = "__init__(self, model, optimizer"
    if plan.manual:
        init = [stmt("super().__init__()\n"), stmt("self.automatic_optimization = False\n")]
        init += [stmt(f"self.{attr_of_model(n)} = {n}\n") for n in manual_params[0]]
        init.append(stmt(f"self.optimizers_list = [{', '.join(manual_params[1])}]\n"))
        init_sig = f"__init__(self, {', '.join(manual_params[0] + manual_params[1])}"
    if all_scheds:
        init.append(stmt("self.scheduler = scheduler\n"))
        init_sig += ", scheduler"
    methods.append(method(init_sig + ")", init))
    methods.append(
        method(
            "forward(self, *args, **kwargs)",
            [
                stmt(
                    f"return self.{attr_of_model(manual_models[0]) if plan.manual else 'model'}(*args, **kwargs)\n"
                )
            ],
        )
    )
    start_stmts = []
    if e_pre:
        start_stmts += prelude(e_pre, False) + e_pre
    if evaluated_args:
        # the call's non-trivial arguments, evaluated when the original call was made
        arg_lines = [f"self.{n}_arg = {fn_map[n]}" for n in sorted(evaluated_args)]
        uses_epoch = epoch_var is not None and any(re_word(epoch_var, x) for x in arg_lines)
        if uses_epoch:
            arg_lines.insert(0, f"{epoch_var} = {epoch_iter}[self.current_epoch]")
        start_stmts += [stmt(x + "\n") for x in arg_lines]
    if f_pre:
        start_stmts += prelude(f_pre, True) + f_pre
    if plan.breaks:
        start_stmts.append(stmt(f"self.{stop_attr} = False\n"))
    if start_stmts:
        methods.append(method("on_train_epoch_start(self)", start_stmts))
    if plan.breaks:
        methods.append(
            method(
                "on_train_batch_start(self, batch, batch_idx)",
                [stmt(f"if self.{stop_attr}:\n    return -1\n")],
            )
        )
    methods.append(method("training_step(self, batch, batch_idx)", step_body))
    if val is not None:
        taken_attrs = set(attr_of.values())
        val_attr = {
            n: (n if n not in LIGHTNING_ATTRS | taken_attrs else f"{n}_val")
            for n in val.local_shared
        }
        val_renamer = _Renamer(
            {n: cst.Attribute(cst.Name("self"), cst.Name(a)) for n, a in val_attr.items()}
        )

        def val_prelude(code_stmts) -> list:
            lines = []
            used_here = _used(code_stmts)
            binds = [b for b in val.bindings if b.split(" = ")[0] in used_here]
            if epoch_var is not None and (
                epoch_var in used_here or any(re_word(epoch_var, b) for b in binds)
            ):
                lines.append(f"{epoch_var} = {epoch_iter}[self.current_epoch]")
            return [stmt(x + "\n") for x in lines + binds]

        v_pre = transform_stmts(val.pre, val_renamer)
        v_unpack = [stmt(x + "\n") for x in val.unpack]
        v_body = transform_stmts(val.body, val_renamer)
        v_post = transform_stmts(val.post, val_renamer)
        if val.target is not None:
            value = (
                transform_stmts([cst.SimpleStatementLine([cst.Expr(val.returned)])], val_renamer)[0]
                .body[0]
                .value
            )
            v_post.append(stmt(f"self.{attr_of[val.target]} = {code_of(value)}\n"))
        if v_pre:
            methods.append(method("on_validation_epoch_start(self)", val_prelude(v_pre) + v_pre))
        methods.append(
            method(
                "validation_step(self, batch, batch_idx)",
                val_prelude(v_unpack + v_body) + v_unpack + (v_body or [stmt("pass\n")]),
            )
        )
        if v_post:
            methods.append(method("on_validation_epoch_end(self)", val_prelude(v_post) + v_post))
    end_stmts = []
    if f_post:
        end_stmts += prelude(f_post, True) + f_post
    if e_post:
        end_stmts += prelude(e_post, False) + e_post
    tail_comments = fn_tail_comments + ep_tail_comments
    if end_stmts:
        methods.append(method("on_train_epoch_end(self)", end_stmts))
    if all_scheds:
        interval = "epoch" if epoch_sched_names else "step"
        conf = [
            stmt(
                "return {\n"
                '    "optimizer": self.optimizer,\n'
                f'    "lr_scheduler": {{"scheduler": self.scheduler, "interval": "{interval}"}},\n'
                "}\n"
            )
        ]
    elif plan.manual:
        conf = [stmt("return self.optimizers_list\n")]
    else:
        conf = [stmt("return self.optimizer\n")]
    if tail_comments:
        conf[0] = with_comments(conf[0], tail_comments)
    methods.append(method("configure_optimizers(self)", conf))

    header_comments = _loop_comments(outer)
    if val is not None:
        header_comments += val.comments
    if site.epoch_for is not None:
        header_comments += _loop_comments(site.batch_for) if site.train_fn is None else []
    if site.train_fn is not None:
        header_comments += _loop_comments(site.batch_for) + _loop_comments(site.train_fn)
    at_module_level = site.scope_body is module.body
    blank = [cst.EmptyLine(indent=False)] * (2 if at_module_level else 1)
    doc = '"""The training loop of this script as a LightningModule (migrated by torch-scaffold)."""\n'
    cls = cst.parse_statement(f"class {cls_name}(L.LightningModule):\n    {doc}")
    cls = cls.with_changes(
        body=cls.body.with_changes(
            body=[
                *cls.body.body,
                *[m_.with_changes(leading_lines=[cst.EmptyLine(indent=False)]) for m_ in methods],
            ]
        ),
        leading_lines=[*blank, *header_comments],
    )

    # --- what replaces the loop
    args = [model_code, opt_code] + ([all_scheds[0]] if all_scheds else [])
    if plan.manual:
        args = manual_models + manual_opts
    new = [cls, stmt(f"{inst} = {cls_name}({', '.join(args)})\n").with_changes(leading_lines=blank)]
    if synthesized:
        synthesized[0] = synthesized[0].with_changes(leading_lines=cls.leading_lines)
        new = [*synthesized, cls.with_changes(leading_lines=blank), *new[1:]]
    before_names = _assigned(before)
    for n in sorted((shared | fn_shared) & before_names):
        new.append(stmt(f"{inst}.{attr_of[n]} = {n}\n"))
    device, cuda = _find_device(scope_bodies, model_code)
    accelerator = f"torch.device({device}).type" if device else ('"gpu"' if cuda else '"cpu"')
    trainer_args = [
        f"max_epochs=len({epoch_iter})"
        if epoch_iter
        else ("max_epochs=-1" if while_test is not None else "max_epochs=1"),
        f"accelerator={accelerator}",
        "devices=1",
    ]
    if plan.amp is not None:
        precision = amp_precision(plan.amp)
        if precision is None:
            refuse(
                "SCF324",
                "autocast without a dtype on an unknown device: cannot tell the "
                "precision; pass dtype=torch.float16 or torch.bfloat16",
            )
        trainer_args.append(f"precision={precision}")
    if plan.accumulate is not None:
        trainer_args.append(f"accumulate_grad_batches={plan.accumulate}")
    if plan.clip:
        trainer_args += [
            f"gradient_clip_val={plan.clip[0]}",
            f'gradient_clip_algorithm="{plan.clip[1]}"',
        ]
    if val is not None:
        trainer_args.append("num_sanity_val_steps=0")
    trainer_args += [
        "logger=False",
        "enable_checkpointing=False",
        "enable_progress_bar=False",
        "enable_model_summary=False",
    ]
    inner = "".join(f"    {a},\n" for a in trainer_args)
    new.append(stmt(f"{trainer_var} = L.Trainer(\n{inner})\n"))
    val_loader = f", {val.loader_code}" if val is not None else ""
    new.append(stmt(f"{trainer_var}.fit({inst}, {loader_code}{val_loader})\n"))
    for n in sorted((shared | fn_shared) & u_after):
        new.append(stmt(f"{n} = {inst}.{attr_of[n]}\n"))
    if epoch_var is not None and epoch_var in u_after:
        # the value the loop variable had in the last epoch that ran
        new.append(stmt(f"{epoch_var} = {epoch_iter}[{trainer_var}.current_epoch - 1]\n"))
    findings.insert(
        0,
        Finding(
            "SCF001",
            FIXED,
            f"training loop converted to `{cls_name}` + `{trainer_var}.fit(...)`",
            *where,
        ),
    )
    if device and "torch" not in _used(module.body):
        refuse("SCF321", "the script selects a device without importing torch")

    # --- splice: replace the outer loop; drop the inlined train() function
    val_fn = val.fn if val is not None and not val.keep_function else None
    drops = [n for n in (site.train_fn, val_fn) if n is not None]
    replacer = _Splice(outer if site.train_fn is None else site.epoch_for, new, drops)
    module = module.visit(replacer)
    module = _add_engine_import(module, engine)
    return module, findings


def re_word(name: str, text: str) -> bool:
    import re

    return re.search(rf"(?<![\w.]){re.escape(name)}\b", text) is not None


class _Splice(cst.CSTTransformer):
    def __init__(self, target, replacement: list, drops: list) -> None:
        self.target, self.replacement, self.drops = target, replacement, drops

    def on_leave(self, original, updated):
        if original is self.target:
            return cst.FlattenSentinel(self.replacement)
        if any(original is d for d in self.drops):
            return cst.RemoveFromParent()
        return updated


def _add_engine_import(module: cst.Module, engine: str) -> cst.Module:
    line = "import runtime as L\n" if engine == "runtime" else "import lightning as L\n"
    body = list(module.body)
    last_import = -1
    for i, s in enumerate(body):
        if m.matches(s, m.SimpleStatementLine(body=[m.Import() | m.ImportFrom()])):
            last_import = i
        elif i == 0 and m.matches(s, m.SimpleStatementLine(body=[m.Expr(value=m.SimpleString())])):
            continue
        elif last_import >= 0:
            break
    body.insert(last_import + 1, cst.parse_statement(line))
    return module.with_changes(body=body)
