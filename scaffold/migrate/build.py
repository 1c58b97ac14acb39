"""build: the LightningModule class and the Trainer calls for a ``LoopPlan``, then the splice
that puts them where the loop was.

The class is defined where the loop was, so its hooks read the same variables (closures or
globals); the optimizer and scheduler objects the script built are handed over unchanged (same
construction order, same random numbers) or, when nothing else reads them, built in
``configure_optimizers``; the epoch loop's statements run in ``on_train_epoch_start`` /
``on_train_epoch_end`` in their original order; carried state becomes module attributes.
"""

from __future__ import annotations

import re

import libcst as cst
from libcst.metadata import MetadataWrapper

import scaffold.migrate.match as m
from scaffold.migrate import rules as R
from scaffold.migrate.analyse import (
    LoopPlan,
    _find_device,
    _names_a_device,
    _param_names,
    _step_budget,
    attr_of_model,
)
from scaffold.migrate.dataflow import declared_global, definitely_bound, written
from scaffold.migrate.findings import FIXED, Finding
from scaffold.migrate.helpers import definition
from scaffold.migrate.imports import (
    add_import,
    drop_imported_names,
    is_import,
    local_name,
    qualified_name,
    used_outside_imports,
)
from scaffold.migrate.locate import function_owning
from scaffold.migrate.metrics import log_printed_metrics, logged_keys
from scaffold.migrate.names import PROGRESS_BARS, import_table, qualified
from scaffold.migrate.step import amp_device, amp_precision
from scaffold.migrate.syntax import (
    LIGHTNING_ATTRS,
    RETURN_MARK,
    _assigned,
    _BreakReplacer,
    _fresh,
    _loop_comments,
    _Renamer,
    _simple,
    _used,
    batch_unpack,
    break_else,
    breaks_end_iteration,
    calls_of,
    code_of,
    comment_holder,
    comments_of,
    last_assigned_value,
    own_breaks,
    removed,
    stmt,
    transform_stmts,
    with_comments,
)
from scaffold.migrate.tensors import devices_named
from scaffold.migrate.walk import run_visitor, walk


def _step_param(name: str, bound: set[str], carried: set[str], body_names: set[str]) -> str:
    """The name of a training_step argument: ``name`` unless the step needs that name for
    something else (the loop's own variable carried as an attribute, or a name the loop body
    reads from outside the loop); then the first spare name that is free."""
    if name in bound and name not in carried:
        return name  # the loop's own variable (`for batch in loader:`, `for (batch,) in ...`)
    if name not in bound and name not in body_names:
        return name
    taken = carried | body_names | bound
    spare = ("batch_index", "batch_number") if name == "batch_idx" else (f"{name}_data",)
    return next(c for c in (*spare, f"{name}_arg", f"{name}_") if c not in taken)


def _without_dead_stores(stmts: list, global_names) -> list:
    """A hook's top-level ``x = value`` whose ``x`` nothing in the hook reads: in the script
    ``x`` was a variable of the loop's scope, in the hook it is a local no one sees. A call
    keeps running (``x = evaluate()`` -> ``evaluate()``); a progress bar made for the loop
    (the Trainer's replaces it) and plain arithmetic on names and numbers are dropped."""
    while True:
        out = _drop_dead_stores_once(stmts, global_names)
        if len(out) == len(stmts) and all(a is b for a, b in zip(out, stmts, strict=True)):
            return out
        stmts = out


def _drop_dead_stores_once(stmts: list, global_names) -> list:
    out = list(stmts)
    for i, s in enumerate(stmts):
        if not m.matches(
            s, m.SimpleStatementLine(body=[m.Assign(targets=[m.AssignTarget(target=m.Name())])])
        ):
            continue
        assign = s.body[0]
        name = assign.targets[0].target.value
        others = stmts[:i] + stmts[i + 1 :]
        if name in global_names or name in _used(others) or name in _used([cst.Expr(assign.value)]):
            continue
        value = assign.value
        if isinstance(value, cst.Call) and qualified(value) in PROGRESS_BARS:
            out[i] = comment_holder(comments_of(s)) if comments_of(s) else None
        elif isinstance(value, cst.Call):
            out[i] = s.with_changes(body=[cst.Expr(value)])
        elif _pure_arithmetic(value):
            out[i] = comment_holder(comments_of(s)) if comments_of(s) else None
    return [s for s in out if s is not None] or [stmt("pass\n")]


_MODE_FREE = {"state_dict", "eval", "train", "parameters", "named_parameters"}


def _runs_model(stmts: list, models: set[str], module: cst.Module) -> bool:
    """Whether ``stmts`` may run one of ``models``: any use other than ``model.state_dict()``,
    ``.parameters()``, ``.eval()``, ``.train()`` (whose results do not depend on the mode), and
    any call that may reach a model out of sight: a function or class of the script's own, a
    method of one of its objects. Calls into imported libraries and builtins see only their
    arguments."""
    imported = set(import_table(module))
    own = {d.name.value for d in m.findall(module, m.FunctionDef() | m.ClassDef())}

    class Uses(cst.CSTVisitor):
        found = False

        def visit_Call(self, node: cst.Call) -> None:
            root = node.func
            while isinstance(root, cst.Attribute):
                root = root.value
            if (
                isinstance(node.func, cst.Name)
                and node.func.value in own
                or (
                    isinstance(node.func, cst.Attribute)
                    and isinstance(root, cst.Name)
                    and root.value not in imported | models
                )
            ):
                self.found = True

        def visit_Attribute(self, node: cst.Attribute) -> bool:
            if isinstance(node.value, cst.Name) and node.value.value in models:
                if node.attr.value not in _MODE_FREE:
                    self.found = True
                return False
            return True

        def visit_Name(self, node: cst.Name) -> None:
            if node.value in models:
                self.found = True

    uses = Uses()
    run_visitor(cst.Module(body=list(stmts)), uses)
    return uses.found


def _empty_hook(fn: cst.FunctionDef) -> bool:
    body = fn.body.body
    return (
        fn.name.value.startswith("on_")
        and len(body) == 1
        and m.matches(body[0], m.SimpleStatementLine(body=[m.Pass()]))
        and not comments_of(body[0])
    )


def _pure_arithmetic(expr) -> bool:
    """Names, numbers, the module's own attributes (``self.current_epoch``) and arithmetic on
    them; ``range(...)[i]`` (the epoch value): nothing that runs the script's code."""
    if isinstance(expr, (cst.Name, cst.Integer, cst.Float)):
        return True
    if isinstance(expr, cst.Attribute):
        return m.matches(expr.value, m.Name("self"))
    if isinstance(expr, cst.Subscript):
        return m.matches(expr.value, m.Call(func=m.Name("range"))) and all(
            _pure_arithmetic(a.value) for a in expr.value.args
        )
    if isinstance(expr, cst.BinaryOperation):
        return _pure_arithmetic(expr.left) and _pure_arithmetic(expr.right)
    if isinstance(expr, cst.UnaryOperation):
        return _pure_arithmetic(expr.expression)
    return False


def _self_attr(name: str) -> cst.Attribute:
    return cst.Attribute(cst.Name("self"), cst.Name(name))


