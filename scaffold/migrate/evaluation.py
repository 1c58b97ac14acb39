"""Evaluation helpers -> ``validation_step`` / ``test_step``.

When the first thing an epoch does after training is to call an evaluation helper such as

    def test(model, device, loader):
        model.eval(); total = 0
        with torch.no_grad():
            for x, y in loader:
                total += loss_fn(model(x), y).item()
        total /= len(loader.dataset); print(...); return total

the helper becomes the module's validation hooks: the statements before its loop run in
``on_validation_epoch_start``, the loop body in ``validation_step``, the statements after it (and
the returned value) in ``on_validation_epoch_end``. The Trainer validates exactly where the
script evaluated (after each training epoch, before the rest of the epoch's code), so the
numbers stay the same. Anything less clear-cut is left as a plain call (still exact).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import libcst as cst

import scaffold.migrate.match as m
from scaffold.migrate.names import is_no_grad
from scaffold.migrate.step import _is_batch_transfer
from scaffold.migrate.syntax import (
    _assigned,
    _bound_names,
    _simple,
    _target_names,
    _unwrap_loader,
    _used,
    batch_unpack,
    body_without_docstring,
    call_bindings,
    calls_of,
    code_of,
    comment_holder,
    comments_of,
    with_comments,
)


@dataclass
class ValPlan:
    fn: cst.FunctionDef
    call_stmt: cst.SimpleStatementLine
    target: str | None
    loader_code: str
    bindings: list[str]
    pre: list
    unpack: list[str]
    body: list
    post: list
    returned: cst.BaseExpression | None
    local_shared: set[str]
    comments: list  # the helper's own comment lines (kept when the helper is removed)
    keep_function: bool = False
    inline: bool = False  # written in the epoch loop itself (no helper function)
    rest: list | None = None  # inline: the epoch's statements after the evaluation loop
    calls_eval: bool = True  # the evaluation code switches the model to eval mode itself
    lead: list = field(default_factory=list)  # epoch statements run just before the helper
    # the comments above the helper's call (`# evaluate on validation set`): they open the
    # validation hooks, where the call went
    call_comments: list = field(default_factory=list)


def _no_grad_loop(node) -> cst.For | None:
    """The loop of ``with torch.no_grad(): for ...`` (one statement in the block), or None."""
    if (
        isinstance(node, cst.With)
        and len(node.items) == 1
        and is_no_grad(node.items[0].item)
        and isinstance(node.body, cst.IndentedBlock)
        and len(node.body.body) == 1
        and isinstance(node.body.body[0], cst.For)
    ):
        return node.body.body[0]
    return None


def _eval_body(loop: cst.For, leading: list) -> list:
    batch_names = _target_names(loop.target)
    body, carry = [], []
    for stmt in loop.body.body:
        if _is_batch_transfer(stmt, batch_names):
            carry += comments_of(stmt)
            continue
        body.append(with_comments(stmt, carry) if carry else stmt)
        carry = []
    if carry:
        body.append(comment_holder(carry))
    if body:
        body[0] = with_comments(body[0], leading)
    return body


_EVAL_CALL = m.Call(func=m.Attribute(attr=m.Name("eval")))
_TRAINING = m.Call(func=m.Attribute(attr=m.Name("backward") | m.Name("step")))


def plan_inline_validation(epoch_post: list, fn_post: list) -> ValPlan | None:
    """Evaluation written in the epoch loop after the batch loop::

        model.eval(); val_loss = 0              # -> on_validation_epoch_start
        with torch.no_grad():
            for x, y in val_loader:             # -> validation_step
                val_loss += loss_fn(model(x), y).item()
        val_loss /= len(val_loader)             # the rest stays in on_train_epoch_end

    The Trainer runs these hooks right after the training batches, before on_train_epoch_end,
    which is where the script ran them."""
    if fn_post or not epoch_post:
        return None
    k = next((i for i, node in enumerate(epoch_post) if _no_grad_loop(node) is not None), None)
    if k is None or not all(isinstance(n, cst.SimpleStatementLine) for n in epoch_post[:k]):
        return None
    loop = _no_grad_loop(epoch_post[k])
    pre = list(epoch_post[:k])
    if m.findall(cst.Module(body=pre), m.Break() | m.Continue() | m.Return() | m.Yield()):
        return None
    if loop.orelse is not None or m.findall(
        loop.body, m.Break() | m.Continue() | m.Return() | m.Yield() | _TRAINING
    ):
        return None
    loader, _, _ = _unwrap_loader(loop.iter)
    if not isinstance(loader, (cst.Name, cst.Attribute)):
        return None
    unpack = batch_unpack(loop)
    if unpack is None:
        return None
    node = epoch_post[k]
    leading = comments_of(node)
    if node.body.header.comment is not None:
        leading.append(cst.EmptyLine(comment=node.body.header.comment))
    leading += [ln for ln in loop.leading_lines if ln.comment is not None]
    if loop.body.header.comment is not None:
        leading.append(cst.EmptyLine(comment=loop.body.header.comment))
    body = _eval_body(loop, leading)
    if not body and leading:
        body = [comment_holder(leading)]
    return ValPlan(
        None,
        node,
        None,
        code_of(loader),
        [],
        pre,
        unpack,
        body,
        [],
        None,
        set(),
        [],
        False,
        inline=True,
        rest=list(epoch_post[k + 1 :]),
        calls_eval=bool(m.findall(cst.Module(body=pre), _EVAL_CALL)),
    )


def _single_call(stmt) -> tuple[str, cst.Call, str | None] | None:
    if not isinstance(stmt, cst.SimpleStatementLine) or len(stmt.body) != 1:
        return None
    small = stmt.body[0]
    if isinstance(small, cst.Expr) and isinstance(small.value, cst.Call):
        call, target = small.value, None
    elif (
        isinstance(small, cst.Assign)
        and len(small.targets) == 1
        and isinstance(small.targets[0].target, cst.Name)
        and isinstance(small.value, cst.Call)
    ):
        call, target = small.value, small.targets[0].target.value
    else:
        return None
    if not isinstance(call.func, cst.Name):
        return None
    return call.func.value, call, target


def _split_body(fn: cst.FunctionDef):
    """(pre, loop, post, comments) when the helper is pre + [with no_grad:] for-loop + post."""
    body = body_without_docstring(fn)
    decorated = any(is_no_grad(d.decorator) for d in fn.decorators)
    if fn.decorators and not decorated:
        return None
    for i, node in enumerate(body):
        comments: list = []
        loop = None
        if isinstance(node, cst.With) and len(node.items) == 1 and is_no_grad(node.items[0].item):
            inner = list(node.body.body)
            if len(inner) == 1 and isinstance(inner[0], cst.For):
                loop = inner[0]
                comments = comments_of(node)
                if node.body.header.comment is not None:
                    comments.append(cst.EmptyLine(comment=node.body.header.comment))
        elif isinstance(node, cst.For) and decorated:
            loop = node
        if loop is not None:
            return body[:i], loop, body[i + 1 :], comments
    return None


def plan_validation(module: cst.Module, epoch_post: list, fn_post: list) -> ValPlan | None:
    """The first helper call after the batch loop; simple statements before it (a print, a
    timer) run first in on_validation_epoch_start, which is when the script ran them."""
    if fn_post:
        return None
    for k, node in enumerate(epoch_post):
        plan = plan_evaluation(module, node)
        if plan is not None:
            plan.lead = list(epoch_post[:k])
            plan.call_comments = comments_of(node)
            return plan
        if not isinstance(node, cst.SimpleStatementLine) or m.findall(
            node, m.Break() | m.Continue() | m.Return() | m.Yield() | _TRAINING
        ):
            return None
    return None


def plan_evaluation(module: cst.Module, call_stmt) -> ValPlan | None:
    """The hooks an evaluation helper called by ``call_stmt`` becomes, or None."""
    found = _single_call(call_stmt)
    if found is None:
        return None
    name, call, target = found
    fns = [s for s in module.body if isinstance(s, cst.FunctionDef) and s.name.value == name]
    if len(fns) != 1:
        return None
    # called elsewhere too (e.g. a final evaluation): the function stays, only this call goes
    keep_function = calls_of(module, name) > 1
    fn = fns[0]
    if m.findall(fn, m.Call(func=m.Attribute(attr=m.Name("backward") | m.Name("step")))):
        return None
    split = _split_body(fn)
    if split is None:
        return None
    pre, loop, post, comments = split
    if loop.orelse is not None or m.findall(
        loop.body, m.Break() | m.Continue() | m.Return() | m.Yield()
    ):
        return None
    returned = None
    if post and m.matches(post[-1], m.SimpleStatementLine(body=[m.Return()])):
        returned = post[-1].body[0].value
        post = post[:-1]
    if m.findall(cst.Module(body=[*pre, *post]), m.Return() | m.Yield()):
        return None
    if target is not None and returned is None:
        return None
    # parameters -> call arguments (simple ones only: they are re-read in several hooks)
    params = fn.params
    mapping = call_bindings(fn, call)
    if mapping is None:
        return None
    everything = [*pre, loop, *post] + (
        [cst.SimpleStatementLine([cst.Expr(returned)])] if returned is not None else []
    )
    used = _used(everything)
    bindings = []
    for p in params.params:
        pname = p.name.value
        if pname not in used:
            continue
        if pname not in mapping or not _simple(mapping[pname]):
            return None
        if mapping[pname] != pname:
            bindings.append(f"{pname} = {mapping[pname]}")
    loader, _, _ = _unwrap_loader(loop.iter)
    if not isinstance(loader, cst.Name):
        return None
    loader_code = mapping.get(loader.value, loader.value)
    unpack = batch_unpack(loop)
    if unpack is None:
        return None
    body = _eval_body(loop, comments)
    a_pre, a_body = _assigned(pre), _assigned(body) | _bound_names(loop.target)
    u_body, u_post = (
        _used(body),
        _used(post) | (_used([everything[-1]]) if returned is not None else set()),
    )
    local_shared = (a_pre & (u_body | u_post)) | (a_body & u_post) | (a_body & a_pre)
    local_shared -= set(mapping)
    header = [ln for ln in fn.leading_lines if ln.comment is not None]
    if fn.body.header.comment is not None:
        header.append(cst.EmptyLine(comment=fn.body.header.comment))
    header += [ln for ln in loop.leading_lines if ln.comment is not None]
    if loop.body.header.comment is not None:
        header.append(cst.EmptyLine(comment=loop.body.header.comment))
    return ValPlan(
        fn,
        call_stmt,
        target,
        loader_code,
        bindings,
        pre,
        unpack,
        body,
        post,
        returned,
        local_shared,
        header,
        keep_function,
        calls_eval=bool(m.findall(fn, _EVAL_CALL)),
    )
