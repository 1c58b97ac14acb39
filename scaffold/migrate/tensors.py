"""Optimizers over the script's own tensors: ``SGD([w, b], lr=lr)``.

From-scratch tutorials and older research code train plain tensors made to require grad
(``w = torch.randn(3, requires_grad=True)``, ``Variable(..., requires_grad=True)``,
``nn.Parameter(...)``), listed directly or through a list variable (``params = [W1, b1]``,
``G_params + D_params``). There is no module to hand the Trainer; the LightningModule holds
none and ``configure_optimizers`` returns the script's optimizer over the very same tensor
objects, which the script's own functions keep reading as globals. Wrapping them in
``nn.Parameter`` or an ``nn.ParameterList`` would make new tensors: the script's functions
would compute gradients for the old ones while the optimizer stepped the new ones.

Only where each tensor can be followed: bound once, by a plain assignment at the top of the
loop's scope or of the module, to an expression that makes it require grad, and never declared
``global`` by a function (which could rebind it).
"""

from __future__ import annotations

import libcst as cst

import scaffold.migrate.match as m
from scaffold.migrate.dataflow import declared_global, target_names, written
from scaffold.migrate.names import qualified
from scaffold.migrate.syntax import _assignment_value, code_of
from scaffold.migrate.walk import walk

_PARAMETER = ("torch.nn.Parameter", "torch.nn.parameter.Parameter")


def trained_tensors(construction, scope_bodies: list, module: cst.Module) -> list[str] | None:
    """The names an optimizer construction trains when they are the script's own tensors:
    the list variables first, then the tensors, in order; None when it takes anything else
    (a module's parameters, parameter groups, an expression this cannot follow)."""
    found = _listed(construction, scope_bodies)
    if found is None or _problem(*found, scope_bodies, module) is not None:
        return None
    tensors, containers = found
    return list(dict.fromkeys([*containers, *tensors]))


def why_not(construction, scope_bodies: list, module: cst.Module) -> str | None:
    """Why an optimizer over a list of the script's names is not followed (true for the file
    at hand), or None when the construction is no such list."""
    found = _listed(construction, scope_bodies)
    return None if found is None else _problem(*found, scope_bodies, module)


def _listed(construction, scope_bodies: list) -> tuple[list[str], list[str]] | None:
    """(tensor names, list variable names) of ``Opt([w, b], ...)``/``Opt(params, ...)``."""
    if not isinstance(construction, cst.Call) or not construction.args:
        return None
    first = construction.args[0]
    if first.star or (first.keyword is not None and first.keyword.value != "params"):
        return None
    bodies = _distinct(scope_bodies)
    tensors: list[str] = []
    containers: list[str] = []
    if not _collect(first.value, bodies, tensors, containers, depth=0) or not tensors:
        return None
    return tensors, containers


def _problem(tensors, containers, scope_bodies, module) -> str | None:
    bodies = _distinct(scope_bodies)
    rebinding = set().union(
        *(
            declared_global(fn.body.body)
            for fn in m.findall(module, m.FunctionDef())
            if isinstance(fn.body, cst.IndentedBlock)
        )
    )
    for name in [*containers, *tensors]:
        if name in rebinding:
            return f"a function declares `global {name}` and may rebind it"
        count = _bindings(name, bodies)
        if count != 1:
            return (
                f"`{name}` is bound {count} times (the optimizer keeps the first tensor while "
                "the code reading the name may see another)"
                if count
                else f"`{name}` is not bound by a plain assignment in this scope or the module"
            )
    for name in tensors:
        value = _value(name, bodies)
        if not _requires_grad(value, module) and not _made_to_require_grad(name, bodies):
            return (
                f"`{name} = {code_of(value)[:50]}` is not made to require grad where it is "
                "bound (`requires_grad=True`, `.requires_grad_()` or `nn.Parameter(...)`)"
            )
    return None


def devices_named(names: list[str], scope_bodies: list) -> bool:
    """Whether any of these tensors is made with a device (``device=``, ``.to(...)``,
    ``.cuda()``): the Trainer's accelerator then follows the tensor's own device."""
    bodies = _distinct(scope_bodies)
    placed = m.Call(func=m.Attribute(attr=m.Name("to") | m.Name("cuda")))
    for name in names:
        value = _value(name, bodies)
        if value is None:
            continue
        if m.findall(value, placed) or any(
            a.keyword is not None and a.keyword.value == "device"
            for c in m.findall(value, m.Call())
            for a in c.args
        ):
            return True
    return False


def _distinct(scope_bodies: list) -> list:
    """The loop's scope and the module, once each (the same list when the loop is at module
    level)."""
    return list({id(b): b for b in scope_bodies}.values())


def _value(name: str, bodies: list):
    for body in bodies:
        value = _assignment_value(body, name)
        if value is not None:
            return value
    return None


def _bindings(name: str, bodies: list) -> int:
    """How many statements of the innermost scope binding ``name`` bind it (loops and blocks
    included; the loop's scope comes first, and a name it binds shadows the module's); a
    plain assignment must be one of them. ``w -= lr * w.grad`` does not count: on a tensor an
    augmented assignment updates it in place and binds the same object again."""
    for body in bodies:
        count = sum(1 for s in body if name in written([s]) and not _only_in_place(s, name))
        if count:
            return count if _assignment_value(body, name) is not None else 0
    return 0