class Builder:
    """Builds the class, the lines that replace the loop, and what else the splice changes."""

    def __init__(self, plan: LoopPlan, engine: str, tooling: bool) -> None:
        self.plan, self.engine, self.tooling = plan, engine, tooling
        self.findings: list[Finding] = list(plan.findings)
        taken = _used([*plan.module.body])
        self.cls_name = _fresh("LitModel", taken)
        self.inst = _fresh("lit_model", taken)
        self.trainer_var = _fresh("trainer", taken)
        state = plan.state
        self.renamer = _Renamer(
            {
                **{n: _self_attr(a) for n, a in state.own_models.items()},
                **{n: _self_attr(a) for n, a in state.attr_of.items()},
            }
        )
        # `return` in the batch loop: the module keeps the value returned (see loop_bodies)
        self.ret_attr = None
        if plan.roles.step.returns:
            self.ret_attr = _fresh(
                "returned",
                {*state.attr_of.values(), *state.own_models.values(), plan.stop_attr},
            )
        # `if <test>: break` first in the epoch loop: the module notes that the epoch never ran
        self.skip_attr = None
        if plan.epoch.start_break:
            self.skip_attr = _fresh(
                "stopped_before_epoch",
                {*state.attr_of.values(), *state.own_models.values(), plan.stop_attr},
            )
        # UntilBreak and on_train_batch_start end an epoch where the script broke
        self.stops_epochs = plan.roles.step.breaks or plan.epoch.start_break
        self.evaluated_args: set[str] = set()  # helper arguments evaluated once per epoch
        self.closure: dict[str, str] = {}  # top-level class: script local -> __init__ attribute
        self.top_level_class = None  # (function, [class]) when the class leaves the function

    def refuse(self, rule: str, message: str):
        self.plan.refuse(rule, message)

    def note(self, rule: str, message: str) -> None:
        self.findings.append(Finding(rule, FIXED, message, *self.plan.where))

    # ----------------------------------------------------------------------- the hooks' code
    def method(self, signature: str, stmts: list, more_globals: frozenset = frozenset()):
        global_names = self.plan.state.global_names | more_globals
        stmts = _without_dead_stores(stmts, global_names)
        # names the script declared `global` stay globals in every hook that assigns them
        declare = sorted(written(stmts) & global_names)
        if declare:
            stmts = [stmt(f"global {', '.join(declare)}\n"), *stmts]
        fn = cst.parse_statement(f"def {signature}:\n    pass\n")
        return fn.with_changes(body=fn.body.with_changes(body=stmts), leading_lines=[])

    def epoch_globals_for(self, stmts) -> set[str]:
        """Epoch variables a function the hook calls reads as globals: the hook sets them."""
        readers = self.plan.state.epoch_readers
        if not readers:
            return set()
        called = {
            c.func.value for c in m.findall(cst.Module(body=list(stmts)), m.Call(func=m.Name()))
        }
        return set().union(*(readers[n] for n in called & set(readers)))

    def prelude(self, code_stmts, fn_scope: bool) -> list:
        """The epoch variable and the train() parameters, where the hook's code needs them."""
        site, fn_map = self.plan.site, self.plan.fn_map
        used = _used(code_stmts) | self.epoch_globals_for(code_stmts)
        bindings = []
        if fn_scope:
            for p in site.train_fn.params.params:
                name = p.name.value
                if name in used and fn_map.get(name, None) != name:
                    if name not in fn_map:
                        self.refuse(
                            R.CALL_ARGUMENTS,
                            f"parameter `{name}` of `{site.train_fn.name.value}()` has no value "
                            "at the call",
                        )
                    if _simple(fn_map[name]):
                        bindings.append(f"{name} = {fn_map[name]}")
                    else:
                        # evaluated once per call, as the original call did (see epoch_start)
                        bindings.append(f"{name} = self.{name}_arg")
                        self.evaluated_args.add(name)
        lines = self.plan.epoch.lines(used, bindings) + bindings
        return [stmt(line + "\n") for line in lines]

    def refuse_epoch_end_work(self, rule: str, what: str) -> None:
        """A stop in the middle of an epoch (or before it) that the script's loop ends with
        nothing more: refused where the Trainer would still run epoch-end work the script skipped
        (validation of a validated loop, a scheduler stepped per epoch)."""
        plan = self.plan
        if plan.val is not None:
            self.refuse(
                rule,
                f"{what} of a validated loop: the Trainer validates once more when it stops "
                "early, the script did not; not converted",
            )
        if plan.schedules.epoch:
            self.refuse(
                rule,
                f"{what} with a scheduler stepped once per epoch: the Trainer steps it once "
                "more when it stops early, the script did not; not converted",
            )

    def returns(self, body: list) -> list:
        """``return X`` in the batch loop (its mark, see ``syntax.returns_as_breaks``): the
        module keeps ``(X,)``, the Trainer stops after this batch, the epoch ends without its
        tail (on_train_epoch_end returns first) and the function returns ``X`` after fit."""
        plan = self.plan
        if plan.site.train_fn is not None:
            self.refuse(
                R.EARLY_RETURN,
                f"`return` in the batch loop ends `{plan.site.train_fn.name.value}()`, which the "
                "epoch loop calls again: not converted",
            )
        self.refuse_epoch_end_work(R.EARLY_RETURN, "`return` in the batch loop")
        ret = self.ret_attr

        class Marks(cst.CSTTransformer):
            def leave_SimpleStatementLine(self, original, updated):
                small = updated.body[0] if updated.body else None
                if not (
                    isinstance(small, cst.Assign)
                    and m.matches(small.targets[0].target, m.Name(RETURN_MARK))
                ):
                    return updated
                value = code_of(small.value)
                lines = [
                    stmt(f"self.{ret} = {value}\n").with_changes(
                        leading_lines=updated.leading_lines
                    ),
                    stmt("self.trainer.should_stop = True\n"),
                    updated.with_changes(body=updated.body[1:], leading_lines=[]),
                ]
                return cst.FlattenSentinel(lines)

        self.note(
            R.RETURN_MAPPED,
            f"`return` in the batch loop: the module keeps the value (self.{ret}), the Trainer "
            "stops after that batch, and the function returns it after fit",
        )
        return transform_stmts(body, Marks())

    def start_break(self, e_pre: list) -> list:
        """``if <test>: break`` first in the epoch loop: on_train_epoch_start stops the Trainer,
        notes that the epoch never ran and returns; UntilBreak then ends the epoch without
        iterating the loader, and on_train_epoch_end returns at once."""
        plan = self.plan
        self.refuse_epoch_end_work(R.EARLY_CONTROL_FLOW, "`if ...: break` before the batch loop")
        if self.engine == "lightning":
            self.refuse(
                R.EARLY_CONTROL_FLOW,
                "`if ...: break` before the batch loop: Lightning draws the epoch's first batch "
                "before it can stop; convert with the runtime engine (the default)",
            )
        first = e_pre[0]
        stop = [
            stmt("self.trainer.should_stop = True\n"),
            stmt(f"self.{plan.stop_attr} = True\n"),
            stmt(f"self.{self.skip_attr} = True\n"),
            stmt("return\n"),
        ]
        stop[0] = stop[0].with_changes(leading_lines=first.body.body[0].leading_lines)
        self.note(
            R.BREAK_MAPPED,
            "`break` before the batch loop stops the Trainer before that epoch draws a batch",
        )
        return [first.with_changes(body=first.body.with_changes(body=stop)), *e_pre[1:]]

    def loop_bodies(self):
        """(training step body, epoch start, epoch end, helper start, helper end) renamed to
        the module's attributes; ``break`` mapped to stopping the epoch or the Trainer."""
        plan, site = self.plan, self.plan.site
        body = transform_stmts(plan.roles.step.body, self.renamer)
        if plan.roles.step.returns:
            body = self.returns(body)
        if plan.roles.step.breaks:
            body = break_else(body)
            if not breaks_end_iteration(body):
                self.refuse(
                    R.BREAK_POSITION,
                    "`break` in the batch loop is followed by code that runs in the same "
                    "iteration (it must be the last thing the iteration does)",
                )
            body = transform_stmts(
                body, _BreakReplacer(stmt(f"self.{plan.stop_attr} = True\n").body[0])
            )
            self.note(
                R.BREAK_MAPPED,
                "`break` of the batch loop ends the epoch (on_train_batch_start returns -1)",
            )
        e_pre = _without_globals(transform_stmts(site.epoch_pre, self.renamer))
        if plan.epoch.start_break:
            e_pre = self.start_break(e_pre)
        e_post = _without_globals(transform_stmts(list(plan.epoch_post), self.renamer))
        f_pre = _without_globals(transform_stmts(site.fn_pre, self.renamer))
        f_post = _without_globals(transform_stmts(list(plan.schedules.fn_post), self.renamer))
        if own_breaks(e_post):
            e_post = break_else(e_post)
            if not breaks_end_iteration(e_post):
                self.refuse(
                    R.BREAK_POSITION,
                    "`break` in the epoch loop is followed by code that runs in the same "
                    "iteration (it must be the last thing the iteration does)",
                )
            e_post = transform_stmts(
                e_post, _BreakReplacer(stmt("self.trainer.should_stop = True\n").body[0])
            )
            self.note(
                R.BREAK_MAPPED, "`break` of the epoch loop stops the Trainer after this epoch"
            )
        if plan.epoch.while_check:
            e_post = [*e_post, *transform_stmts(list(plan.epoch.while_check), self.renamer)]
        if m.findall(cst.Module(body=f_pre + f_post), m.Return()):
            self.refuse(
                R.EARLY_RETURN,
                f"`{site.train_fn.name.value}()` returns early or from a nested block; not "
                "converted",
            )
        return body, e_pre, e_post, f_pre, f_post

    def training_step(self, body: list) -> list:
        plan, state = self.plan, self.plan.state
        step = plan.roles.step
        # a loop variable the hooks carry as an attribute (read after the loop) is assigned
        # from the step's argument: the argument takes another name when they would collide
        carried = state.shared | state.fn_shared
        read_in_step = _used(step.body)
        # ... and so does a name the body takes from outside the loop (`batch = next(iter(
        # loader))` before `for _ in range(n):`): the argument would hide it
        bound = _used([plan.site.batch_for.target])
        index_param = _step_param("batch_idx", bound, carried, read_in_step)
        batch_param = _step_param("batch", bound, carried, read_in_step | {index_param})
        self.step_params = f"{batch_param}, {index_param}"
        unpack_lines = batch_unpack(plan.site.batch_for, index_param, batch_param)
        if unpack_lines is None:
            self.refuse(R.LOOP_TARGET, "`enumerate` loop target must be `index, batch`")
        # `i = batch_idx` only where the step reads `i`
        unpack_lines = [
            line
            for line in unpack_lines
            if index_param not in line or line.split(" = ")[0] in read_in_step | carried
        ]
        unpack = transform_stmts([stmt(line + "\n") for line in unpack_lines], self.renamer)
        if step.manual and self.plan.roles.optional_opts:
            # an optimizer that is None was not handed to the Trainer: it is None here too
            names = ", ".join(step.optimizers)
            taken = read_in_step | carried | set(step.optimizers)
            handed = next(n for n in ("handed", "handed_out", "handed_opts") if n not in taken)
            unpack[0:0] = [
                stmt(f"{handed} = self.optimizers()\n"),
                stmt(f"{handed} = iter({handed} if isinstance({handed}, list) else [{handed}])\n"),
                stmt(
                    f"{names} = [o if o is None else next({handed}) "
                    "for o in self.optimizers_list]\n"
                ),
            ]
        elif step.manual:
            # self.optimizers() gives one optimizer, or a list when there are several
            unpack.insert(0, stmt(f"{', '.join(step.optimizers)} = self.optimizers()\n"))
        step_body = [*self.prelude(body + unpack, plan.site.train_fn is not None), *unpack, *body]
        loss = transform_stmts([cst.SimpleStatementLine([cst.Expr(step.loss)])], self.renamer)
        ret = with_comments(
            stmt(f"return {code_of(loss[0].body[0].value)}\n"), step.trailing_comments
        )
        if not step.manual:
            # the loss the script printed is also logged (progress bar, callbacks, loggers)
            returned = ret.body[0].value
            step_body.append(stmt(f'self.log("train_loss", {code_of(returned)}, prog_bar=True)\n'))
            step_body.append(ret)
            self.note(R.LOSS_LOGGED, "training loss logged with self.log('train_loss')")
        elif ret.leading_lines:
            step_body.append(comment_holder(ret.leading_lines))
        return step_body

    # ------------------------------------------------------------------------------ methods
    def init_method(self, with_optimizer: bool):
        """``__init__``: the model(s), and the optimizer/scheduler objects the script built
        (unless their construction moved into configure_optimizers)."""
        roles, sched = self.plan.roles, self.plan.schedules
        if roles.manual:
            models = [f"{n}_" if n == "self" else n for n in roles.manual_models]
            init = [stmt("super().__init__()\n"), stmt("self.automatic_optimization = False\n")]
            init += [stmt(f"self.{attr_of_model(n)} = {n}\n") for n in models]
            init.append(stmt(f"self.optimizers_list = [{', '.join(roles.manual_opts)}]\n"))
            signature = f"__init__(self, {', '.join(models + list(roles.manual_opts))}"
        else:
            # no module when the optimizer trains the script's own tensors (roles.tensors)
            extras = list(roles.extra_models) if roles.model_code else []
            init = [stmt("super().__init__()\n")]
            if roles.model_code:
                init.append(stmt("self.model = model\n"))
            init += [stmt(f"self.{attr_of_model(n)} = {n}\n") for n in extras]
            held = ["model", *extras] if roles.model_code else []
            signature = "__init__(self" + "".join(f", {n}" for n in held)
            if with_optimizer:
                init.append(stmt("self.optimizer = optimizer\n"))
                signature += ", optimizer"
        if roles.tensors:
            init[0] = init[0].with_changes(leading_lines=[self.tensors_comment()])
        if sched.names and with_optimizer:
            init.append(stmt("self.scheduler = scheduler\n"))
            signature += ", scheduler"
        if self.stops_epochs:
            # read by UntilBreak, which Lightning may start before on_train_epoch_start
            init.append(stmt(f"self.{self.plan.stop_attr} = False\n"))
        if self.plan.epoch.start_break:
            init.append(stmt(f"self.{self.skip_attr} = False\n"))
        if self.ret_attr is not None:
            init.append(stmt(f"self.{self.ret_attr} = None\n"))
        return self.method(signature + ")", init)

    def epoch_loader(self) -> str:
        """The batches the epoch loop made anew (``plan.loader_attr``): on_train_epoch_start
        binds them as the script did, and the Trainer reads them from the module when the
        epoch's first batch is drawn (the runtime engine only: see
        ``_check_lightning_epoch_start``)."""
        plan = self.plan
        name = plan.loader_attr
        attr = plan.state.attr_of.get(name)
        return f"{self.inst}.{attr}" if attr is not None else name

    def tensors_comment(self) -> cst.EmptyLine:
        """One line saying why the module holds no model: the optimizer trains tensors the
        script made (wrapping them in parameters would make new tensors the script's own
        functions never read)."""
        names = list(self.plan.roles.tensors)
        shown = ", ".join(names[:4]) + (", ..." if len(names) > 4 else "")
        return cst.EmptyLine(
            comment=cst.Comment(
                f"# the optimizer trains the script's own tensors ({shown}) as they are"
            )
        )

    def epoch_start(self, e_pre: list, f_pre: list) -> list:
        fn_map, epoch = self.plan.fn_map, self.plan.epoch
        start = []
        if e_pre:
            start += self.prelude(e_pre, False) + e_pre
        f_prelude = self.prelude(f_pre, True) if f_pre else []
        if self.evaluated_args:
            # the call's non-trivial arguments, evaluated when the original call was made
            arg_lines = [f"self.{n}_arg = {fn_map[n]}" for n in sorted(self.evaluated_args)]
            arg_lines[:0] = epoch.lines(set(), arg_lines)
            start += [stmt(x + "\n") for x in arg_lines]
        if f_pre:
            start += f_prelude + f_pre
        if self.stops_epochs:
            start.append(stmt(f"self.{self.plan.stop_attr} = False\n"))
        return start

    def eval_methods(self, ev, prefix: str, suffix: str, result_attr: str | None) -> list:
        """validation/test hooks from an evaluation helper's plan."""
        state = self.plan.state
        taken_attrs = set(state.attr_of.values())
        local_attr = {
            n: (n if n not in LIGHTNING_ATTRS | taken_attrs else f"{n}_{suffix}")
            for n in ev.local_shared
        }
        rebound = {b.split(" = ")[0] for b in ev.bindings if len(set(b.split(" = "))) > 1}
        renamer = _Renamer(
            {
                **{
                    n: _self_attr(a)
                    for n, a in state.own_models.items()
                    if n not in rebound | set(ev.local_shared)
                },
                **{n: _self_attr(a) for n, a in local_attr.items()},
            }
        )
        if ev.inline:
            renamer = self.renamer  # the epoch loop's own variables: the same attributes

        def eval_prelude(code_stmts) -> list:
            used_here = _used(code_stmts)
            binds = [b for b in ev.bindings if b.split(" = ")[0] in used_here]
            lines = self.plan.epoch.lines(used_here, binds) + binds
            return [stmt(x + "\n") for x in lines]

        # the helper's `global` declarations go to each hook that assigns the name
        helper_globals = frozenset(declared_global(ev.fn.body.body)) if ev.fn else frozenset()
        v_pre = _without_globals(
            transform_stmts(ev.lead, self.renamer) + transform_stmts(ev.pre, renamer)
        )
        if ev.call_comments:
            v_pre = (
                [with_comments(v_pre[0], ev.call_comments), *v_pre[1:]]
                if v_pre
                else [comment_holder(ev.call_comments)]
            )
        v_unpack = [stmt(x + "\n") for x in ev.unpack]
        v_body = _without_globals(transform_stmts(ev.body, renamer))
        v_post = _without_globals(transform_stmts(ev.post, renamer))
        if result_attr is not None:
            returned = transform_stmts([cst.SimpleStatementLine([cst.Expr(ev.returned)])], renamer)
            v_post.append(stmt(f"self.{result_attr} = {code_of(returned[0].body[0].value)}\n"))
        out = []
        if v_pre:
            out.append(
                self.method(
                    f"on_{prefix}_epoch_start(self)", eval_prelude(v_pre) + v_pre, helper_globals
                )
            )
        out.append(
            self.method(
                f"{prefix}_step(self, batch, batch_idx)",
                eval_prelude(v_unpack + v_body) + v_unpack + (v_body or [stmt("pass\n")]),
                helper_globals,
            )
        )
        if v_post:
            out.append(
                self.method(
                    f"on_{prefix}_epoch_end(self)", eval_prelude(v_post) + v_post, helper_globals
                )
            )
        return out

    def validation_methods(self) -> list:
        val, state = self.plan.val, self.plan.state
        if val is None:
            return []
        result = state.attr_of[val.target] if val.target is not None else None
        out = self.eval_methods(val, "validation", "val", result)
        # the model's mode stays the script's business: it switched to eval mode itself (and the
        # rest of the epoch ran in eval mode), or it evaluated in training mode
        if val.calls_eval:
            if self.eval_mode_is_observed():
                keep = "pass  # the model stays in eval mode, as the script left it\n"
                out.append(self.method("on_validation_model_train(self)", [stmt(keep)]))
        else:
            keep = "pass  # the script evaluated without switching to eval mode\n"
            out.append(self.method("on_validation_model_eval(self)", [stmt(keep)]))
        return out

    def eval_mode_is_observed(self) -> bool:
        """Whether leaving the model in eval mode after validation (as the script did) can
        matter: unless each epoch starts with ``model.train()`` and nothing after the
        evaluation (the rest of the epoch, the code after the loop) runs the model, Lightning's
        default (train mode again) computes the same."""
        plan, roles = self.plan, self.plan.roles
        models = set(roles.model_names) | set(roles.extra_models) | set(roles.manual_models)
        start = [*plan.site.epoch_pre, *plan.site.fn_pre]
        first_use = next((s for s in start if models & _used([s])), None)
        starts_training = first_use is not None and m.matches(
            first_use,
            m.SimpleStatementLine(
                body=[
                    m.Expr(m.Call(func=m.Attribute(value=m.Name(), attr=m.Name("train")), args=[]))
                ]
            ),
        )
        later = [*plan.epoch_post, *plan.epoch.while_check, *plan.state.after]
        return not starts_training or _runs_model(later, models, plan.module)

    def test_methods(self) -> list:
        test = self.plan.test
        if test is None:
            return []
        out = self.eval_methods(test, "test", "test", self.plan.test_attr)
        keep = "pass  # the model stays in eval mode after testing, as the script left it\n"
        out.append(self.method("on_test_model_train(self)", [stmt(keep)]))
        return out

    def configure_optimizers(self, moved) -> cst.FunctionDef:
        roles, sched = self.plan.roles, self.plan.schedules
        opt_ref = moved[1][0] if moved else "self.optimizer"
        sched_ref = moved[1][1] if moved and len(moved[1]) > 1 else "self.scheduler"
        if sched.names:
            interval = "epoch" if sched.epoch else "step"
            conf = [
                stmt(
                    "return {\n"
                    f'    "optimizer": {opt_ref},\n'
                    f'    "lr_scheduler": {{"scheduler": {sched_ref}, "interval": "{interval}"}},\n'
                    "}\n"
                )
            ]
        elif roles.manual and roles.optional_opts:
            conf = [stmt("return [o for o in self.optimizers_list if o is not None]\n")]
        elif roles.manual:
            conf = [stmt("return self.optimizers_list\n")]
        else:
            conf = [stmt(f"return {opt_ref}\n")]
        if sched.tail_comments:
            conf[0] = with_comments(conf[0], list(sched.tail_comments))
        if moved is not None and len(moved[0]) == 1 and not sched.names:
            only = moved[0][0]
            conf = [
                with_comments(
                    stmt(f"return {code_of(only.body[0].value)}\n"),
                    [*comments_of(only), *comments_of(conf[0])],
                )
            ]
        elif moved is not None:
            conf = [*moved[0], *conf]
        return self.method("configure_optimizers(self)", conf)

    # -------------------------------------------------------------------------------- class
    def class_def(self):
        """(the class statement, the construction moved into configure_optimizers or None)."""
        plan = self.plan
        body, e_pre, e_post, f_pre, f_post = self.loop_bodies()
        step_body = self.training_step(body)
        # every prelude runs before on_train_epoch_start is assembled: it evaluates the helper
        # arguments that any hook reads
        end = []
        if f_post:
            end += self.prelude(f_post, True) + f_post
        if e_post:
            end += self.prelude(e_post, False) + e_post
        if end and self.ret_attr is not None:
            # the script returned in the batch loop: the rest of that epoch never ran
            end.insert(0, stmt(f"if self.{self.ret_attr} is not None:\n    return\n"))
        if end and self.skip_attr is not None:
            # the script broke before the epoch's batch loop: none of that epoch ran
            end.insert(0, stmt(f"if self.{self.skip_attr}:\n    return\n"))
        start = self.epoch_start(e_pre, f_pre)
        methods = [
            None,  # __init__, once it is known whether the optimizer moves
        ]
        if self.model_attr() is not None:
            methods.append(
                self.method(
                    "forward(self, *args, **kwargs)",
                    [stmt(f"return self.{self.model_attr()}(*args, **kwargs)\n")],
                )
            )
        if start:
            methods.append(self.method("on_train_epoch_start(self)", start))
        if self.stops_epochs:
            # the epoch's last batch is the placeholder UntilBreak gives (see `replacement`)
            methods.append(
                self.method(
                    "on_train_batch_start(self, batch, batch_idx)",
                    [stmt(f"if self.{plan.stop_attr}:\n    return -1\n")],
                )
            )
        methods.append(self.method(f"training_step(self, {self.step_params})", step_body))
        methods += self.validation_methods()
        if end:
            methods.append(self.method("on_train_epoch_end(self)", end))
        methods += self.test_methods()
        # a hook left with nothing to do (its statements were dead stores) is not written
        methods = [f for f in methods if f is None or not _empty_hook(f)]
        methods = self.log_printed_metrics(methods)
        moved = self.movable_construction(methods[1:])
        methods[0] = self.init_method(with_optimizer=moved is None)
        methods.append(self.configure_optimizers(moved))
        doc = (
            '"""The training loop of this script as a LightningModule (migrated by '
            'torch-scaffold)."""\n'
        )
        cls = cst.parse_statement(f"class {self.cls_name}(L.LightningModule):\n    {doc}")
        blank = [cst.EmptyLine(indent=False)]
        cls = cls.with_changes(
            body=cls.body.with_changes(
                body=[*cls.body.body, *[f.with_changes(leading_lines=blank) for f in methods]]
            ),
            leading_lines=[*self.blank(), *self.header_comments()],
        )
        return cls, moved

    def log_printed_metrics(self, methods: list) -> list:
        """The numbers the evaluation hooks print are logged too (see ``metrics``)."""
        stages = {"on_validation_epoch_end": "val", "on_test_epoch_end": "test"}
        taken = set().union(*(logged_keys(f) for f in methods if f is not None))
        out = []
        for f in methods:
            stage = stages.get(f.name.value) if f is not None else None
            if stage is not None:
                f, added = log_printed_metrics(f, stage, taken)
                if added:
                    keys = ", ".join(f"'{k}'" for k in added)
                    self.note(R.METRICS_LOGGED, f"printed metrics logged with self.log ({keys})")
            out.append(f)
        return out

    def model_attr(self) -> str | None:
        """The attribute holding the (first) trained module; None when the script trains
        tensors of its own and no module."""
        roles = self.plan.roles
        if roles.manual:
            return attr_of_model(roles.manual_models[0]) if roles.manual_models else None
        return "model" if roles.model_code else None

    def blank(self) -> list:
        at_module_level = self.plan.site.scope_body is self.plan.module.body
        return [cst.EmptyLine(indent=False)] * (2 if at_module_level else 1)

    def movable_construction(self, hooks: list):
        """The optimizer (and scheduler) construction moves into configure_optimizers when
        nothing else reads them and what they are built from is not reassigned before the
        loop."""
        plan, roles = self.plan, self.plan.roles
        if roles.manual or roles.synthesized or (plan.hints is not None and plan.hints.model):
            return None
        moved = _movable_construction(
            plan.site.scope_body,
            plan.state.index,
            roles.opt_code,
            plan.schedules.names[0] if plan.schedules.names else None,
            roles.model_code,
            [*hooks, *plan.site.scope_body[plan.state.index + 1 :]],
        )
        if moved is not None:
            self.note(
                R.CONSTRUCTION_MOVED,
                f"construction of {' and '.join(f'`{n}`' for n in moved[1])} moved into "
                "configure_optimizers",
            )
        return moved

    def dropped_helpers(self) -> tuple[list, list]:
        """(helper functions whose every call was converted, their comments): removed, the
        comments move to the class."""
        plan = self.plan
        site = plan.site
        drops = [site.train_fn] if site.train_fn is not None else []
        converted_calls: dict[str, int] = {}
        for p in (plan.val, plan.test):
            if p is not None and p.fn is not None:
                converted_calls[p.fn.name.value] = converted_calls.get(p.fn.name.value, 0) + 1
        comments: list = []
        for p in (plan.val, plan.test):
            if p is not None and p.fn is not None and p.fn not in drops:
                name = p.fn.name.value
                if calls_of(plan.module, name) == converted_calls[name]:
                    drops.append(p.fn)
                    comments += p.comments
        return drops, comments

    def header_comments(self) -> list:
        site = self.plan.site
        comments = _loop_comments(self.plan.outer) + self.dropped_helpers()[1]
        if site.epoch_for is not None:
            comments += _loop_comments(site.batch_for) if site.train_fn is None else []
        if site.train_fn is not None:
            comments += _loop_comments(site.batch_for) + _loop_comments(site.train_fn)
            comments += comments_of(site.train_call)  # the call's own comments
        return comments

    # ---------------------------------------------------------------- what replaces the loop
    def accelerator(self) -> str:
        """The Trainer's accelerator: the device the script put the model on."""
        plan, model_code = self.plan, self.plan.roles.model_code
        if model_code is None:
            # the script's own tensors: the device they were made on (the CPU unless the
            # script put them elsewhere)
            if devices_named(list(plan.roles.tensors), plan.scope_bodies):
                return f"{plan.roles.tensors[-1]}.device.type"
            return '"cpu"'
        device, cuda = _find_device(plan.scope_bodies, model_code)
        if device is None and not cuda and plan.hints is not None and plan.hints.device:
            device = plan.hints.device
        accelerator = '"cpu"'
        if device is not None and _names_a_device(cst.parse_expression(device), plan.scope_bodies):
            accelerator = f"torch.device({device}).type"
        elif device is not None:
            # a device index or something only known at run time (`model.to(gpu_id)`): the
            # Trainer takes the device type the script's own `.to(...)` gave the model
            accelerator = f"next({model_code}.parameters()).device.type"
        if cuda is not None:
            # `model.cuda()`, `if use_cuda: model.cuda()`: the device type the script's own
            # placement gave the model (where `.cuda()` is a no-op stand-in, the CPU)
            accelerator = f"next({model_code}.parameters()).device.type"
        if device is None and cuda is None and self._model_passed_in(model_code):
            # a function handed the model by its caller, which placed it: the Trainer keeps
            # it on the device it came on
            accelerator = f"next({model_code}.parameters()).device.type"
        if device == '"auto"':
            accelerator = device
        return accelerator

    def _at_trainer(self, code: str) -> str:
        """A value of the training function's code (a clipping value, an accumulation count)
        as the Trainer's call reads it: its parameters become what the call passes
        (``grad_clip`` -> ``args.grad_clip``; the step planner made sure those are plain names
        the epoch loop leaves alone)."""
        fn = self.plan.site.train_fn
        if fn is None:
            return code
        expr = cst.parse_expression(code)
        mapping = {
            p: cst.parse_expression(self.plan.fn_map[p])
            for p in _param_names(fn) & _used([expr])
            if p in self.plan.fn_map and self.plan.fn_map[p] != p
        }
        return code_of(expr.visit(_Renamer(mapping))) if mapping else code

    def _model_passed_in(self, model_code: str) -> bool:
        """Whether the model is a parameter of the function holding the loop: its caller (in
        this file, through the script's functions or in another module) placed it, maybe on a
        device only known at run time (`net = Net().to(DEVICE)` in `main()`)."""
        from scaffold.migrate.locate import function_owning

        site, module = self.plan.site, self.plan.module
        owner = site.train_fn or function_owning(module, site.scope_body)
        if owner is None or model_code.split(".")[0] not in _param_names(owner):
            return False
        if _called_from_elsewhere(module, owner):
            return True
        # called in this file: where the script places anything outside this function (a
        # `.to(...)`/`.cuda()`), the model it passes may be among it
        placing = m.Call(func=m.Attribute(attr=m.Name("to") | m.Name("cuda")))
        inside = {id(c) for c in m.findall(owner, placing)}
        return any(id(c) not in inside for c in m.findall(module, placing))

    def _amp_applies(self, amp: dict) -> str | None:
        """When the script's autocast changed anything: a CUDA autocast acts on CUDA tensors
        only (on the CPU it runs everything in float32), a CPU autocast on CPU tensors only.
        As code from the accelerator the Trainer gets; None when the devices cannot differ."""
        device = amp_device(amp)
        if device is None:
            return None
        accelerator = self.accelerator()
        literal = accelerator.strip("\"'")
        if accelerator[:1] in "\"'" and literal.isidentifier():
            if literal == "auto":
                on_cuda = "torch.cuda.is_available()"
                return on_cuda if device == "cuda" else f"not {on_cuda}"
            runs_on = "cuda" if literal in ("gpu", "cuda") else literal
            return "True" if runs_on == device else "False"
        if " if " in accelerator:
            accelerator = f"({accelerator})"
        if device == "cuda":
            return f'{accelerator} in ("cuda", "gpu")'
        return f'{accelerator} == "cpu"'

    def trainer_args(self) -> list[str]:
        plan = self.plan
        step, epoch, hints = plan.roles.step, plan.epoch, plan.hints
        if epoch.iter:
            args = [f"max_epochs={epoch.max_epochs}"]
        else:
            args = ["max_epochs=-1" if epoch.while_test is not None else "max_epochs=1"]
        args += [f"accelerator={self.accelerator()}", "devices=1"]
        if hints is not None and hints.dist is not None:
            args[-1:] = ['strategy="ddp"', f"devices={hints.dist.devices}"]
            if hints.dist.num_nodes is not None:
                args.append(f"num_nodes={hints.dist.num_nodes}")
            # the script's own DistributedSampler (if any) stays: same shards, same len(loader)
            args.append("use_distributed_sampler=False")
        if step.amp is not None:
            precision = amp_precision(step.amp, self._amp_applies(step.amp))
            if precision is None:
                self.refuse(
                    R.PRECISION_UNKNOWN,
                    "autocast without a dtype on an unknown device: cannot tell the "
                    "precision; pass dtype=torch.float16 or torch.bfloat16",
                )
            args.append(f"precision={precision}")
        if step.accumulate is not None:
            args.append(f"accumulate_grad_batches={self._at_trainer(step.accumulate)}")
        budget = None
        if step.accumulate is None and not step.manual:
            budget = _step_budget(step.body, list(plan.state.before))
        if budget is not None and not _used([cst.parse_expression(budget)]) & plan.varying:
            # (a bound the loop changes stays the script's own break, exact on its own)
            args.append(f"max_steps={self._at_trainer(budget)}")
        if step.clip:
            args += [
                f"gradient_clip_val={self._at_trainer(step.clip[0])}",
                f'gradient_clip_algorithm="{step.clip[1]}"',
            ]
        if plan.val is not None:
            args.append("num_sanity_val_steps=0")
        if plan.early is not None:
            args.append(f"callbacks=[{plan.early.callback}]")
        # the Trainer's logger, checkpoints and summary cannot change what the script
        # computes: they stay on (--no-tooling turns them off); the progress bar replaces the
        # script's tqdm bar, and stays off where the script prints its own progress
        if not self.tooling:
            return args + [
                "logger=False",
                "enable_checkpointing=False",
                "enable_progress_bar=False",
                "enable_model_summary=False",
            ]
        if not plan.progress_bar:
            args.append("enable_progress_bar=False")
        return args

    def replacement(self, cls, moved) -> list:
        """The class, the module's construction, the values it starts with, the Trainer and
        fit, and the values the script reads after the loop."""
        plan, roles, state = self.plan, self.plan.roles, self.plan.state
        inst, trainer_var = self.inst, self.trainer_var
        blank = self.blank()
        if roles.manual:
            args = [*roles.manual_models, *roles.manual_opts]
        elif moved is not None:
            args = [roles.model_code, *roles.extra_models] if roles.model_code else []
        else:
            args = [roles.model_code, *roles.extra_models] if roles.model_code else []
            args.append(roles.opt_code)
            args += list(plan.schedules.names[:1])
        args += list(self.closure)
        # the module starts with the values the loop reads from before it: passed to __init__
        # (a name __init__ already takes is set on the instance instead)
        before = list(state.before)
        # the parameters of the function holding the loop are bound before it too
        owner = function_owning(plan.module, plan.site.scope_body)
        params = _param_names(owner) if owner is not None else set()
        copy_in = (state.shared | state.fn_shared) & (written(before) | params)
        copy_in &= definitely_bound(before) | state.loop_reads | params
        taken = _init_params(cls)
        passed = [n for n in sorted(copy_in) if n not in taken and n != "self"]
        cls = _with_init_params(cls, [(n, state.attr_of[n]) for n in passed])
        # a value bound on some paths only (`if cuda: ... else: t0 = time.time()`) is read by
        # the hooks on those paths only: where the script left it unbound the module gets None
        unsure = copy_in - definitely_bound(before) - params

        def value(n: str) -> str:
            return f'locals().get("{n}")' if n in unsure else n

        args += [f"{n}={value(n)}" for n in passed]
        construct = f"{inst} = {self.cls_name}({', '.join(args)})\n"
        if len(construct) > 88:
            construct = (
                f"{inst} = {self.cls_name}(\n{''.join(f'    {a},{chr(10)}' for a in args)})\n"
            )
        first = stmt(construct).with_changes(leading_lines=blank)
        if unsure:
            note = cst.EmptyLine(
                comment=cst.Comment(
                    f"# {', '.join(sorted(unsure))}: bound on some paths only (None where not)"
                )
            )
            first = first.with_changes(leading_lines=[*blank, note])
        new = [cls, first]
        if roles.synthesized:
            synthesized = list(roles.synthesized)
            synthesized[0] = synthesized[0].with_changes(leading_lines=cls.leading_lines)
            cls = cls.with_changes(leading_lines=blank)
            new = [*synthesized, cls, *new[1:]]
        for n in sorted(copy_in - set(passed)):
            new.append(stmt(f"{inst}.{state.attr_of[n]} = {value(n)}\n"))
        inner = "".join(f"    {a},\n" for a in self.trainer_args())
        new.append(stmt(f"{trainer_var} = L.Trainer(\n{inner})\n"))
        val_loader = f", {plan.val.loader_code}" if plan.val is not None else ""
        loader = plan.loader_code
        if plan.loader_attr is not None:
            loader = self.epoch_loader()
        if plan.loader_each_epoch and (plan.epoch.iter or plan.epoch.while_test is not None):
            each = _fresh("EachEpoch", _used([*plan.module.body]) | {self.cls_name})
            at = new.index(cls)
            new.insert(at, _each_epoch_class(each, cls.leading_lines))
            new[at + 1] = cls = cls.with_changes(leading_lines=blank)
            loader = f"{each}(lambda: {loader})"
            self.findings.append(
                Finding(
                    R.EACH_EPOCH_ITERABLE,
                    FIXED,
                    f"`{plan.loader_code}` is made anew each epoch, as the loop header did "
                    f"(`{each}(lambda: ...)`): one iterator would run out after the first epoch",
                    *plan.where,
                )
            )
        if self.stops_epochs:
            # the script's `break` stopped drawing batches: once it broke, the epoch ends on a
            # placeholder, not on one more batch drawn (which could run random transforms)
            until = _fresh("UntilBreak", _used([*plan.module.body]) | {self.cls_name})
            at = new.index(cls)
            new.insert(at, _until_break_class(until, cls.leading_lines, plan.epoch.start_break))
            new[at + 1] = cls = cls.with_changes(leading_lines=blank)
            loader = f"{until}({loader}, lambda: {inst}.{plan.stop_attr})"
        new.append(stmt(f"{trainer_var}.fit({inst}, {loader}{val_loader})\n"))
        for n in sorted((state.shared | state.fn_shared) & state.read_later):
            new.append(stmt(f"{n} = {inst}.{state.attr_of[n]}\n"))
        # the values the loop variables had in the last epoch that ran
        for line in plan.epoch.lines(set(state.read_later), (), f"{trainer_var}.current_epoch - 1"):
            new.append(stmt(line + "\n"))
        if self.ret_attr is not None:
            new.append(
                stmt(
                    f"if {inst}.{self.ret_attr} is not None:\n    return {inst}.{self.ret_attr}[0]\n"
                )
            )
        return new


