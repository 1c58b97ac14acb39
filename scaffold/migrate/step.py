"""The batch loop's body -> ``training_step``: what to remove (zero_grad/backward/step,
batch transfers, clipping, scheduler steps, autocast/GradScaler, accumulation), what it maps to,
and the special shapes (several optimizers, closures, hand-written updates)."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import libcst as cst

import scaffold.migrate.match as m
from scaffold.migrate import rules as R
from scaffold.migrate.findings import FIXED, MANUAL, CannotConvert, Finding
from scaffold.migrate.names import qualified
from scaffold.migrate.syntax import (
    _assigned,
    _ContinueReplacer,
    _dotted,
    _kwarg,
    _method_call,
    _name_of,
    _receiver,
    _target_names,
    _unwrap_loader,
    _used,
    body_without_docstring,
    call_bindings,
    code_of,
    comment_holder,
    comments_of,
    outside_defs,
    own_breaks,
    returns_as_breaks,
    split_lines,
    transform_stmts,
    variable_nodes,
    with_comments,
)

if TYPE_CHECKING:  # locate imports this module
    from scaffold.migrate.locate import Site


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
    # manual optimization: receivers of `x.step(<args>)` (a plateau scheduler's
    # `scheduler.step(val_loss)`, or an optimizer's closure step)
    argument_steps: tuple[str, ...] = ()
    # manual optimization: optimizers stepped with a closure the batch loop defines
    # (`def closure(): ...; optimizer.step(closure)`, LBFGS), kept as written
    closure_steps: tuple[str, ...] = ()
    # the batch loop returns from the function holding it (`if ...: return best`): each return
    # is a `__scaffold_returned__ = (value,)` mark and a `break` (see syntax.returns_as_breaks)
    returns: bool = False


def _is_dict_transfer(target, value, batch_names: set[str]) -> bool:
    """``batch = {k: v.to(device) for k, v in batch.items()}`` on a batch name."""
    if not (isinstance(target, cst.Name) and target.value in batch_names):
        return False
    if not isinstance(value, cst.DictComp):
        return False
    comp = value.for_in
    if comp.inner_for_in is not None or comp.ifs:
        return False
    if not (
        isinstance(comp.target, cst.Tuple)
        and len(comp.target.elements) == 2
        and all(isinstance(e.value, cst.Name) for e in comp.target.elements)
    ):
        return False
    key, val = (e.value.value for e in comp.target.elements)
    return (
        m.matches(
            comp.iter, m.Call(func=m.Attribute(value=m.Name(target.value), attr=m.Name("items")))
        )
        and m.matches(value.key, m.Name(key))
        and m.matches(
            value.value,
            m.Call(func=m.Attribute(value=m.Name(val), attr=m.Name("to") | m.Name("cuda"))),
        )
    )


def _is_batch_transfer(stmt, batch_names: set[str]) -> bool:
    """``x = x.to(device)`` / ``x, y = x.to(d), y.to(d)`` / ``x = x.cuda()`` on batch names."""
    if not isinstance(stmt, cst.SimpleStatementLine) or len(stmt.body) != 1:
        return False
    assign = stmt.body[0]
    if not isinstance(assign, cst.Assign) or len(assign.targets) != 1:
        return False
    target, value = assign.targets[0].target, assign.value
    if _is_dict_transfer(target, value, batch_names):
        return True
    targets = target.elements if isinstance(target, cst.Tuple) else [target]
    values = value.elements if isinstance(value, cst.Tuple) else [value]
    if len(targets) != len(values):
        return False
    for t, v in zip(targets, values, strict=True):
        t = t.value if isinstance(t, cst.Element) else t
        v = v.value if isinstance(v, cst.Element) else v
        if not (isinstance(t, cst.Name) and t.value in batch_names):
            return False
        if not m.matches(
            v, m.Call(func=m.Attribute(value=m.Name(t.value), attr=m.Name("to") | m.Name("cuda")))
        ):
            return False
    return True


CLIPPING = {
    f"torch.nn.utils{module}.{name}": algo
    for module in ("", ".clip_grad")
    for name, algo in (
        ("clip_grad_norm_", "norm"),
        ("clip_grad_norm", "norm"),  # the deprecated alias: the same computation
        ("clip_grad_value_", "value"),
    )
}


def _clip_call(stmt):
    if not isinstance(stmt, cst.SimpleStatementLine) or len(stmt.body) != 1:
        return None
    expr = stmt.body[0]
    if not isinstance(expr, cst.Expr) or not isinstance(expr.value, cst.Call):
        return None
    return (expr.value, algo) if (algo := CLIPPING.get(qualified(expr.value))) else None


# what each autocast resolves to: (device it implies or None, positional index of enabled, of
# dtype); ``torch.autocast(device_type, dtype, enabled)``, ``torch.cuda.amp.autocast(enabled,
# dtype)``
AUTOCASTS = {
    "torch.autocast": (None, 2, 1),
    "torch.amp.autocast": (None, 2, 1),
    "torch.amp.autocast_mode.autocast": (None, 2, 1),
    "torch.cuda.amp.autocast": ("cuda", 0, 1),
    "torch.cuda.amp.autocast_mode.autocast": ("cuda", 0, 1),
    "torch.cpu.amp.autocast": ("cpu", 0, 1),
    "torch.cpu.amp.autocast_mode.autocast": ("cpu", 0, 1),
}


def _autocast_item(node) -> cst.Call | None:
    if not isinstance(node, cst.With) or len(node.items) != 1:
        return None
    call = node.items[0].item
    if isinstance(call, cst.Call) and qualified(call) in AUTOCASTS:
        return call
    return None


def _autocast_settings(call: cst.Call) -> dict:
    """dtype / enabled / device of an autocast call, as code."""
    implied, enabled_at, dtype_at = AUTOCASTS[qualified(call)]
    dtype = _kwarg(call, "dtype", dtype_at)
    enabled = _kwarg(call, "enabled", enabled_at)
    device = _kwarg(call, "device_type", 0) if implied is None else None
    return {
        "dtype": code_of(dtype) if dtype is not None else None,
        "enabled": code_of(enabled) if enabled is not None else None,
        "device": code_of(device)
        if device is not None
        else ('"cpu"' if implied == "cpu" else None),
        "cuda_api": implied == "cuda",
    }


def _grad_enabling(node) -> bool:
    """``with torch.set_grad_enabled(True):`` or ``with torch.enable_grad():`` (one item, no
    ``as``): in a training_step, where the Trainer always has autograd on, a no-op."""
    if not isinstance(node, cst.With) or len(node.items) != 1 or node.items[0].asname:
        return False
    call = node.items[0].item
    if not isinstance(call, cst.Call) or not isinstance(node.body, cst.IndentedBlock):
        return False
    name = qualified(call)
    if name == "torch.enable_grad":
        return not call.args
    return (
        name == "torch.set_grad_enabled"
        and len(call.args) == 1
        and m.matches(call.args[0].value, m.Name("True"))
    )


def _block_comments(node: cst.With) -> list[cst.EmptyLine]:
    """The comments of a ``with`` line (above it and at its end), for the first statement of
    its block when the block is spliced into the one around it."""
    header = node.body.header.comment
    return comments_of(node) + ([cst.EmptyLine(comment=header)] if header else [])


def _unwrap_grad_enabled(stmts: list) -> list:
    """The batch body with grad-enabling ``with`` blocks spliced into it (their comments kept on
    the first statement of the block)."""
    out: list = []
    for node in stmts:
        if not _grad_enabling(node):
            out.append(node)
            continue
        inner = _unwrap_grad_enabled(list(node.body.body))
        if inner:
            inner[0] = with_comments(inner[0], _block_comments(node))
        out += inner
    return out


def _flatten_amp(stmts: list, position, loop) -> tuple[list, dict | None, list[Finding]]:
    """Unwraps ``with autocast(...)`` and turns GradScaler calls into plain ones; the precision
    they meant goes to the Trainer. Grad-enabling blocks are unwrapped first."""
    stmts = _unwrap_grad_enabled(stmts)
    out: list = []
    amp: dict | None = None
    findings: list[Finding] = []
    # `scaler.scale(loss).backward()` in a nested block (a micro-batch loop): the scaler's
    # `step(opt)` and `update()` around it are still the scaler's
    scaler: str | None = next(
        (
            code_of(_receiver(c).func.value)
            for s_ in stmts
            for c in m.findall(s_, m.Call(func=m.Attribute(attr=m.Name("backward"))))
            if m.matches(_receiver(c), m.Call(func=m.Attribute(attr=m.Name("scale"))))
        ),
        None,
    )
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
            amp = _autocast_settings(call)
            inner = list(node.body.body)
            if inner:
                inner[0] = with_comments(inner[0], carry + _block_comments(node))
                carry = []
            out += inner
            findings.append(
                Finding(
                    R.PRECISION_MAPPED,
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
                            R.PRECISION_MAPPED,
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
        out.append(comment_holder(carry))
    if scaler is not None and amp is None:
        amp = {"dtype": None, "enabled": None, "device": None, "cuda_api": True}
    if amp is not None:
        amp["scaler"] = scaler
    return out, amp, findings


def amp_device(amp: dict) -> str | None:
    """The device type the script's autocast acts on (``torch.cuda.amp.*`` -> ``"cuda"``), when
    written as a literal; None when it follows a variable."""
    if amp.get("cuda_api"):
        return "cuda"
    device = (amp.get("device") or "").strip("\"'")
    return device if device in ("cuda", "cpu") else None


def amp_precision(amp: dict, applies: str | None = None) -> str | None:
    """The Trainer precision for what autocast/GradScaler did, as code (None = cannot tell).
    ``applies``: the condition (code) under which the autocast's device is the one the model
    runs on (a CUDA autocast changes nothing on the CPU); ``"False"`` gives ``"32-true"``."""
    if applies == "False":
        return '"32-true"'
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
    conditions = [c for c in (enabled, applies) if c not in (None, "True")]
    if not conditions:
        return mixed
    return f'{mixed} if {" and ".join(conditions)} else "32-true"'


def _accumulation_k(test, loop) -> str | None:
    """K when ``test`` steps every K batches and on the epoch's last one, as
    ``Trainer(accumulate_grad_batches=K)`` does: ``(i + 1) % K == 0 or (i + 1) == len(loader)``
    (enumerate from 0; ``i % K == 0 or i == len(loader)`` from 1). A test without the last
    batch (``(i + 1) % K == 0`` alone) is not K: where len(loader) is no multiple of K the
    script carries the last batches' gradients into the next epoch and the Trainer would step
    on them; manual optimization keeps that."""
    loader, enumerated, start = _unwrap_loader(loop.iter)
    if not enumerated or not isinstance(loop.target, cst.Tuple):
        return None
    index = re.escape(code_of(loop.target.elements[0].value))
    text = code_of(test).replace(" ", "")
    length = re.escape(f"len({code_of(loader).replace(' ', '')})")
    if start in (None, "0"):
        shapes = [
            rf"\({index}\+1\)%(.+)==0or\({index}\+1\)=={length}",
            rf"\({index}\+1\)%(.+)==0or{index}=={length}-1",
        ]
    elif start == "1":
        shapes = [rf"{index}%(.+)==0or{index}=={length}"]
    else:
        return None
    for shape in shapes:
        found = re.fullmatch(shape, text)
        if found:
            return found.group(1)
    return None


def _flatten_accumulation(
    stmts: list, loop, varying: frozenset[str] = frozenset()
) -> tuple[list, str | None]:
    """``if (i + 1) % K == 0: optimizer.step(); optimizer.zero_grad()`` -> the statements
    themselves, and K for ``accumulate_grad_batches``. A K that reads a name of ``varying``
    (it changes while training runs; the Trainer reads accumulate_grad_batches once) leaves
    the ``if`` as written: manual optimization keeps it."""
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
            if candidate is not None and _used([cst.parse_expression(candidate)]) & varying:
                candidate = None
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
            R.SCALER_SHAPE,
            "manual",
            f"gradient accumulation over {k} batches without "
            f"dividing the loss by {k}: Lightning averages, the script sums; not converted",
            pos.line,
            pos.column + 1,
        )
    )


_UPDATE = m.Call(func=m.Attribute(attr=m.Name("backward") | m.Name("step") | m.Name("zero_grad")))
_BUILTINS = frozenset(
    {
        "print", "len", "float", "int", "round", "min", "max", "sum", "abs", "str", "repr",
        "format", "isinstance", "range", "enumerate", "zip", "list", "tuple", "dict", "set",
        "sorted", "any", "all", "bool", "divmod", "pow",
    }
)  # fmt: skip


def _touches_training_state(
    stmt, model_names: set[str], optimizers: set[str], per_batch: set[str] | None = None
) -> str | None:
    """What in ``stmt`` may read or change parameters, gradients or optimizer state (so it
    cannot move before the optimizer step), or None."""
    from scaffold.migrate.dataflow import block_names

    names = block_names([stmt]).reads(stmt)
    hit = sorted(names & (model_names | optimizers))
    if hit:
        return f"`{hit[0]}`"
    if m.findall(stmt, m.Attribute(attr=m.Name("grad"))):
        return "`.grad`"
    for call in m.findall(stmt, m.Call(func=m.Name())):
        if call.func.value not in _BUILTINS and not _stateless_helper(call, per_batch):
            return f"`{call.func.value}()`"
    return None


def _aliases(stmts: list, roots: set[str]) -> set[str]:
    """Names the statements bind to something reached from ``roots`` other than by calling a
    root (``logits = model(x)`` is a fresh tensor; ``w = model.fc.weight``, ``net = model.module
    if ddp else model``, ``params = list(model.parameters())`` reach the model itself), followed
    through later bindings of such names."""
    tainted = set(roots)
    for s_ in stmts:
        for node in m.findall(s_, m.Assign() | m.AugAssign() | m.AnnAssign() | m.For()):
            value = node.iter if isinstance(node, cst.For) else node.value
            if value is None or not _reaches(value, tainted):
                continue
            targets = (
                [t.target for t in node.targets] if isinstance(node, cst.Assign) else [node.target]
            )
            for t in targets:
                tainted |= _target_names(t)
    return tainted - set(roots)


def _reaches(expr, tainted: set[str]) -> bool:
    """Whether ``expr`` holds a tainted name anywhere but as the callee of a call of it
    (``model(x)``)."""
    called = {id(c.func) for c in m.findall(expr, m.Call(func=m.Name()))}
    return any(n.value in tainted and id(n) not in called for n in variable_nodes([expr]))


def _stateless_helper(call: cst.Call, per_batch: set[str] | None) -> bool:
    """``accuracy(logits, labels)``: a function of the script (or of a module beside it) that
    reads none of its module's variables, called on values of this batch only (the batch, and
    what the loop body computed from it: never a module bound before the loop, which could be
    the model under another name), so it cannot see the parameters the step changes."""
    from scaffold.migrate.helpers import located, reads_no_globals

    if per_batch is None or not _used(call.args) <= per_batch:
        return False
    found = located(call)
    return found is not None and reads_no_globals(*found)


def manual_reason(
    stmts: list,
    model_names: set[str],
    batch_names: set[str] = frozenset(),
    varying: frozenset[str] = frozenset(),
) -> str | None:
    """Why the batch's statements cannot become an automatic-optimization ``training_step``
    (which the Trainer follows with backward, clipping, step and zero_grad, in that order), or
    None. Manual optimization keeps the script's own order and is exact in all these cases.
    ``varying``: names whose value may change while training runs or that the Trainer's call
    cannot read (a clipping value reading one cannot become ``gradient_clip_val``, which the
    Trainer reads once)."""
    for s_ in stmts:
        if isinstance(s_, cst.SimpleStatementLine):
            continue
        nested = m.findall(s_, _UPDATE)
        if nested:
            return f"`{code_of(nested[0])}` runs inside a block"
    kinds = []
    for i, s_ in enumerate(stmts):
        for kind in ("zero_grad", "backward", "step"):
            call = _method_call(s_, kind)
            if call is not None:
                kinds.append((kind, i, call))
    backwards = [i for k, i, _ in kinds if k == "backward"]
    steps = [(i, c) for k, i, c in kinds if k == "step" and not c.args]
    zeros = [(i, c) for k, i, c in kinds if k == "zero_grad"]
    if len(backwards) != 1 or not steps:
        return None  # decided by the caller (several backward passes, or no step at all)
    back, first_step = backwards[0], steps[0][0]
    if first_step < back:
        # a scheduler (or an optimizer) stepped ahead of backward: the Trainer steps after it
        return f"`{code_of(steps[0][1])}` runs before backward()"
    optimizers = {_dotted(_receiver(c)) for _, c in steps} - {None}
    if not zeros:
        return "no `zero_grad()` in the batch loop (gradients add up across batches)"
    for i, call in zeros:
        if call.args and code_of(call) != code_of(call).split("(")[0] + "(set_to_none=True)":
            return f"`{code_of(call)}` (the Trainer zeroes with set_to_none=True)"
        if back < i < first_step:
            return "`zero_grad()` between backward() and step()"
    for s_ in stmts[back + 1 : first_step]:
        clipped = _clip_call(s_)
        if clipped is None and _method_call(s_, "zero_grad") is None:
            return f"`{code_of(s_).strip().splitlines()[0]}` runs between backward() and step()"
        value = clipped[0].args[1].value if clipped and len(clipped[0].args) > 1 else None
        changing = _used([value]) & varying if value is not None else set()
        if changing:
            return (
                f"the clipping value `{code_of(value)}` reads `{sorted(changing)[0]}`, which "
                "changes while training runs or is not known where the Trainer is built "
                "(Trainer(gradient_clip_val=...) is read once)"
            )
    # names the body binds to the model, a part of it or its parameters (`w = model[0].weight`,
    # `net = model.module`): reading them after the step reads the updated weights
    aliases = _aliases(stmts, set(model_names) | optimizers)
    for at in range(first_step + 1, len(stmts)):
        s_ = stmts[at]
        if _method_call(s_, "zero_grad") is not None or _method_call(s_, "step") is not None:
            continue
        per_batch = (set(batch_names) | _assigned(stmts[:at])) - aliases
        touched = _touches_training_state(s_, model_names | aliases, optimizers, per_batch)
        if touched is not None:
            return f"{touched} is used after the optimizer step"
    return None


class _ManualBackward(cst.CSTTransformer):
    """``loss.backward(...)`` -> ``self.manual_backward(loss, ...)`` at any depth; collects the
    optimizers stepped (``opt.step()`` receivers, in order)."""

    def __init__(self, scaler: str | None = None) -> None:
        self.stepped: list[str | None] = []
        self.unnamed: list[str] = []  # receivers of .step() that are no plain variable
        self.closures = False
        self.argument_steps: list[str] = []  # `x.step(args)`: a scheduler's or a closure step
        self.closure_args: list[tuple[str, str]] = []  # (receiver, name) of `x.step(name)`
        self.scaler = scaler  # a GradScaler kept as written: `scaler.step(opt)` steps `opt`

    def leave_Call(self, original, updated):
        if not isinstance(updated.func, cst.Attribute):
            return updated
        attr = updated.func.attr.value
        if attr == "step" and self.scaler and code_of(_receiver(updated)) == self.scaler:
            if len(updated.args) != 1 or updated.args[0].keyword or updated.args[0].star:
                self.closures = True
            else:
                self.stepped.append(_name_of(updated.args[0].value))
                if self.stepped[-1] is None:
                    self.unnamed.append(code_of(updated.args[0].value))
            return updated
        if attr == "step":
            if updated.args:
                receiver = _name_of(_receiver(updated))
                if receiver is None:
                    self.closures = True
                else:
                    self.argument_steps.append(receiver)
                    arg = updated.args[0] if len(updated.args) == 1 else None
                    if (
                        arg is not None
                        and isinstance(arg.value, cst.Name)
                        and (arg.keyword is None or arg.keyword.value == "closure")
                    ):
                        self.closure_args.append((receiver, arg.value.value))
            else:
                self.stepped.append(_name_of(_receiver(updated)))
                if self.stepped[-1] is None:
                    self.unnamed.append(code_of(_receiver(updated)))
        if attr != "backward":
            return updated
        args = [cst.Arg(_receiver(updated)), *updated.args]
        args = [a.with_changes(comma=cst.MaybeSentinel.DEFAULT) for a in args]
        args = [
            a.with_changes(comma=cst.Comma(whitespace_after=cst.SimpleWhitespace(" ")))
            if i < len(args) - 1
            else a
            for i, a in enumerate(args)
        ]
        return cst.Call(
            func=cst.Attribute(cst.Name("self"), cst.Name("manual_backward")), args=args
        )


def _plan_manual(
    stmts, loop, position, amp, accumulate, findings, reason=None, scaler=None
) -> StepPlan:
    """Several optimizers or backward passes per batch (GANs), or a step the Trainer cannot
    take over exactly (see ``manual_reason``): manual optimization. The zero_grad/step calls
    stay where they are, on the Trainer's optimizer wrappers; ``backward()`` becomes
    ``self.manual_backward()``."""
    pos = position(loop)
    where = (pos.line, pos.column + 1)
    if amp is not None or accumulate is not None:
        raise CannotConvert(
            Finding(
                R.UPDATE_ORDER,
                "manual",
                "manual optimization (needed here: "
                f"{reason or 'several optimizers'}) together with mixed "
                "precision or accumulation is not converted",
                *where,
            )
        )
    rewrite = _ManualBackward(scaler)
    body = [s_.visit(rewrite) for s_ in stmts]
    if rewrite.closures:
        raise CannotConvert(
            Finding(R.STEP_CLOSURE, "manual", "`step(closure)` with manual optimization", *where)
        )
    if None in rewrite.stepped:
        expr = rewrite.unnamed[0] if rewrite.unnamed else "the optimizer"
        raise CannotConvert(
            Finding(
                R.OPTIMIZER_EXPRESSION,
                "manual",
                f"manual optimization (needed here: {reason or 'several optimizers'}) hands "
                f"each optimizer over by name, and `{expr}` is no plain variable: assign it to "
                "a variable before the training loop and step that",
                *where,
            )
        )
    leaving = outside_defs(body, m.Return() | m.Yield())
    if leaving:
        raise CannotConvert(
            Finding(
                R.UNSUPPORTED_UPDATE,
                "manual",
                f"`{code_of(leaving[0]).split()[0]}` inside the batch loop",
                *where,
            )
        )
    # `continue` ends this batch's work: training_step returns
    body = transform_stmts(body, _ContinueReplacer(cst.Return()))
    optimizers = list(dict.fromkeys(n for n in rewrite.stepped if n is not None))
    why = reason or f"{len(optimizers)} optimizers"
    findings.append(
        Finding(
            R.MANUAL_OPTIMIZATION,
            FIXED,
            f"manual optimization ({why}): automatic_optimization = False, "
            "self.optimizers(), self.manual_backward; the script's own order is kept",
            *where,
        )
    )
    breaks = bool(m.findall(cst.Module(body=body), m.Break()))
    # `optimizer.step(closure)` with `def closure(): ...` earlier in the batch loop: the
    # Trainer's optimizer wrapper takes the closure as the optimizer did
    defined = {x.name.value for x in body if isinstance(x, cst.FunctionDef)}
    closure_steps = tuple(dict.fromkeys(r for r, name in rewrite.closure_args if name in defined))
    return StepPlan(
        body,
        cst.Name("None"),
        optimizers,
        [],
        None,
        breaks,
        findings,
        [],
        None,
        None,
        True,
        tuple(dict.fromkeys(rewrite.argument_steps)),
        closure_steps,
    )


def _manual_update(loop, module: cst.Module | None = None) -> tuple | None:
    """A hand-written update in the batch loop: ``with torch.no_grad():`` or ``for p in
    X.parameters():`` that reads ``.grad``, a ``with torch.no_grad():`` block updating named
    tensors in place (``w -= lr * w.grad``, from-scratch tutorials), or a call of a function of
    the script doing such an update over the parameters it receives (d2l's ``sgd([w, b], lr,
    batch_size)``). Returns (statement, parameters code: ``model.parameters()``, ``[w, b]``)."""
    for node in loop.body.body:
        helper = _update_helper(node, module) if module is not None else None
        if helper is not None:
            return node, helper
        target = node
        if isinstance(node, cst.With) and "no_grad" in code_of(node.items[0].item):
            inner = [x for x in node.body.body if isinstance(x, cst.For)]
            target = inner[0] if len(inner) == 1 else node
        if not m.findall(node, m.Attribute(attr=m.Name("grad"))):
            continue
        if (
            isinstance(target, cst.For)
            and m.matches(target.iter, m.Call(func=m.Attribute(attr=m.Name("parameters"))))
            and _writes_parameter(target)
        ):
            return node, code_of(target.iter)
        if isinstance(target, cst.With) and target is node:
            names = _tensors_updated(node)
            if names:
                return node, f"[{', '.join(names)}]"
    return None


def _update_helper(node, module: cst.Module) -> str | None:
    """``sgd([w, b], lr, batch_size)`` as a statement, where ``sgd`` is a top-level function
    of the script whose body is ``with torch.no_grad(): for p in params: p -= ... p.grad ...``
    over one of its parameters: the code of the argument passed for that parameter."""
    if not (
        isinstance(node, cst.SimpleStatementLine)
        and len(node.body) == 1
        and isinstance(node.body[0], cst.Expr)
        and isinstance(node.body[0].value, cst.Call)
        and isinstance(node.body[0].value.func, cst.Name)
    ):
        return None
    from scaffold.migrate.helpers import _top_level_def

    call = node.body[0].value
    fn = _top_level_def(module, call.func.value)
    if fn is None or not isinstance(fn.body, cst.IndentedBlock):
        return None
    body = body_without_docstring(fn)
    if len(body) != 1 or not isinstance(body[0], cst.With):
        return None
    block = body[0]
    if "no_grad" not in code_of(block.items[0].item) or not isinstance(
        block.body, cst.IndentedBlock
    ):
        return None
    inner = block.body.body
    if len(inner) != 1 or not isinstance(inner[0], cst.For):
        return None
    loop = inner[0]
    if (
        not isinstance(loop.iter, cst.Name)
        or not _writes_parameter(loop)
        or not m.findall(loop, m.Attribute(attr=m.Name("grad")))
    ):
        return None
    binding = call_bindings(fn, call)
    if not binding or loop.iter.value not in binding:
        return None
    return binding[loop.iter.value]


def _tensors_updated(block: cst.With) -> list[str] | None:
    """``with torch.no_grad(): w -= lr * w.grad; b -= lr * b.grad; w.grad.zero_()``: the names
    updated in place, in order, when every statement of the block is an in-place update of a
    name (``w -= ...``, ``w.sub_(...)``, ``w.data -= ...``) or resets a gradient
    (``w.grad.zero_()``, ``w.grad = None``), and the updates read ``.grad``; else None."""
    if not isinstance(block.body, cst.IndentedBlock):
        return None
    updated: list[str] = []
    for line in block.body.body:
        if not isinstance(line, cst.SimpleStatementLine):
            return None
        for small in line.body:
            name = _in_place_target(small)
            if name is None:
                if not _resets_grad(small):
                    return None
            elif name not in updated:
                updated.append(name)
    return updated or None


def _in_place_target(small) -> str | None:
    """``w -= ...``/``w.data -= ...``/``w.sub_(...)``/``w.data.sub_(...)``: ``w``."""
    own = m.Name() | m.Attribute(value=m.Name(), attr=m.Name("data"))

    def root(node) -> str:
        return node.value if isinstance(node, cst.Name) else node.value.value

    if isinstance(small, cst.AugAssign) and m.matches(small.target, own):
        return root(small.target)
    if (
        isinstance(small, cst.Expr)
        and isinstance(small.value, cst.Call)
        and m.matches(small.value.func, m.Attribute(value=own))
        and small.value.func.attr.value in ("sub_", "add_", "addcmul_", "addcdiv_", "mul_")
    ):
        return root(small.value.func.value)
    return None


def _resets_grad(small) -> bool:
    """``w.grad.zero_()``, ``w.grad.data.zero_()``, ``w.grad = None``."""
    grad = m.Attribute(value=m.Name(), attr=m.Name("grad"))
    if isinstance(small, cst.Expr) and m.matches(
        small.value,
        m.Call(
            func=m.Attribute(
                value=grad | m.Attribute(value=grad, attr=m.Name("data")), attr=m.Name("zero_")
            ),
            args=[],
        ),
    ):
        return True
    return (
        isinstance(small, cst.Assign)
        and len(small.targets) == 1
        and m.matches(small.targets[0].target, grad)
        and m.matches(small.value, m.Name("None"))
    )


def _writes_parameter(loop: cst.For) -> bool:
    """Whether ``for p in X.parameters():`` changes ``p``: ``p -= ...``, ``p.data = ...``,
    ``p.data.add_(...)``, ``p.copy_(...)``. A loop that only reads ``p.grad`` (collects per-sample
    gradients, norms, statistics) is no parameter update, and its loop is no training loop."""
    if not isinstance(loop.target, cst.Name):
        return False
    name = loop.target.value
    param = m.Name(name) | m.Attribute(value=m.Name(name), attr=m.Name("data"))
    if m.findall(loop.body, m.AugAssign(target=param)):
        return True
    if m.findall(loop.body, m.AssignTarget(target=param)):
        return True
    for call in m.findall(loop.body, m.Call(func=m.Attribute(value=param))):
        method = call.func.attr.value
        if method.endswith("_") and not method.startswith("_"):
            return True
    return False


def _manual_update_optimizer(
    node, cls_name: str, var: str, params_code: str, declare: tuple[str, ...] = ()
) -> list:
    """``class ManualUpdate(torch.optim.Optimizer)`` whose step runs the script's update code;
    ``declare``: ``global w, b``/``nonlocal w`` lines for the names the update assigns in place
    (``w -= ...`` inside a method would make ``w`` a local of ``step``)."""
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
    body[1:1] = [cst.parse_statement(f"{line}\n") for line in declare]
    step_fn = step_fn.with_changes(body=step_fn.body.with_changes(body=body))
    cls = cls.with_changes(body=cls.body.with_changes(body=[*cls.body.body[:2], step_fn]))
    instance = cst.parse_statement(f"{var} = {cls_name}({params_code})\n")
    return [cls, instance.with_changes(leading_lines=[cst.EmptyLine(indent=False)] * 2)]


def _flatten_closure(stmts: list, loop, position) -> tuple[list, str | None]:
    """``def closure(): ...; optimizer.step(closure)`` (LBFGS and friends) -> the closure's body
    as the step: Lightning builds the closure around training_step and may call it repeatedly,
    as the optimizer did with the script's closure. With code after the step (an evaluation
    each step) the statements stay as they are, with the reason manual optimization keeps
    them: (statements, that reason or None)."""
    defs = {x.name.value: i for i, x in enumerate(stmts) if isinstance(x, cst.FunctionDef)}
    for i, node in enumerate(stmts):
        call = _method_call(node, "step")
        if call is None or len(call.args) != 1 or not isinstance(call.args[0].value, cst.Name):
            continue
        name = call.args[0].value.value
        pos = position(loop)
        where = (pos.line, pos.column + 1)
        if name in defs and defs[name] < i and stmts[i + 1 :]:
            return stmts, f"`{code_of(call)}` is followed by more code in the batch loop"
        if name not in defs or defs[name] > i:
            raise CannotConvert(
                Finding(
                    R.STEP_CLOSURE,
                    "manual",
                    "`step(closure)` with a closure defined elsewhere (or after the step) is "
                    "not converted",
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
                    R.STEP_CLOSURE,
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
                Finding(
                    R.STEP_CLOSURE, "manual", "the closure must end with `return <loss>`", *where
                )
            )
        body = body[:-1]
        if not any(_method_call(x, "backward") for x in body):
            raise CannotConvert(
                Finding(R.STEP_CLOSURE, "manual", "the closure must call backward()", *where)
            )
        step = node.with_changes(body=[cst.Expr(cst.Call(func=call.func))])
        lead = with_comments(body[0], comments_of(fn)) if body else None
        if lead is not None:
            body[0] = lead
        # the closure returns ``loss``: make sure backward() sees that name
        return [*before, *body, step], None
    return stmts, None


def plan_step(
    site: Site,
    position,
    model_names: set[str],
    own_steps: tuple[str, ...] = (),
    varying: frozenset[str] = frozenset(),
    closure_free: str | None = None,
) -> StepPlan:
    """The training step for the batch loop: automatic optimization when the loop is the
    textbook zero_grad/backward/step sequence, manual optimization (the script's order kept)
    when ``manual_reason`` finds something automatic optimization would reorder."""
    loop = site.batch_for
    stmts, amp, amp_findings = _flatten_amp(split_lines(loop.body.body), position, loop)
    findings = list(amp_findings)
    stmts, accumulate = _flatten_accumulation(stmts, loop, varying)
    stmts, kept_closure = _flatten_closure(stmts, loop, position)
    stmts, returns, nested = returns_as_breaks(stmts)
    if nested:
        pos = position(loop)
        raise CannotConvert(
            Finding(
                R.UNSUPPORTED_UPDATE,
                MANUAL,
                "`return` inside a loop nested in the batch loop is not converted",
                pos.line,
                pos.column + 1,
            )
        )
    if closure_free is not None and kept_closure is None:
        # the Trainer's automatic step runs training_step inside optimizer.step(closure)
        kept_closure = closure_free
    if own_steps:
        # SAM-style steps (`optimizer.first_step()`, `second_step()`): manual optimization keeps
        # the calls as written, on the Trainer's wrapper of that optimizer
        called = ", ".join(f"`{n}`" for n in own_steps)
        kept_closure = f"{called} stepped through methods of its own"
    plan = _plan_step(
        stmts, loop, position, model_names, amp, findings, accumulate, kept_closure, varying
    )
    if own_steps:
        plan.optimizers = [*plan.optimizers, *(n for n in own_steps if n not in plan.optimizers)]
    if returns:
        plan.returns = True
        plan.breaks = True
    return plan


def _plan_step(
    stmts, loop, position, model_names, amp, findings, accumulate, kept_closure, varying
):
    backwards = [x for x in stmts if _method_call(x, "backward")]
    owners = {_dotted(_receiver(c)) for x in stmts if (c := _method_call(x, "step")) and not c.args}
    reason = kept_closure
    if reason is None and not (len(backwards) > 1 and len(owners) > 1):
        reason = manual_reason(stmts, model_names, _target_names(loop.target), varying)
    if (len(backwards) > 1 and len(owners) > 1) or reason is not None:
        if amp is not None and accumulate is None:
            # the script's own autocast and GradScaler stay, as written, in a training_step
            # that steps by hand (the Trainer adds no precision of its own)
            kept = split_lines(loop.body.body)
            pos = position(loop)
            note = Finding(
                R.MANUAL_OPTIMIZATION,
                FIXED,
                "mixed precision kept as the script wrote it (autocast and "
                f"`{amp.get('scaler') or 'GradScaler'}` calls in training_step); the Trainer "
                "runs at 32-bit precision",
                pos.line,
                pos.column + 1,
            )
            return _plan_manual(
                kept, loop, position, None, None, [note], reason, scaler=amp.get("scaler")
            )
        return _plan_manual(stmts, loop, position, amp, accumulate, findings, reason)
    steps = [i for i, x in enumerate(stmts) if _method_call(x, "step") is not None]
    breaking = [i for i, x in enumerate(stmts) if own_breaks([x])]
    if steps and breaking and breaking[0] < steps[-1]:
        # the Trainer steps after training_step returns, also in the iteration that breaks
        pos = position(stmts[breaking[0]])
        raise CannotConvert(
            Finding(
                R.BREAK_POSITION,
                MANUAL,
                "`break` before the optimizer step in the batch loop: the Trainer would still "
                "step on the batch that breaks; move the check after the step, or convert by hand",
                pos.line,
                pos.column + 1,
            )
        )
    auto = _AutoStep(stmts, model_names, _target_names(loop.target), findings)
    for stmt in stmts:
        pos = position(stmt)
        auto.take(stmt, (pos.line, pos.column + 1))
    pos = position(loop)
    return auto.finish(loop, (pos.line, pos.column + 1), amp, accumulate, position)


@dataclass
class _AutoStep:
    """The automatic-optimization step, assembled statement by statement: zero_grad, backward,
    step, clipping and batch transfers are taken out (the Trainer does them); everything else
    stays in order, with the comments of what was taken out."""

    stmts: list
    model_names: set[str]
    batch_names: set[str]
    findings: list[Finding]
    body: list = field(default_factory=list)
    optimizers: list[str] = field(default_factory=list)
    schedulers: list[str] = field(default_factory=list)
    loss: cst.BaseExpression | None = None
    clip: tuple[str, str] | None = None
    stepped: bool = False
    pending: list = field(default_factory=list)  # comments of removed statements

    def fixed(self, rule: str, message: str, here) -> None:
        self.findings.append(Finding(rule, FIXED, message, *here))

    def take(self, stmt, here) -> None:
        zero = _method_call(stmt, "zero_grad")
        backward = _method_call(stmt, "backward")
        step = _method_call(stmt, "step")
        clipped = _clip_call(stmt)
        transfer = _is_batch_transfer(stmt, self.batch_names)
        if zero is not None or backward is not None or step is not None or clipped or transfer:
            self.pending += comments_of(stmt)
        if zero is not None:
            self.fixed(
                R.OPTIMIZATION_REMOVED,
                f"`{code_of(zero)}` removed: the Trainer zeroes gradients",
                here,
            )
        elif backward is not None:
            self.backward(stmt, backward, here)
        elif step is not None:
            self.step(step, here)
        elif clipped is not None:
            self.clipping(*clipped, here)
        elif transfer:
            self.fixed(
                R.BATCH_TRANSFER_REMOVED,
                "batch transfer removed: the Trainer moves batches to the device",
                here,
            )
        else:
            self.body.append(with_comments(stmt, self.pending))
            self.pending = []

    def backward(self, stmt, backward, here) -> None:
        if self.loss is not None:
            raise CannotConvert(
                Finding(
                    R.UPDATE_ORDER,
                    MANUAL,
                    "several backward() calls per batch "
                    "(e.g. a GAN) need manual optimization; not converted yet",
                    *here,
                )
            )
        if backward.args:
            raise CannotConvert(
                Finding(
                    R.BACKWARD_ARGUMENTS,
                    MANUAL,
                    "backward() with arguments is not converted",
                    *here,
                )
            )
        loss = _receiver(backward)
        later = self.stmts[self.stmts.index(stmt) + 1 :]
        if not isinstance(loss, cst.Name) or loss.value in _assigned(later):
            # keep the value the loss had at backward() time
            assign = cst.Assign(targets=[cst.AssignTarget(cst.Name("step_loss"))], value=loss)
            self.body.append(with_comments(cst.SimpleStatementLine(body=[assign]), self.pending))
            self.pending = []
            loss = cst.Name("step_loss")
        self.loss = loss
        self.fixed(
            R.OPTIMIZATION_REMOVED, "`backward()` removed: training_step returns the loss", here
        )

    def step(self, step, here) -> None:
        owner = _dotted(_receiver(step))
        if step.args:
            raise CannotConvert(
                Finding(
                    R.STEP_CLOSURE, MANUAL, "`step(closure)` (LBFGS) is not converted yet", *here
                )
            )
        if self.stepped or self.loss is None:
            if owner is not None and self.stepped:
                # a second step() after the optimizer's: a per-batch scheduler
                self.schedulers.append(owner)
                self.fixed(
                    R.SCHEDULER_MOVED,
                    f"per-batch `{owner}.step()` moved to configure_optimizers (interval='step')",
                    here,
                )
                return
            raise CannotConvert(
                Finding(R.STEP_BEFORE_BACKWARD, MANUAL, "optimizer step before backward()", *here)
            )
        if owner is None:
            raise CannotConvert(
                Finding(
                    R.OPTIMIZER_EXPRESSION, MANUAL, "the optimizer must be a plain variable", *here
                )
            )
        self.optimizers.append(owner)
        self.stepped = True
        self.fixed(
            R.OPTIMIZATION_REMOVED,
            f"`{owner}.step()` removed: the Trainer steps the optimizer",
            here,
        )

    def clipping(self, call, algo: str, here) -> None:
        args = call.args
        params = code_of(args[0].value) if args else ""
        if (
            params not in {f"{n}.parameters()" for n in self.model_names}
            or len(args) < 2
            or (len(args) > 2 and code_of(args[2].value) not in ("2", "2.0"))
        ):
            raise CannotConvert(
                Finding(
                    R.UNKNOWN_IN_STEP,
                    MANUAL,
                    "gradient clipping of something other than "
                    "all the model's parameters (2-norm) is not converted",
                    *here,
                )
            )
        self.clip = (code_of(args[1].value), algo)
        self.fixed(
            R.GRADIENT_CLIPPING,
            f"`{code_of(call.func)}` mapped to Trainer(gradient_clip_algorithm={algo!r})",
            here,
        )

    def finish(self, loop, where, amp, accumulate, position) -> StepPlan:
        """The checks that need the whole loop, then the plan."""
        if self.loss is None or not self.optimizers:
            raise CannotConvert(
                Finding(
                    R.NO_STEP,
                    MANUAL,
                    "backward() and optimizer.step() must be "
                    "statements of the batch loop itself (not inside if/with blocks)",
                    *where,
                )
            )
        if len(set(self.optimizers)) > 1:
            raise CannotConvert(
                Finding(
                    R.UPDATE_ORDER,
                    MANUAL,
                    "several optimizers step per batch; manual optimization is not converted yet",
                    *where,
                )
            )
        body, loss = self.body, self.loss
        breaks = bool(m.findall(cst.Module(body=body), m.Break()))
        for bad, code in (
            (m.Continue(), "`continue`"),
            (m.Return(), "`return`"),
            (m.Yield(), "`yield`"),
        ):
            if m.findall(cst.Module(body=body), bad):
                raise CannotConvert(
                    Finding(
                        R.UNSUPPORTED_UPDATE,
                        MANUAL,
                        f"{code} inside the batch loop is not converted",
                        *where,
                    )
                )
        if accumulate is not None:
            body, loss = _undo_loss_division(body, loss, accumulate, position, loop)
            self.fixed(
                R.ACCUMULATION_MAPPED,
                f"gradient accumulation mapped to Trainer(accumulate_grad_batches={accumulate}) "
                "(the script steps on each epoch's last batch too, as the Trainer does); the "
                "manual loss division is kept for what the script prints, the Trainer divides "
                "the returned loss",
                where,
            )
        return StepPlan(
            body,
            loss,
            self.optimizers,
            self.schedulers,
            self.clip,
            breaks,
            self.findings,
            self.pending,
            amp,
            accumulate,
        )
