"""Hand-written trainer classes (``class Trainer`` with ``_run_batch`` / ``_run_epoch`` /
``train`` methods, as in the DDP tutorial series): the methods that the training method calls on
``self`` and that take part in training are inlined into it, and inside it the trainer object is
read through a local alias (``runner = self``), because the LightningModule defined there has a
``self`` of its own. The loop converter then sees one method with nested loops, like a
``main()`` function, and converts it in place; the class keeps its other methods
(checkpointing, evaluation, ``__init__``), so code that builds and calls the trainer keeps working.

What it cannot inline (early or nested ``return``, ``yield``, star arguments, decorators) leaves
the class alone; the engine then reports it (SCF326)."""

from __future__ import annotations

from dataclasses import dataclass

import libcst as cst

import scaffold.migrate.match as m
from scaffold.migrate.dataflow import written
from scaffold.migrate.inline import inline_call, split_return
from scaffold.migrate.syntax import (
    _fresh,
    _Renamer,
    _used,
    body_without_docstring,
    call_bindings,
    code_of,
)

_TRAINING_CALL = m.Call(func=m.Attribute(attr=m.Name("backward") | m.Name("step")))


@dataclass
class ClassPlan:
    module: cst.Module
    cls_name: str
    method: str
    inlined: list[str]
    alias: str
    model: str | None  # e.g. "runner.model"
    device: str | None  # e.g. "runner.gpu_id"
    trained: dict | None = None  # local optimizer name -> local model names (several optimizers)


def _is_trainer_class(cls: cst.ClassDef) -> bool:
    bases = " ".join(code_of(b.value) for b in cls.bases)
    return "Module" not in bases and bool(m.findall(cls, _TRAINING_CALL))


def _loops_training(body: list) -> bool:
    """Whether a ``for``/``while`` loop of the flattened training method calls backward or
    step: only then is the class the script's trainer."""
    loops = m.findall(cst.Module(body=body), m.For() | m.While())
    return any(m.findall(loop, _TRAINING_CALL) for loop in loops)


def _is_self_method_call(node, methods: dict) -> bool:
    return (
        isinstance(node, cst.Call)
        and isinstance(node.func, cst.Attribute)
        and isinstance(node.func.value, cst.Name)
        and node.func.value.value == "self"
        and node.func.attr.value in methods
    )


def _self_call(stmt, methods: dict, training: set[str]):
    """``(method, call, target, rest)`` for a statement calling a training method of the class:
    ``self.m(...)`` (target None), ``x = self.m(...)`` (target x), or a statement using the
    call's value once (``total += self.m(...)``: rest is the statement, the call to be replaced
    by a variable holding the result)."""
    if not isinstance(stmt, cst.SimpleStatementLine) or len(stmt.body) != 1:
        return None
    small = stmt.body[0]
    if isinstance(small, cst.Expr) and _is_self_method_call(small.value, methods):
        call, target, rest = small.value, None, None
    elif (
        isinstance(small, cst.Assign)
        and len(small.targets) == 1
        and _is_self_method_call(small.value, methods)
    ):
        call, target, rest = small.value, small.targets[0].target, None
    else:
        calls = [
            c
            for c in m.findall(small, m.Call(func=m.Attribute(value=m.Name("self"))))
            if _is_self_method_call(c, methods) and c.func.attr.value in training
        ]
        if len(calls) != 1:
            return None
        call, target, rest = calls[0], None, small
    if call.func.attr.value not in training:
        return None
    return call.func.attr.value, call, target, rest


class _ReplaceNode(cst.CSTTransformer):
    def __init__(self, old, new) -> None:
        self.old, self.new = old, new

    def on_leave(self, original, updated):
        return self.new if original is self.old else updated


def _training_methods(methods: dict) -> set[str]:
    """Methods that call backward()/step() themselves or through other methods of the class."""
    calls = {
        name: {
            c.func.attr.value
            for c in m.findall(fn, m.Call(func=m.Attribute(value=m.Name("self"))))
            if c.func.attr.value in methods
        }
        for name, fn in methods.items()
    }
    found = {name for name, fn in methods.items() if m.findall(fn, _TRAINING_CALL)}
    changed = True
    while changed:
        changed = False
        for name, callees in calls.items():
            if name not in found and callees & found:
                found.add(name)
                changed = True
    return found