def build(plan: LoopPlan, engine: str, tooling: bool) -> tuple[cst.Module, list[Finding]]:
    """The module with the loop replaced, and every finding (SCF001 first)."""
    builder = Builder(plan, engine, tooling)
    if engine != "runtime":
        _check_lightning_epoch_start(plan)
    cls, moved = builder.class_def()
    top = top_level(plan, cls)
    if top is not None:
        cls, builder.closure, fn = top
    else:
        fn = _module_level_block(plan)  # `if __name__ == "__main__":` and other module blocks
    new = builder.replacement(cls, moved)
    if fn is not None:
        # the classes (helpers such as EachEpoch first, then the module) go before the
        # function the loop was in, with the loop's comments; out of a module-level block the
        # comments stay where the loop was
        at = [i for i, x in enumerate(new) if isinstance(x, cst.ClassDef)]
        lines = [ln for ln in new[at[0]].leading_lines if ln.comment is not None]
        blank = [cst.EmptyLine(indent=False)] * 2
        after = at[-1] + 1
        if top is None and after < len(new):
            new[after] = new[after].with_changes(leading_lines=[*new[after].leading_lines, *lines])
            lines = []
        classes = [new[i].with_changes(leading_lines=blank) for i in at]
        classes[0] = classes[0].with_changes(leading_lines=[*blank, *lines])
        builder.top_level_class = (fn, classes)
        new = [x for i, x in enumerate(new) if i not in at]
    findings = builder.findings
    findings.insert(
        0,
        Finding(
            R.LOOP_CONVERTED,
            FIXED,
            f"training loop converted to `{builder.cls_name}` + `{builder.trainer_var}.fit(...)`",
            *plan.where,
        ),
    )
    return splice(builder, new, moved), findings