def _only_in_place(stmt, name: str) -> bool:
    """Whether every binding of ``name`` in ``stmt`` is an augmented assignment of it."""
    if not m.findall(stmt, m.AugAssign(target=m.Name(name))):
        return False
    for node in walk(stmt):
        if isinstance(node, cst.AssignTarget) and name in target_names(node.target):
            return False
        if isinstance(node, cst.AnnAssign) and name in target_names(node.target):
            return False
        if isinstance(node, (cst.For, cst.CompFor)) and name in target_names(node.target):
            return False
        if isinstance(node, cst.NamedExpr) and name in target_names(node.target):
            return False
        if isinstance(node, cst.AsName) and name in target_names(node.name):
            return False
        if isinstance(node, cst.Del) and name in target_names(node.target):
            return False
        if isinstance(node, (cst.FunctionDef, cst.ClassDef)) and node.name.value == name:
            return False
        if (
            isinstance(node, cst.ImportAlias)
            and node.asname is None
            and code_of(node.name).split(".")[0] == name
        ):
            return False
    return True


def _made_to_require_grad(name: str, bodies: list) -> bool:
    """``w = torch.randn(3) / 3`` followed, at the top of the same scope, by
    ``w.requires_grad_()`` or ``w.requires_grad = True`` (PyTorch's "what is torch.nn
    really" tutorial)."""
    flag = m.Call(func=m.Attribute(value=m.Name(name), attr=m.Name("requires_grad_")), args=[])
    for body in bodies:
        for s in body:
            if not isinstance(s, cst.SimpleStatementLine):
                continue
            for small in s.body:
                if isinstance(small, cst.Expr) and m.matches(small.value, flag):
                    return True
                if (
                    isinstance(small, cst.Assign)
                    and len(small.targets) == 1
                    and m.matches(
                        small.targets[0].target,
                        m.Attribute(value=m.Name(name), attr=m.Name("requires_grad")),
                    )
                    and m.matches(small.value, m.Name("True"))
                ):
                    return True
    return False


def _collect(expr, bodies: list, tensors: list, containers: list, depth: int) -> bool:
    """``[w, b]``, ``(w, b)``, ``params`` (bound to such a list), ``a + b``, ``list(x)``."""
    if depth > 3:
        return False
    if isinstance(expr, (cst.List, cst.Tuple)):
        for el in expr.elements:
            if not isinstance(el, cst.Element) or not isinstance(el.value, cst.Name):
                return False
            tensors.append(el.value.value)
        return True
    if isinstance(expr, cst.BinaryOperation) and isinstance(expr.operator, cst.Add):
        return _collect(expr.left, bodies, tensors, containers, depth + 1) and _collect(
            expr.right, bodies, tensors, containers, depth + 1
        )
    if (
        isinstance(expr, cst.Call)
        and m.matches(expr.func, m.Name("list") | m.Name("tuple"))
        and len(expr.args) == 1
        and expr.args[0].keyword is None
        and not expr.args[0].star
    ):
        return _collect(expr.args[0].value, bodies, tensors, containers, depth + 1)
    if isinstance(expr, cst.Name):
        value = _value(expr.value, bodies)
        if value is None or not isinstance(value, (cst.List, cst.Tuple, cst.BinaryOperation)):
            return False
        containers.append(expr.value)
        return _collect(value, bodies, tensors, containers, depth + 1)
    return False


def _requires_grad(value, module: cst.Module, depth: int = 0) -> bool:
    """``torch.zeros(3, requires_grad=True)``, ``Variable(x, requires_grad=True)``,
    ``torch.randn(3).requires_grad_()``, ``nn.Parameter(...)``, or a call of a function of the
    script whose every ``return`` is one of those (``xavier_init(size)``)."""
    if not isinstance(value, cst.Call):
        return False
    if any(
        a.keyword is not None
        and a.keyword.value == "requires_grad"
        and m.matches(a.value, m.Name("True"))
        for a in value.args
    ):
        return True
    if m.matches(value.func, m.Attribute(attr=m.Name("requires_grad_"))) and not any(
        a.keyword is None and not m.matches(a.value, m.Name("True")) for a in value.args
    ):
        return True
    if qualified(value) in _PARAMETER or code_of(value.func) in ("nn.Parameter", "Parameter"):
        return True
    if depth == 0 and isinstance(value.func, cst.Name):
        from scaffold.migrate.helpers import _top_level_def

        fn = _top_level_def(module, value.func.value)
        if fn is None:
            return False
        returns = [r for r in m.findall(fn, m.Return()) if not _nested_return(fn, r)]
        return bool(returns) and all(
            r.value is not None and _requires_grad(r.value, module, depth + 1) for r in returns
        )
    return False


def _nested_return(fn: cst.FunctionDef, ret: cst.Return) -> bool:
    """Whether ``ret`` belongs to a function or class nested in ``fn``."""
    for inner in m.findall(fn.body, m.FunctionDef() | m.Lambda()):
        if any(r is ret for r in m.findall(inner, m.Return())):
            return True
    return False