class _Fail(Exception):
    pass


def _inline_method(fn: cst.FunctionDef, call: cst.Call, target, stmt, caller_names: set[str]):
    name = fn.name.value
    if fn.decorators or not fn.params.params or fn.params.params[0].name.value != "self":
        raise _Fail(f"`{name}` is decorated or not a plain method")
    if fn.asynchronous is not None or m.findall(fn.body, m.Yield()):
        raise _Fail(f"`{name}` is async or a generator")
    params = list(fn.params.params[1:])
    bare = fn.with_changes(params=fn.params.with_changes(params=params))
    bound = call_bindings(bare, call)
    if bound is None or any(p.name.value not in bound for p in params):
        raise _Fail(f"the call of `{name}` uses star arguments or misses an argument")
    body, ret = split_return(fn)
    if m.findall(cst.Module(body=body), m.Return()):
        # an early return cannot become straight-line code
        raise _Fail(f"`{name}` returns early (a `return` before its end)")
    if target is not None and (ret is None or ret.body[0].value is None):
        raise _Fail(f"the value of `{name}` is used but it returns nothing")
    return inline_call(
        fn, params, bound, body, ret, target, stmt, caller_names - {"self"}, name.strip("_")
    )


def _inline_block(stmts: list, methods: dict, training: set[str], used: list, depth: int) -> list:
    if depth > 6:
        raise _Fail("methods call each other more than six levels deep")
    out: list = []
    for i, s in enumerate(stmts):
        hit = _self_call(s, methods, training)
        if hit is not None:
            name, call, target, rest = hit
            others = [x for j, x in enumerate(stmts) if j != i]
            taken = _used(stmts) | written(stmts)
            if rest is not None:
                target = cst.Name(_fresh(f"{name.strip('_')}_result", taken))
            inlined = _inline_method(methods[name], call, target, s, _used(others))
            if rest is not None:
                small = rest.visit(_ReplaceNode(call, target))
                inlined.append(cst.SimpleStatementLine(body=[small]))
            if name not in used:
                used.append(name)
            out += _inline_block(inlined, methods, training, used, depth + 1)
            continue
        if isinstance(s, (cst.For, cst.While, cst.With, cst.If)) and isinstance(
            s.body, cst.IndentedBlock
        ):
            body = _inline_block(list(s.body.body), methods, training, used, depth)
            s = s.with_changes(body=s.body.with_changes(body=body))
        out.append(s)
    return out


def _init_attribute_values(init: cst.FunctionDef | None) -> dict[str, list[cst.BaseExpression]]:
    """``self.attr = value`` assignments of ``__init__``, in order."""
    found: dict[str, list] = {}
    if init is None:
        return found
    for node in m.findall(init, m.Assign()):
        for t in node.targets:
            pairs = [(t.target, node.value)]
            if (
                isinstance(t.target, cst.Tuple)
                and isinstance(node.value, cst.Tuple)
                and len(t.target.elements) == len(node.value.elements)
            ):
                pairs = [
                    (a.value, b.value)
                    for a, b in zip(t.target.elements, node.value.elements, strict=True)
                ]
            for target, value in pairs:
                if m.matches(target, m.Attribute(value=m.Name("self"))):
                    found.setdefault(target.attr.value, []).append(value)
    return found