def splice(builder: Builder, new: list, moved) -> cst.Module:
    """Replaces the outer loop (the epoch loop that calls a train() helper), drops the helpers
    now inside the class, turns a final-evaluation call into ``trainer.test``, and adds the
    imports the new lines need."""
    plan = builder.plan
    site, module = plan.site, plan.module
    others = {}
    if plan.test is not None:
        test = plan.test
        lines = [
            stmt(f"{builder.trainer_var}.test({builder.inst}, {test.loader_code}, verbose=False)\n")
        ]
        if test.target is not None:
            lines.append(stmt(f"{test.target} = {builder.inst}.{plan.test_attr}\n"))
        lines[0] = lines[0].with_changes(leading_lines=test.call_stmt.leading_lines)
        others[test.call_stmt] = lines
    if moved is not None:
        for original_stmt in moved[2]:
            others[original_stmt] = []  # now in configure_optimizers, comments included
    drops, _ = builder.dropped_helpers()
    counter_init = _dead_counter_init(plan, new)
    if counter_init is not None:
        others[counter_init] = [removed(counter_init)] if comments_of(counter_init) else []
    target = plan.outer if site.train_fn is None else site.epoch_for
    if new and site.scope_body and site.scope_body[0] is target:
        # first statement of its block: no blank line opens the block
        lines = [ln for ln in new[0].leading_lines if ln.comment is not None]
        new[0] = new[0].with_changes(leading_lines=lines)
    bound_before = written(module.body)
    module = module.visit(_Splice(target, new, drops, others, builder.top_level_class))
    # the generated lines may name modules the script reached another way (`from torch import
    # nn` only): imported when the script does not bind the name itself
    for name in sorted({"torch", "os"} & (_used(new) - bound_before)):
        module = add_import(module, f"import {name}\n")
    module = _without_unused_taken_over_imports(plan.module, module)
    engine_import = (
        "import runtime as L\n" if builder.engine == "runtime" else "import lightning as L\n"
    )
    return add_import(module, engine_import)


def _dead_counter_init(plan: LoopPlan, new: list):
    """``epochs_without_improvement = 0`` before the loop, once EarlyStopping counts instead
    and nothing else reads the counter."""
    if plan.early is None:
        return None
    counter = plan.early.counter
    inits = [
        s
        for s in plan.state.before
        if m.matches(
            s,
            m.SimpleStatementLine(
                body=[m.Assign(targets=[m.AssignTarget(target=m.Name(counter))])]
            ),
        )
    ]
    if len(inits) != 1 or not isinstance(inits[0].body[0].value, (cst.Integer, cst.Float)):
        return None
    rest = [s for s in plan.module.body if s is not plan.outer and s is not inits[0]]
    scope = [s for s in plan.site.scope_body if s is not plan.outer and s is not inits[0]]
    if plan.site.scope_body is not plan.module.body:
        rest = [s for s in rest if not any(s is d for d in _enclosing(plan))] + scope
    if counter in _used([*rest, *new]) or counter in written([*rest]):
        return None
    return inits[0]


def _enclosing(plan: LoopPlan) -> list:
    """The module-level statement holding the loop's scope (its function)."""
    target = plan.site.scope_body
    return [
        s
        for s in plan.module.body
        if isinstance(s, cst.FunctionDef) and any(x is target[0] for x in s.body.body)
    ]