def _model_and_device(methods, body, alias) -> tuple[str | None, str | None]:
    """Which attribute holds the trained model, and the device it is moved to in ``__init__``."""
    attrs = _init_attribute_values(methods.get("__init__"))
    init = methods.get("__init__")
    init_params = {p.name.value for p in init.params.params[1:]} if init else set()
    param_attr = {
        code_of(v): a
        for a, vals in attrs.items()
        for v in vals
        if isinstance(v, cst.Name) and v.value in init_params
    }

    def as_alias(expr) -> str | None:
        """An __init__ expression as the driver sees it (``self.x``/param stored as attribute)."""
        if isinstance(expr, cst.Attribute) and m.matches(expr.value, m.Name("self")):
            return f"{alias}.{expr.attr.value}"
        if isinstance(expr, cst.Name) and expr.value in param_attr:
            return f"{alias}.{param_attr[expr.value]}"
        if isinstance(expr, (cst.SimpleString, cst.Integer)):
            return code_of(expr)
        return None

    model = None
    # the optimizer built from `<model>.parameters()` inside the class
    for vals in attrs.values():
        for v in vals:
            for call in m.findall(v, m.Call(func=m.Attribute(attr=m.Name("parameters")))):
                model = model or as_alias(call.func.value)
    if model is None:
        called = {
            c.func.attr.value
            for c in m.findall(cst.Module(body=body), m.Call(func=m.Attribute(value=m.Name(alias))))
        }
        candidates = [a for a in attrs if a in called and a not in methods]
        if len(candidates) == 1:
            model = f"{alias}.{candidates[0]}"
        else:
            named = [a for a in candidates if a in ("model", "net", "network", "module")]
            if len(named) == 1:
                model = f"{alias}.{named[0]}"
    device = None
    if model is not None:
        attr = model.split(".", 1)[1]
        for v in attrs.get(attr, []):
            for call in m.findall(v, m.Call(func=m.Attribute(attr=m.Name("to")))):
                if call.args and device is None:
                    device = as_alias(call.args[0].value) or '"auto"'
    return model, device


class _AttrToName(cst.CSTTransformer):
    def __init__(self, alias: str, names: dict[str, str]) -> None:
        self.alias, self.names = alias, names

    def leave_Attribute(self, original, updated):
        if m.matches(updated.value, m.Name(self.alias)) and updated.attr.value in self.names:
            return cst.Name(self.names[updated.attr.value])
        return updated


def _optimizer_aliases(methods: dict, body: list, alias: str, taken: set[str]):
    """Several optimizers the class builds in ``__init__`` (``self.d_optimizer =
    Adam(self.D.parameters())``) and steps in the driver: manual optimization hands optimizers
    and models over by name, so the driver reads them through local names bound once at its
    start (``D = runner.D``). Only when neither the driver nor another method rebinds them (then
    the local and the attribute are the same object throughout). ``(alias statements, body,
    {optimizer: [models]})`` or None."""
    attrs = _init_attribute_values(methods.get("__init__"))
    tree = cst.Module(body=body)
    step = m.Call(
        func=m.Attribute(value=m.Attribute(value=m.Name(alias)), attr=m.Name("step")), args=[]
    )
    stepped = list(dict.fromkeys(c.func.value.attr.value for c in m.findall(tree, step)))
    if len(stepped) < 2:
        return None
    trains: dict[str, list[str]] = {}
    for opt in stepped:
        values = attrs.get(opt, [])
        if len(values) != 1:
            return None
        models = [
            c.func.value.attr.value
            for c in m.findall(values[0], m.Call(func=m.Attribute(attr=m.Name("parameters"))))
            if m.matches(c.func.value, m.Attribute(value=m.Name("self")))
        ]
        if not models:
            return None
        trains[opt] = list(dict.fromkeys(models))
    wanted = list(dict.fromkeys([n for ms in trains.values() for n in ms] + stepped))

    def rebinds(node) -> bool:
        for a in m.findall(node, m.Assign() | m.AugAssign() | m.AnnAssign()):
            targets = [t.target for t in a.targets] if isinstance(a, cst.Assign) else [a.target]
            for t in targets:
                for attr in [t, *m.findall(t, m.Attribute())]:
                    if (
                        isinstance(attr, cst.Attribute)
                        and isinstance(attr.value, cst.Name)
                        and attr.value.value in (alias, "self")
                        and attr.attr.value in wanted
                    ):
                        return True
        return False

    others = [fn for name, fn in methods.items() if name != "__init__"]
    if rebinds(tree) or any(rebinds(fn) for fn in others):
        return None
    names: dict[str, str] = {}
    busy = set(taken) | _used(body)
    for n in wanted:
        names[n] = _fresh(n, busy)
        busy.add(names[n])
    lines = [cst.parse_statement(f"{names[n]} = {alias}.{n}\n") for n in wanted]
    new_body = list(tree.visit(_AttrToName(alias, names)).body)
    trained = {names[o]: tuple(names[x] for x in ms) for o, ms in trains.items()}
    return lines, new_body, trained