# what a value the class may take in __init__ is built by: data, hyper-parameters and loss
# functions (no train/eval behaviour: registering one as a submodule changes nothing)
_DATA_BUILDERS = {
    "logging.getLogger",
    "torch.utils.data.DataLoader",
    "torch.utils.data.dataloader.DataLoader",
    "torch.device",
    *(
        f"torch.{f}"
        for f in (
            "randn", "rand", "randint", "randperm", "zeros", "ones", "full", "empty", "eye",
            "tensor", "as_tensor", "from_numpy", "arange", "linspace", "cat", "stack",
        )
    ),
}  # fmt: skip


def _module_level_block(plan: LoopPlan):
    """The module-level compound statement (``if __name__ == "__main__":``, ``with``, ``for``,
    ``try``) the loop sits in, when no function or class lies between: the class reads module
    globals there, so defined just before that statement it reads the same names; else None."""
    site, module = plan.site, plan.module
    if site.scope_body is module.body or plan.roles.synthesized:
        return None
    if plan.hints is not None and plan.hints.model is not None:
        return None
    first = site.scope_body[0]

    def blocks(statement) -> list:
        out = []
        for field in ("body", "orelse", "finalbody"):
            part = getattr(statement, field, None)
            if isinstance(part, cst.If):  # elif
                out.append([part])
            elif isinstance(part, cst.IndentedBlock):
                out.append(part.body)
            elif isinstance(getattr(part, "body", None), cst.IndentedBlock):  # else/finally
                out.append(part.body.body)
        out += [h.body.body for h in getattr(statement, "handlers", ())]
        return out

    def holds(statement) -> bool:
        if statement is first:
            return True
        if isinstance(statement, (cst.FunctionDef, cst.ClassDef)):
            return False
        return any(holds(s) for block in blocks(statement) for s in block)

    return next((s for s in module.body if s is not first and holds(s)), None)


def top_level(plan: LoopPlan, cls):
    """(the class as a top-level class, {script local: attribute}, the function it leaves) when
    the loop sits in a module-level function and every local of that function the class reads
    is data or a hyper-parameter fixed before the loop (so passing it to ``__init__`` gives
    the hooks the same object); None keeps the class where the loop was."""
    site, module = plan.site, plan.module
    if site.scope_body is module.body or plan.roles.synthesized:
        return None
    if plan.hints is not None and plan.hints.model is not None:
        return None
    fn = next(
        (
            s
            for s in module.body
            if isinstance(s, cst.FunctionDef) and any(x is site.scope_body[0] for x in s.body.body)
        ),
        None,
    )
    if fn is None:
        return None
    params = {
        p.name.value
        for p in (*fn.params.params, *fn.params.kwonly_params, *fn.params.posonly_params)
    }
    if (
        fn.params.star_arg not in (None, cst.MaybeSentinel.DEFAULT)
        or fn.params.star_kwarg is not None
    ):
        return None
    wrapper = MetadataWrapper(cst.Module(body=[cls]))
    from libcst.metadata import ParentNodeProvider, ScopeProvider

    scopes = wrapper.resolve(ScopeProvider)
    parents = wrapper.resolve(ParentNodeProvider)
    free: dict[str, list] = {}  # names the class reads but does not bind: its closure
    for scope in {sc for sc in scopes.values() if sc is not None}:
        for access in scope.accesses:
            if isinstance(access.node, cst.Name) and not access.referents:
                free.setdefault(access.node.value, []).append(access.node)
    before, after = list(plan.state.before), list(plan.state.after)
    local = (params | written(list(fn.body.body))) - plan.state.global_names
    init = [
        f for f in cls.body.body if isinstance(f, cst.FunctionDef) and f.name.value == "__init__"
    ]
    taken = (
        _attributes(wrapper.module)
        | LIGHTNING_ATTRS
        | {p.name.value for f in init for p in f.params.params}
    )
    closure: dict[str, str] = {}
    for name in sorted(set(free) & local):
        bound_before = name in params or name in definitely_bound(before)
        plain = _plain_value(name, before, free[name], parents)
        if not bound_before or name in written(after) or not plain:
            return None
        attr = name if name not in taken else _fresh(f"{name}_", taken)
        taken.add(attr)
        closure[name] = attr
    nodes = {id(n): closure[v] for v, ns in free.items() if v in closure for n in ns}
    moved = wrapper.module.visit(_ToSelf(nodes)).body[0]
    if closure:
        # plain settings (numbers, strings) are the module's hyper-parameters: saved with its
        # checkpoints and logged
        settings = [a for n, a in closure.items() if _literal(last_assigned_value(before, n))]
        moved = _with_init_params(moved, [(a, a) for a in closure.values()], settings)
    return moved, closure, fn


def _plain_value(name: str, before: list, uses: list, parents) -> bool:
    """Whether the function's ``name`` is data or a setting (never a model that train/eval
    mode could change): a literal, arithmetic, parsed arguments, a DataLoader, a device, a loss
    function; a parameter of the function whose attributes the class only reads
    (``args.lr``)."""
    value = last_assigned_value(before, name)
    if value is None:
        for node in uses:
            parent = parents.get(node)
            if not (isinstance(parent, cst.Attribute) and parent.value is node):
                return False
            if isinstance(parents.get(parent), cst.Call) and parents[parent].func is parent:
                return False  # a method called on it: it may be a model
        return True
    return _data_expr(value)


_TENSOR_METHODS = {
    "unsqueeze", "squeeze", "view", "reshape", "float", "double", "long", "int", "bool", "half",
    "t", "permute", "transpose", "contiguous", "clone", "detach", "flatten", "sum", "mean",
}  # fmt: skip
_BUILTIN_DATA = {"int", "float", "str", "bool", "len", "round", "min", "max", "abs", "sum"}


def _data_expr(value, depth: int = 0) -> bool:
    """An expression that makes data or settings: literals, names, arithmetic, indexing and
    attributes of them, tensors and data pipelines from torch, optimizers and schedulers,
    loss functions, parsed arguments; never a call of the script's own (it could build a
    model)."""
    if depth > 8:
        return False
    if isinstance(value, (cst.SimpleString, cst.FormattedString, cst.ConcatenatedString)):
        return True
    if isinstance(value, (cst.Name, cst.Integer, cst.Float, cst.Imaginary)):
        return True
    if isinstance(value, cst.BinaryOperation):
        return _data_expr(value.left, depth + 1) and _data_expr(value.right, depth + 1)
    if isinstance(value, cst.UnaryOperation):
        return _data_expr(value.expression, depth + 1)
    if isinstance(value, cst.Attribute):
        return _data_expr(value.value, depth + 1)
    if isinstance(value, cst.Subscript):
        return _data_expr(value.value, depth + 1)
    if isinstance(value, (cst.Tuple, cst.List)):
        return all(_data_expr(e.value, depth + 1) for e in value.elements)
    if not isinstance(value, cst.Call):
        return False
    if (
        isinstance(value.func, cst.Attribute)
        and value.func.attr.value in _TENSOR_METHODS
        and isinstance(value.func.value, cst.Call)
    ):
        # `torch.linspace(...).unsqueeze(1)`: a tensor method of data built by a call
        return _data_expr(value.func.value, depth + 1) and all(
            _data_expr(a.value, depth + 1) for a in value.args
        )
    built = qualified(value) or ""
    if isinstance(value.func, cst.Attribute) and value.func.attr.value == "parse_args":
        return True
    data = (
        built in _DATA_BUILDERS
        or built.startswith(("torch.utils.data.", "torch.optim."))
        or (built.startswith("torch.nn.") and built.endswith("Loss"))
        or built in _BUILTIN_DATA
        or built in {f"builtins.{b}" for b in _BUILTIN_DATA}
    )
    return data  # what these return is decided by the callee, whatever the arguments


def _attributes(module: cst.Module) -> set[str]:
    """Every ``self.<name>`` the class uses."""
    return {
        a.attr.value
        for a in m.findall(module, m.Attribute(value=m.Name("self")))
        if isinstance(a.attr, cst.Name)
    }


class _ToSelf(cst.CSTTransformer):
    """The class's reads of the function's locals -> ``self.<attribute>``."""

    def __init__(self, nodes: dict[int, str]) -> None:
        self.nodes = nodes

    def leave_Name(self, original, updated):
        attr = self.nodes.get(id(original))
        return _self_attr(attr) if attr is not None else updated


def _literal(value) -> bool:
    if isinstance(value, cst.UnaryOperation):
        value = value.expression
    return isinstance(value, (cst.Integer, cst.Float, cst.SimpleString)) or m.matches(
        value, m.Name("True") | m.Name("False")
    )


def _init_method(cls) -> tuple[int, cst.FunctionDef]:
    body = cls.body.body
    return next(
        (i, f) for i, f in enumerate(body) if m.matches(f, m.FunctionDef(name=m.Name("__init__")))
    )


def _init_params(cls) -> set[str]:
    return {p.name.value for p in _init_method(cls)[1].params.params}


def _with_init_params(cls, params: list[tuple[str, str]], settings: list[str] = ()):
    """``__init__`` takes each ``(parameter, attribute)`` and keeps it as ``self.attribute``;
    ``settings``: the parameters it saves as hyperparameters."""
    if not params and not settings:
        return cls
    at, init = _init_method(cls)
    stmts = [*init.body.body, *(stmt(f"self.{a} = {p}\n") for p, a in params)]
    if settings:
        names = ", ".join(f'"{a}"' for a in settings)
        stmts.insert(1, stmt(f"self.save_hyperparameters({names})\n"))
    init = init.with_changes(
        params=init.params.with_changes(
            params=[*init.params.params, *(cst.Param(cst.Name(p)) for p, _ in params)]
        ),
        body=init.body.with_changes(body=stmts),
    )
    body = list(cls.body.body)
    body[at] = init
    return cls.with_changes(body=cls.body.with_changes(body=body))


def _taken_over(full: str) -> bool:
    """Library names whose work the Trainer now does: progress bars, gradient clipping,
    autocast and the gradient scaler."""
    from scaffold.migrate.step import AUTOCASTS, CLIPPING

    return (
        full == "tqdm"
        or full.startswith("tqdm.")
        or full in CLIPPING
        or full in AUTOCASTS
        or full in ("torch.cuda.amp.GradScaler", "torch.amp.GradScaler")
    )


def _without_unused_taken_over_imports(before: cst.Module, after: cst.Module) -> cst.Module:
    """Imports of what the Trainer took over (tqdm, clip_grad_norm_, autocast, GradScaler)
    that only the converted loop used are removed; imports the script never used stay (they
    are the script's), and so does every other import (importing may have side effects)."""
    no_longer_used = used_outside_imports(before) - used_outside_imports(after)
    gone = {
        local_name(alias)
        for s in after.body
        if is_import(s) and not isinstance(s.body[0].names, cst.ImportStar)
        for alias in s.body[0].names
        if _taken_over(qualified_name(s, alias)) and local_name(alias) in no_longer_used
    }
    return drop_imported_names(after, gone)


def _without_globals(stmts: list) -> list:
    """The statements less ``global`` declarations (each hook declares what it assigns)."""
    out = []
    for s in stmts:
        if m.matches(s, m.SimpleStatementLine(body=[m.Global()])):
            if comments_of(s):
                out.append(comment_holder(comments_of(s)))
            continue
        out.append(s)
    return out