def inline_trainer_class(module: cst.Module) -> ClassPlan | str | None:
    """The module with the first trainer class's training method flattened; a reason when a
    trainer class cannot be flattened; None when there is no trainer class."""
    reason = None
    for index, cls in enumerate(module.body):
        if not isinstance(cls, cst.ClassDef) or not _is_trainer_class(cls):
            continue
        if not isinstance(cls.body, cst.IndentedBlock):
            continue
        methods = {s.name.value: s for s in cls.body.body if isinstance(s, cst.FunctionDef)}
        training = _training_methods(methods)
        callers = {
            c.func.attr.value
            for fn in methods.values()
            for c in m.findall(fn, m.Call(func=m.Attribute(value=m.Name("self"))))
        }
        # the top of the call chain: a training method no other method calls
        drivers = [n for n in training if n not in callers and n != "__init__"]
        if len(drivers) != 1:
            reason = (
                f"no single method of `{cls.name.value}` drives the training "
                f"(candidates: {', '.join(sorted(drivers)) or 'none'})"
            )
            continue
        driver = methods[drivers[0]]
        if driver.decorators or not driver.params.params:
            continue
        if not isinstance(driver.body, cst.IndentedBlock):
            continue  # a one-line method (`def step(self): a(); b()`) runs no loop
        if driver.params.params[0].name.value != "self":
            continue
        used: list[str] = []
        try:
            body = _inline_block(body_without_docstring(driver), methods, training, used, 0)
        except _Fail as err:
            reason = str(err)
            continue
        if not _loops_training(body):
            # a helper class whose method calls backward or step once per call (a loss scaler's
            # `backward(loss)`): the loop that calls it lives elsewhere; the class stays as written
            continue
        taken = _used([*module.body])
        alias = _fresh("runner", taken)
        body = list(cst.Module(body=body).visit(_Renamer({"self": cst.Name(alias)})).body)
        model, device = _model_and_device(methods, body, alias)
        trained = None
        lines: list = []
        found = _optimizer_aliases(methods, body, alias, taken)
        if found is not None:
            lines, body, trained = found
        doc = driver.body.body[: len(driver.body.body) - len(body_without_docstring(driver))]
        alias_line = cst.parse_statement(
            f"{alias} = self  # the trainer object, as seen from the LightningModule below\n"
        )
        new_driver = driver.with_changes(
            body=driver.body.with_changes(body=[*doc, alias_line, *lines, *body])
        )
        new_members = [new_driver if s is driver else s for s in cls.body.body]
        new_cls = cls.with_changes(body=cls.body.with_changes(body=new_members))
        new_module = module.with_changes(
            body=[*module.body[:index], new_cls, *module.body[index + 1 :]]
        )
        # inlined methods nobody calls any more are removed (their code now lives in the driver)
        removable = set(used)
        while True:
            kept = [
                s
                for s in new_cls.body.body
                if not (isinstance(s, cst.FunctionDef) and s.name.value in removable)
            ]
            trial = new_module.with_changes(
                body=[
                    *module.body[:index],
                    new_cls.with_changes(body=new_cls.body.with_changes(body=kept)),
                    *module.body[index + 1 :],
                ]
            )
            still = {n for n in removable if m.findall(trial, m.Attribute(attr=m.Name(n)))}
            if not still:
                new_module = trial
                break
            removable -= still
        return ClassPlan(
            new_module, cls.name.value, driver.name.value, used, alias, model, device, trained
        )
    return reason