def _movable_construction(scope_body, loop_index, opt, sched, model, remaining):
    """``(statements for configure_optimizers, [optimizer, scheduler names], originals)`` when
    ``opt = ...`` (and ``sched = ...``) are plain assignments in the loop's scope that nothing
    but the loop reads, built from names that do not change before the loop; else None."""
    if not re.fullmatch(r"[A-Za-z_]\w*", opt) or (
        model is not None and not re.fullmatch(r"[A-Za-z_]\w*", model)
    ):
        return None  # (model: None when the optimizer trains the script's own tensors)
    if sched is not None and not re.fullmatch(r"[A-Za-z_]\w*", sched):
        return None
    wanted = [opt] + ([sched] if sched else [])
    found = {}
    for i, s_ in enumerate(scope_body[:loop_index]):
        assigned = _assigned([s_])
        for name in wanted:
            if name in assigned:
                if name in found or not (
                    isinstance(s_, cst.SimpleStatementLine)
                    and len(s_.body) == 1
                    and isinstance(s_.body[0], cst.Assign)
                    and len(s_.body[0].targets) == 1
                    and m.matches(s_.body[0].targets[0].target, m.Name(name))
                ):
                    return None
                found[name] = i
    if set(found) != set(wanted):
        return None
    if sched is not None and found[sched] < found[opt]:
        return None
    moved_idx = sorted(found.values())
    moved = [scope_body[i] for i in moved_idx]
    if any(s_.body[0].value is None for s_ in moved):
        return None
    between = [
        s_
        for i, s_ in enumerate(scope_body[moved_idx[0] : loop_index], moved_idx[0])
        if i not in moved_idx
    ]
    if _assigned(between) & _used(moved):
        return None  # built from something that changes before the loop
    if _restructured(between, _used(moved)):
        return None  # `model.fc = nn.Linear(...)` after the optimizer: it holds the old head
    if any(definition(c) is not None for s_ in moved for c in m.findall(s_, m.Call())):
        # a helper of the script's (`set_optimizer(opt, model)`) may do more than build the
        # optimizer (initialise weights, draw random numbers): it runs where the script ran it
        return None
    others = [s_ for i, s_ in enumerate(scope_body) if i not in moved_idx and i != loop_index]
    if set(wanted) & (_used(between) | _used(remaining) | _used(others)):
        return None  # read elsewhere (printed, saved, passed on)
    to_self = {model: cst.Attribute(cst.Name("self"), cst.Name("model"))} if model else {}
    renamed = transform_stmts(moved, _Renamer(to_self))
    renamed = [s_.with_changes(leading_lines=comments_of(s_)) for s_ in renamed]
    return renamed, wanted, moved


_RESTRUCTURING = {"add_module", "register_module", "register_parameter", "register_buffer"}


def _restructured(stmts, names: set[str]) -> bool:
    """Whether ``stmts`` give an object of ``names`` new parts (``model.fc = ...``,
    ``model[2] = ...``, ``del model.head``, ``setattr(model, ...)``, ``model.add_module(...)``):
    an optimizer built before them holds other parameters than one built after them."""

    def rooted(expr) -> bool:
        while isinstance(expr, (cst.Attribute, cst.Subscript)):
            expr = expr.value
        return isinstance(expr, cst.Name) and expr.value in names

    for node in (n for s in stmts for n in walk(s)):
        targets = []
        if isinstance(node, (cst.AssignTarget, cst.AugAssign, cst.AnnAssign, cst.Del)):
            targets = [node.target]
        for target in targets:
            parts = target.elements if isinstance(target, (cst.Tuple, cst.List)) else [target]
            for part in parts:
                if isinstance(part, (cst.Element, cst.StarredElement)):
                    part = part.value
                if isinstance(part, (cst.Attribute, cst.Subscript)) and rooted(part):
                    return True
        if isinstance(node, cst.Call) and node.args:
            func = node.func
            if m.matches(func, m.Name("setattr") | m.Name("delattr")) and rooted(
                node.args[0].value
            ):
                return True
            if (
                isinstance(func, cst.Attribute)
                and func.attr.value in _RESTRUCTURING
                and rooted(func.value)
            ):
                return True
    return False


class _Splice(cst.CSTTransformer):
    def __init__(
        self, target, replacement: list, drops: list, others: dict | None = None, before=None
    ) -> None:
        self.target, self.replacement, self.drops = target, replacement, drops
        self.others = others or {}
        self.before = before  # (statement, [statements to put before it])

    def on_leave(self, original, updated):
        if original is self.target:
            return cst.FlattenSentinel(self.replacement)
        if self.before is not None and original is self.before[0]:
            # two blank lines between the class and the statement after it
            lines = list(updated.leading_lines)
            opening = next((i for i, ln in enumerate(lines) if ln.comment is not None), len(lines))
            lines[:0] = [cst.EmptyLine(indent=False)] * max(0, 2 - opening)
            return cst.FlattenSentinel([*self.before[1], updated.with_changes(leading_lines=lines)])
        for old, new in self.others.items():
            if original is old:
                return cst.FlattenSentinel(new)
        if any(original is d for d in self.drops):
            return cst.RemoveFromParent()
        return updated


def _until_break_class(name: str, leading_lines, stops_before: bool = False) -> cst.ClassDef:
    """The train loader's batches up to the training loop's ``break``, then a placeholder;
    ``stops_before``: an epoch stopped before it started does not iterate the loader at all."""
    first = (
        "        batches = None if self.stopped() else iter(self.loader)\n"
        if stops_before
        else "        batches = iter(self.loader)\n"
    )
    code = (
        f"class {name}:\n"
        '    """The batches of an epoch up to the training loop\'s `break`. Once it broke, the\n'
        "    epoch gets an empty placeholder (on_train_batch_start ends the epoch on it)\n"
        "    instead of one more batch from the loader: the script drew no batch after its\n"
        '    `break`, and drawing one can run the dataset\'s random transforms."""\n'
        "\n"
        "    def __init__(self, loader, stopped):\n"
        "        self.loader = loader\n"
        "        self.stopped = stopped\n"
        "\n"
        "    def __len__(self):\n"
        "        return len(self.loader)\n"
        "\n"
        "    def __iter__(self):\n"
        f"{first}"
        "        while not self.stopped():\n"
        "            try:\n"
        "                batch = next(batches)\n"
        "            except StopIteration:\n"
        "                return\n"
        "            yield batch\n"
        "        yield ()\n"
    )
    return cst.parse_statement(code).with_changes(leading_lines=leading_lines)


# calls in an epoch's statements before the batch loop that cannot draw random numbers or
# change what the loader yields
_QUIET_CALLS = frozenset(
    {"print", "len", "range", "time.time", "time.perf_counter", "time.monotonic"}
)


def _check_lightning_epoch_start(plan: LoopPlan) -> None:
    """Lightning iterates the train loader once at set-up, before the first epoch's
    on_train_epoch_start (a DataLoader's iterator draws its seed from torch's random generator
    there; an iterable without a length yields its first batch), so the statements the script
    ran each epoch before its batch loop would run after that draw in epoch 0. Where they call
    anything that may draw random numbers or change the batches, the Lightning engine would
    compute other numbers: refused (the runtime engine keeps the script's order). A loader the
    epoch loop makes anew (``plan.loader_attr``) does not exist yet at that draw."""
    for s_ in [*plan.site.epoch_pre, *plan.site.fn_pre]:
        for call in m.findall(s_, m.Call()):
            name = code_of(call.func)
            if name in _QUIET_CALLS or m.matches(
                call.func, m.Attribute(attr=m.Name("train") | m.Name("eval"))
            ):
                continue
            plan.refuse(
                R.ENGINE_ORDER,
                f"`{code_of(s_).strip().splitlines()[0][:60]}` runs each epoch before the batch "
                "loop, and Lightning draws from the loader (and torch's random generator) at "
                "set-up, before the first epoch's on_train_epoch_start: under `--engine "
                "lightning` the first epoch would see other numbers. Migrate with the runtime "
                "engine (it keeps the script's order), or move the statement",
            )
    if plan.loader_attr is not None:
        plan.refuse(
            R.LOADER_PER_EPOCH,
            f"the batch loop iterates over `{plan.loader_attr}`, which the epoch loop makes anew "
            "each epoch: Lightning draws the first epoch's first batch before the first epoch's "
            "on_train_epoch_start, where the script had not made it yet. Migrate with the "
            "runtime engine, or build the loader once before the epoch loop",
        )


def _each_epoch_class(name: str, leading_lines) -> cst.ClassDef:
    """A re-iterable stand-in for a loop header that made its batches anew each epoch."""
    code = (
        f"class {name}:\n"
        '    """The batches of one epoch, made anew every epoch as the script\'s loop header\n'
        '    did (a generator, zip or enumerate runs out after one pass)."""\n'
        "\n"
        "    def __init__(self, make):\n"
        "        self.make = make\n"
        "\n"
        "    def __iter__(self):\n"
        "        yield from self.make()  # made when the epoch's first batch is drawn\n"
    )
    return cst.parse_statement(code).with_changes(leading_lines=leading_lines)


def _called_from_elsewhere(module, fn, depth: int = 0) -> bool:
    """Whether ``fn`` runs only for another module: this file never calls it, or calls it only
    from functions that are themselves called from elsewhere."""
    from scaffold.migrate.locate import statement_calls

    if not calls_of(module, fn.name.value):
        return True
    calls = statement_calls(module, fn.name.value) or []
    return bool(calls) and all(
        enclosing is not None and depth < 3 and _called_from_elsewhere(module, enclosing, depth + 1)
        for _, _, _, enclosing in calls
    )
