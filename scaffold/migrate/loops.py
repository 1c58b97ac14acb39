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
from dataclasses import dataclass

import libcst as cst
from libcst.metadata import MetadataWrapper, PositionProvider

import scaffold.migrate.match as m
from scaffold.migrate import rules as R
from scaffold.migrate.dataflow import declared_global, definitely_bound, incoming, written
from scaffold.migrate.findings import FIXED, CannotConvert, Finding
from scaffold.migrate.locate import (
    locate,
)
from scaffold.migrate.step import (
    _flatten_accumulation,
    _flatten_amp,
    _manual_update,
    _manual_update_optimizer,
    amp_precision,
    plan_step,
)
from scaffold.migrate.syntax import (
    LIGHTNING_ATTRS,
    _assigned,
    _assignment_value,
    _bound_names,
    _BreakReplacer,
    _dotted,
    _fresh,
    _loop_comments,
    _method_call,
    _receiver,
    _Renamer,
    _simple,
    _statement_index,
    _unwrap_loader,
    _used,
    batch_unpack,
    call_bindings,
    calls_of,
    code_of,
    comment_holder,
    comments_of,
    last_assigned_value,
    re_word,
    split_lines,
    stmt,
    transform_stmts,
    with_comments,
)


def _scheduler_steps(stmts, names_ok) -> tuple[list, list[str], list[cst.EmptyLine]]:
    """Removes argument-less ``sched.step()`` statements; returns (kept, schedulers, comments)."""
    kept, found, comments = [], [], []
    for s in stmts:
        call = _method_call(s, "step")
        name = _dotted(_receiver(call)) if call is not None and not call.args else None
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


def _find_device(scope_bodies, model_code: str) -> tuple[str | None, str | None]:
    """(device expression the model is moved to, condition under which ``.cuda()`` is called:
    ``"True"`` when always, None when never)."""
    for body in scope_bodies:
        found = _device_in(body, model_code, [])
        if found is not None:
            return found
    return None, None


def _trained_models(construction, scope_bodies) -> list[str]:
    """The modules whose ``.parameters()`` an optimizer's construction takes, in order; a
    variable holding them (``params = list(enc.parameters()) + list(dec.parameters())``) is
    followed one step."""
    found: list[str] = []
    pattern = m.Call(func=m.Attribute(attr=m.Name("parameters") | m.Name("named_parameters")))
    for call in m.findall(construction, pattern):
        found.append(code_of(call.func.value))
    if found or not isinstance(construction, cst.Call):
        return list(dict.fromkeys(found))
    for arg in construction.args[:1]:
        if isinstance(arg.value, cst.Name):
            for body in scope_bodies:
                value = _assignment_value(body, arg.value.value)
                if value is not None:
                    return _trained_models(value, [])
    return []


def _names_a_device(expr, scope_bodies, depth: int = 0) -> bool:
    """``"cuda"``, ``torch.device(...)``, ``"cuda" if c else "cpu"``, or a variable assigned one
    of these: a value ``torch.device(value)`` accepts on any machine."""
    if isinstance(expr, (cst.SimpleString, cst.FormattedString)):
        return True
    if isinstance(expr, cst.Call):
        return code_of(expr.func) in ("torch.device", "device")
    if isinstance(expr, cst.IfExp):
        return _names_a_device(expr.body, scope_bodies, depth) and _names_a_device(
            expr.orelse, scope_bodies, depth
        )
    if isinstance(expr, cst.Name) and depth < 3:
        for body in scope_bodies:
            value = _assignment_value(body, expr.value)
            if value is not None:
                return _names_a_device(value, scope_bodies, depth + 1)
    return False


def _suite(suite) -> list:
    """The statements of a block (a one-line ``if x: y`` block as one statement line)."""
    if isinstance(suite, cst.SimpleStatementSuite):
        return [cst.SimpleStatementLine(body=suite.body)]
    return list(suite.body)


def _device_in(body, model_code: str, conditions: list[str]):
    for s in body:
        if isinstance(s, cst.If):
            test = code_of(s.test)
            found = _device_in(
                _suite(s.body), model_code, [*conditions, test if _simple(test) else f"({test})"]
            )
            if found is None and isinstance(s.orelse, cst.Else):
                found = _device_in(
                    _suite(s.orelse.body), model_code, [*conditions, f"not ({test})"]
                )
            elif found is None and isinstance(s.orelse, cst.If):
                found = _device_in([s.orelse], model_code, [*conditions, f"not ({test})"])
            if found is not None:
                return found
            continue
        if not isinstance(s, cst.SimpleStatementLine):
            continue
        for call in m.findall(s, m.Call(func=m.Attribute(attr=m.Name("to") | m.Name("cuda")))):
            receiver = code_of(call.func.value)
            assigned_model = any(
                isinstance(x, cst.Assign)
                and any(code_of(t.target) == model_code for t in x.targets)
                for x in s.body
            )
            if receiver == model_code or assigned_model:
                if call.func.attr.value == "cuda":
                    return None, " and ".join(conditions) or "True"
                if call.args:
                    return code_of(call.args[0].value), None
    return None


@dataclass
class Hints:
    """What earlier passes learned: the model and its device when the optimizer is built out of
    sight (trainer classes), and the distributed setup the Trainer takes over."""

    model: str | None = None
    device: str | None = None
    dist: object | None = None  # ddp.DistInfo


def convert(
    module: cst.Module, engine: str = "runtime", hints: Hints | None = None, tooling: bool = True
) -> tuple[cst.Module, list[Finding]]:
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
        fn_map = call_bindings(site.train_fn, site.train_call.body[0].value)
        if fn_map is None:
            refuse(
                R.CALL_ARGUMENTS,
                f"`{site.train_fn.name.value}(...)` uses *args/**kwargs; not converted",
            )

    def outer_code(name: str) -> str:
        return fn_map.get(name, name)

    scope_bodies = [site.scope_body, module.body]
    findings_pre: list[Finding] = []
    # which optimizer, which model
    flat, _, _ = _flatten_amp(split_lines(site.batch_for.body.body), position, site.batch_for)
    flat, _ = _flatten_accumulation(flat, site.batch_for)
    step_names = [_dotted(_receiver(c)) for s in flat if (c := _method_call(s, "step"))]
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
                    R.HANDWRITTEN_UPDATE,
                    FIXED,
                    "hand-written parameter update wrapped as the "
                    f"step of an optimizer (`{opt_cls}`), run by the Trainer",
                    *where,
                )
            )
    if not step_names and m.findall(site.batch_for, m.Call(func=m.Attribute(attr=m.Name("step")))):
        refuse(
            R.STEP_CLOSURE,
            "`optimizer.step(...)` is used inside an expression or a nested block "
            "(e.g. `loss = optimizer.step(closure)`); not converted",
        )
    if not step_names or step_names[0] is None:
        refuse(R.NO_STEP, "no `optimizer.step()` statement in the batch loop")
    opt_code = outer_code(step_names[0])
    for body in scope_bodies:
        if construction is not None:
            break
        construction = _assignment_value(body, opt_code)
    model_code = None
    extra_models: list[str] = []  # further modules whose parameters the optimizer holds
    if construction is not None:
        trained = _trained_models(construction, scope_bodies)
        if trained:
            model_code = trained[0]
            extra_models = [
                n for n in trained[1:] if re.fullmatch(r"[A-Za-z_]\w*", n) and n != model_code
            ]
    if model_code is None and hints is not None and hints.model is not None:
        model_code = hints.model
    if model_code is None:
        refuse(
            R.MODEL_UNKNOWN,
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
        # schedulers stepped by the script stay the script's business (the Trainer never steps
        # them with manual optimization); only optimizers are handed over
        plan.optimizers = [
            n for n in plan.optimizers if not _is_scheduler(outer_code(n), scope_bodies)
        ]
        if not plan.optimizers:
            refuse(R.NO_STEP, "no `optimizer.step()` in the batch loop")
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
            found = _trained_models(value, scope_bodies) if value is not None else []
            if not found or not re.fullmatch(r"[A-Za-z_]\w*", code):
                refuse(R.MODEL_UNKNOWN, f"cannot tell which model `{code}` trains")
            manual_opts.append(code)
            for model in found:
                if not re.fullmatch(r"[A-Za-z_]\w*", model):
                    refuse(R.MODEL_UNKNOWN, f"the model `{model}` must be a plain variable")
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
                R.EARLY_RETURN,
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
            refuse(
                R.SCHEDULER_SHARED, "a per-batch scheduler that other code reads is not converted"
            )
        all_scheds, epoch_sched_names, step_sched_names = [], [], []
    else:
        for name in all_scheds:
            interval = "epoch" if name in epoch_sched_names else "step"
            findings.append(
                Finding(
                    R.SCHEDULER_MOVED,
                    FIXED,
                    f"`{name}.step()` moved to configure_optimizers (interval={interval!r})",
                    *where,
                )
            )

    # the epoch loop
    epoch_iter = None
    epoch_values: dict[str, str] = {}  # epoch-loop variable -> its value, "{i}" = epoch index
    while_test = None
    if isinstance(site.epoch_for, cst.While):
        while_test = site.epoch_for.test
        if site.epoch_for.orelse is not None:
            refuse(R.LOOP_ELSE, "`while ... else` on the epoch loop is not converted")
        if m.findall(cst.Module(body=list(site.epoch_pre)), m.Break() | m.Continue()):
            refuse(
                R.EARLY_CONTROL_FLOW, "`break`/`continue` before the batch loop is not converted"
            )
        findings.append(
            Finding(
                R.EPOCH_LOOP_MAPPED,
                FIXED,
                f"`while {code_of(while_test)}` mapped to "
                "Trainer(max_epochs=-1), stopping when the condition turns false "
                "at an epoch's end",
                *where,
            )
        )
    elif site.epoch_for is not None:
        epoch_values = _epoch_values(site.epoch_for, refuse)
        it = site.epoch_for.iter
        if m.matches(it, m.Call(func=m.Name("enumerate"))):
            it = it.args[0].value
        epoch_iter = code_of(it)
        if site.epoch_for.orelse is not None:
            refuse(R.LOOP_ELSE, "`for ... else` on the epoch loop is not converted")
        if m.findall(cst.Module(body=list(site.epoch_pre)), m.Break() | m.Continue()):
            refuse(
                R.EARLY_CONTROL_FLOW, "`break`/`continue` before the batch loop is not converted"
            )
        findings.append(
            Finding(
                R.EPOCH_LOOP_MAPPED,
                FIXED,
                f"epoch loop mapped to Trainer(max_epochs=len({epoch_iter}))",
                *where,
            )
        )

    def epoch_lines(used: set[str], texts=(), index: str = "self.current_epoch") -> list[str]:
        """``epoch = range(...)[self.current_epoch]`` (and the enumerate index) for the epoch
        variables that ``used`` holds or ``texts`` mention."""
        return [
            f"{name} = {value.format(i=index)}"
            for name, value in epoch_values.items()
            if name in used or any(re_word(name, t) for t in texts)
        ]

    if site.batch_for.orelse is not None:
        refuse(R.LOOP_ELSE, "`for ... else` on the batch loop is not converted")
    if m.findall(cst.Module(body=list(epoch_post)), m.Continue()):
        refuse(R.EARLY_CONTROL_FLOW, "`continue` in the epoch loop is not converted")

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
            epoch_post = epoch_post[len(val.lead) + 1 :]
            findings.append(
                Finding(
                    R.VALIDATION_HOOKS,
                    FIXED,
                    f"evaluation helper `{val.fn.name.value}()` "
                    "converted to validation_step and the validation epoch hooks",
                    *where,
                )
            )
        else:
            from scaffold.migrate.evaluation import plan_inline_validation

            val = plan_inline_validation(epoch_post, fn_post)
            if val is not None:
                epoch_post = val.rest
                here_ = position(val.call_stmt)
                findings.append(
                    Finding(
                        R.VALIDATION_HOOKS,
                        FIXED,
                        "evaluation loop of the epoch converted to validation_step "
                        "(the statements before it run in on_validation_epoch_start)",
                        here_.line,
                        here_.column + 1,
                    )
                )
    # variables carried across batches or epochs become attributes of the module
    idx = _statement_index(site.scope_body, site.train_call if site.train_fn else outer)
    if site.train_fn is not None:
        idx = _statement_index(site.scope_body, site.epoch_for)
    before, after = site.scope_body[:idx], site.scope_body[idx + 1 :]
    early = None
    if isinstance(site.epoch_for, cst.For):
        from scaffold.migrate.early_stop import plan_early_stopping

        early = plan_early_stopping(list(epoch_post), [*before, *site.fn_pre], after)
        if early is not None:
            epoch_post = early.post
            findings.append(
                Finding(
                    R.EARLY_STOPPING,
                    FIXED,
                    f"early-stopping counter `{early.counter}` mapped to EarlyStopping("
                    f'monitor="{early.metric}"); the metric is logged at the end of each epoch',
                    *where,
                )
            )
    targets = _bound_names(site.batch_for.target)
    # data flow (scaffold.migrate.dataflow): a variable becomes an attribute of the module only
    # when its value crosses from one hook call to another, or from the loop to the code after it
    u_after = _read_later(
        after, module, site.scope_body is module.body, [site.train_fn] if site.train_fn else []
    )
    outer_globals = declared_global(site.scope_body)
    if site.train_fn is None:
        pre, post = list(site.epoch_pre), list(epoch_post) + while_check
        hook_writes = written(pre) | written(plan.body) | targets | written(post)
        hook_reads = incoming(pre) | incoming(plan.body, targets) | incoming(post) | u_after
        shared = (hook_writes & hook_reads) - set(epoch_values) - outer_globals
        fn_shared: set[str] = set()
        fn_globals: set[str] = set()
    else:
        fn_globals = declared_global(site.fn_pre)
        params = {p.name.value for p in site.train_fn.params.params}
        f_writes = written(site.fn_pre) | written(plan.body) | targets | written(fn_post)
        f_reads = (
            incoming(site.fn_pre) | incoming(plan.body, targets) | incoming(fn_post)
        ) - params
        fn_shared = (f_writes & f_reads) - fn_globals
        e_writes = written(site.epoch_pre) | written(epoch_post) | ({call_target} - {None})
        e_reads = (
            incoming(site.epoch_pre)
            | incoming(epoch_post + while_check)
            | u_after
            | (f_reads - f_writes)
        )
        shared = (e_writes & e_reads) - set(epoch_values) - outer_globals
        if shared & fn_shared:
            refuse(
                R.STATE_CONFLICT,
                f"variables {sorted(shared & fn_shared)} are used both in the epoch loop and in "
                f"`{site.train_fn.name.value}()`; not converted",
            )
    if val is not None and val.target is not None:
        shared.add(val.target)
    if val is not None and (val.inline or val.lead):
        # the evaluation code's variables (written in the epoch loop) live across hooks
        if val.inline:
            v_targets = _bound_names(val.call_stmt.body.body[0].target)
            v_writes = written([*val.pre, *val.body]) | v_targets
            # the evaluation loop's body runs with its batch names bound
            v_reads = incoming(val.pre) | incoming(val.body, written(val.pre) | v_targets)
        else:
            v_writes, v_reads = written(val.lead), incoming(val.lead)
        later = incoming(epoch_post + while_check) | u_after | incoming(site.epoch_pre)
        shared |= v_writes & (later | v_reads)
        if site.train_fn is None:
            # what the evaluation reads from the training part (not its own variables)
            shared |= (written(site.epoch_pre) | written(plan.body) | targets) & (
                v_reads - v_writes
            )
        shared -= set(epoch_values) | outer_globals
    global_names = outer_globals | fn_globals
    attr_of = {n: (n if n not in LIGHTNING_ATTRS else f"{n}_") for n in shared | fn_shared}
    # an evaluation helper called after training (a final evaluation) becomes the test hooks
    test, test_attr = _plan_test(module, after, set(epoch_values)), None
    if test is not None:
        if test.target is not None:
            test_attr = _fresh(
                test.target if test.target not in LIGHTNING_ATTRS else f"{test.target}_",
                set(attr_of.values()) | {stop_attr},
            )
        findings.append(
            Finding(
                R.TEST_HOOKS,
                FIXED,
                f"final evaluation `{test.fn.name.value}()` converted to test_step and the test "
                "epoch hooks, run by trainer.test where the script called it",
                *(lambda p: (p.line, p.column + 1))(position(test.call_stmt)),
            )
        )
    # the hooks use the module's own attributes for the model(s) it holds, where the name is
    # the same object throughout the loop (never rebound by it)
    own_models = _own_model_attrs(
        {n: attr_of_model(n) for n in manual_models}
        if plan.manual
        else {**{n: attr_of_model(n) for n in extra_models}, **dict.fromkeys(model_names, "model")},
        written(site.epoch_pre)
        | written(plan.body)
        | written(epoch_post)
        | written(site.fn_pre)
        | written(fn_post)
        | targets
        | shared
        | fn_shared
        | global_names,
    )
    renamer = _Renamer(
        {
            **{n: cst.Attribute(cst.Name("self"), cst.Name(a)) for n, a in own_models.items()},
            **{n: cst.Attribute(cst.Name("self"), cst.Name(a)) for n, a in attr_of.items()},
        }
    )

    body = transform_stmts(plan.body, renamer)
    if plan.breaks:
        last = body[-1] if body else None
        if (
            last is None
            or not m.findall(last, m.Break())
            or any(m.findall(s, m.Break()) for s in body[:-1])
        ):
            refuse(R.BREAK_POSITION, "`break` in the batch loop must be in its last statement")
        body = transform_stmts(
            body, _BreakReplacer(cst.parse_statement(f"self.{stop_attr} = True\n").body[0])
        )
        findings.append(
            Finding(
                R.BREAK_MAPPED,
                FIXED,
                "`break` of the batch loop ends the epoch (on_train_batch_start returns -1)",
                *where,
            )
        )
    e_pre = _without_globals(transform_stmts(site.epoch_pre, renamer))
    e_post = _without_globals(transform_stmts(epoch_post, renamer))
    f_pre = _without_globals(transform_stmts(site.fn_pre, renamer))
    f_post = _without_globals(transform_stmts(fn_post, renamer))
    if m.findall(cst.Module(body=e_post), m.Break()):
        if not m.findall(e_post[-1], m.Break()) or any(
            m.findall(s, m.Break()) for s in e_post[:-1]
        ):
            refuse(R.BREAK_POSITION, "`break` in the epoch loop must be in its last statement")
        e_post = transform_stmts(
            e_post, _BreakReplacer(cst.parse_statement("self.trainer.should_stop = True\n").body[0])
        )
        findings.append(
            Finding(
                R.BREAK_MAPPED,
                FIXED,
                "`break` of the epoch loop stops the Trainer after this epoch",
                *where,
            )
        )
    if while_check:
        e_post = [*e_post, *transform_stmts(while_check, renamer)]
    if m.findall(cst.Module(body=f_pre + f_post), m.Return()):
        refuse(
            R.EARLY_RETURN,
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
                            R.CALL_ARGUMENTS,
                            f"parameter `{name}` of `{site.train_fn.name.value}()` has no value at the call",
                        )
                    if _simple(fn_map[name]):
                        bindings.append(f"{name} = {fn_map[name]}")
                    else:
                        # evaluated once per call, as the original call did (see arg_stmts)
                        bindings.append(f"{name} = self.{name}_arg")
                        evaluated_args.add(name)
        lines += epoch_lines(used, bindings)
        lines += bindings
        return [stmt(line + "\n") for line in lines]

    evaluated_args: set[str] = set()
    unpack_lines = batch_unpack(site.batch_for)
    if unpack_lines is None:
        refuse(R.LOOP_TARGET, "`enumerate` loop target must be `index, batch`")
    # `i = batch_idx` only where the step reads `i`
    read_in_step = _used(plan.body)
    unpack_lines = [
        line
        for line in unpack_lines
        if "batch_idx" not in line or line.split(" = ")[0] in read_in_step | shared | fn_shared
    ]
    unpack = transform_stmts([stmt(line + "\n") for line in unpack_lines], renamer)
    loader, _, _ = _unwrap_loader(site.batch_for.iter)
    loader_code = code_of(loader)
    if site.train_fn is not None and isinstance(loader, cst.Name):
        loader_code = outer_code(loader.value)
    loader_code = _loader_at_fit(loader_code, [*site.epoch_pre, *site.fn_pre], refuse)
    for scope in scope_bodies:
        value = _assignment_value(scope, loader_code)
        if isinstance(value, (cst.List, cst.Tuple, cst.ListComp)):
            refuse(
                R.LIST_OF_BATCHES,
                f"`{loader_code}` is a Python list of batches; the Trainer takes a DataLoader (or "
                "a list of DataLoaders), so wrap the data in a Dataset/DataLoader first",
            )
        if value is not None:
            break

    if plan.manual:
        # self.optimizers() gives one optimizer, or a list when there are several
        unpack.insert(0, stmt(f"{', '.join(plan.optimizers)} = self.optimizers()\n"))
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
            Finding(
                R.LOSS_LOGGED, FIXED, "training loss logged with self.log('train_loss')", *where
            )
        )
    elif ret.leading_lines:
        step_body.append(comment_holder(ret.leading_lines))

    # --- the class
    methods: list = []

    def method(signature: str, stmts: list):
        # names the script declared `global` stay globals in every hook that assigns them
        declare = sorted(written(stmts) & global_names)
        if declare:
            stmts = [stmt(f"global {', '.join(declare)}\n"), *stmts]
        fn = cst.parse_statement(f"def {signature}:\n    pass\n")
        return fn.with_changes(body=fn.body.with_changes(body=stmts), leading_lines=[])

    init = [
        stmt("super().__init__()\n"),
        stmt("self.model = model\n"),
        stmt("self.optimizer = optimizer\n"),
    ]
    # every module the optimizer trains is a submodule (device moves, train/eval, checkpoints)
    extras = [] if plan.manual else extra_models
    init[2:2] = [stmt(f"self.{attr_of_model(n)} = {n}\n") for n in extras]
    model_sig = ", ".join(["model", *extras])
    init_sig = f"__init__(self, {model_sig}, optimizer"
    init_at = len(methods)
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
        arg_lines[:0] = epoch_lines(set(), arg_lines)
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

    def eval_methods(plan, prefix: str, suffix: str, result_attr: str | None) -> list:
        """validation/test hooks from an evaluation helper's plan."""
        taken_attrs = set(attr_of.values())
        local_attr = {
            n: (n if n not in LIGHTNING_ATTRS | taken_attrs else f"{n}_{suffix}")
            for n in plan.local_shared
        }
        rebound = {b.split(" = ")[0] for b in plan.bindings if len(set(b.split(" = "))) > 1}
        renamer_ = _Renamer(
            {
                **{
                    n: cst.Attribute(cst.Name("self"), cst.Name(a))
                    for n, a in own_models.items()
                    if n not in rebound | set(plan.local_shared)
                },
                **{n: cst.Attribute(cst.Name("self"), cst.Name(a)) for n, a in local_attr.items()},
            }
        )
        if plan.inline:
            renamer_ = renamer  # the epoch loop's own variables: the same attributes

        def eval_prelude(code_stmts) -> list:
            lines = []
            used_here = _used(code_stmts)
            binds = [b for b in plan.bindings if b.split(" = ")[0] in used_here]
            lines += epoch_lines(used_here, binds)
            return [stmt(x + "\n") for x in lines + binds]

        v_pre = transform_stmts(plan.lead, renamer) + transform_stmts(plan.pre, renamer_)
        v_unpack = [stmt(x + "\n") for x in plan.unpack]
        v_body = transform_stmts(plan.body, renamer_)
        v_post = transform_stmts(plan.post, renamer_)
        if result_attr is not None:
            value = (
                transform_stmts([cst.SimpleStatementLine([cst.Expr(plan.returned)])], renamer_)[0]
                .body[0]
                .value
            )
            v_post.append(stmt(f"self.{result_attr} = {code_of(value)}\n"))
        out = []
        if v_pre:
            out.append(method(f"on_{prefix}_epoch_start(self)", eval_prelude(v_pre) + v_pre))
        out.append(
            method(
                f"{prefix}_step(self, batch, batch_idx)",
                eval_prelude(v_unpack + v_body) + v_unpack + (v_body or [stmt("pass\n")]),
            )
        )
        if v_post:
            out.append(method(f"on_{prefix}_epoch_end(self)", eval_prelude(v_post) + v_post))
        return out

    if val is not None:
        methods += eval_methods(
            val, "validation", "val", attr_of[val.target] if val.target is not None else None
        )
        # the model's mode stays the script's business: it switched to eval mode itself (and the
        # rest of the epoch ran in eval mode), or it evaluated in training mode
        if val.calls_eval:
            methods.append(
                method(
                    "on_validation_model_train(self)",
                    [stmt("pass  # the model stays in eval mode, as the script left it\n")],
                )
            )
        else:
            methods.append(
                method(
                    "on_validation_model_eval(self)",
                    [stmt("pass  # the script evaluated without switching to eval mode\n")],
                )
            )
    test_methods = []
    if test is not None:
        test_methods = eval_methods(test, "test", "test", test_attr)
        test_methods.append(
            method(
                "on_test_model_train(self)",
                [
                    stmt(
                        "pass  # the model stays in eval mode after testing, as the script left it\n"
                    )
                ],
            )
        )
    end_stmts = []
    if f_post:
        end_stmts += prelude(f_post, True) + f_post
    if e_post:
        end_stmts += prelude(e_post, False) + e_post
    tail_comments = fn_tail_comments + ep_tail_comments
    if end_stmts:
        methods.append(method("on_train_epoch_end(self)", end_stmts))
    methods += test_methods
    # the optimizer (and scheduler) construction moves into configure_optimizers when nothing
    # else reads them and what they are built from is not reassigned before the loop
    moved = None
    if not plan.manual and not synthesized and (hints is None or hints.model is None):
        moved = _movable_construction(
            site.scope_body,
            idx,
            opt_code,
            all_scheds[0] if all_scheds else None,
            model_code,
            [*methods[init_at + 2 :], *site.scope_body[idx + 1 :]],
        )
    if moved is not None:
        moved_names = moved[1]
        init = [s_ for s_ in init if "self.optimizer = " not in code_of(s_)]
        init = [s_ for s_ in init if "self.scheduler = " not in code_of(s_)]
        init_sig = f"__init__(self, {model_sig}"
        methods[init_at] = method(init_sig + ")", init)
        findings.append(
            Finding(
                R.CONSTRUCTION_MOVED,
                FIXED,
                f"construction of {' and '.join(f'`{n}`' for n in moved_names)} moved into "
                "configure_optimizers",
                *where,
            )
        )
    opt_ref = moved[1][0] if moved else "self.optimizer"
    sched_ref = moved[1][1] if moved and len(moved[1]) > 1 else "self.scheduler"
    if all_scheds:
        interval = "epoch" if epoch_sched_names else "step"
        conf = [
            stmt(
                "return {\n"
                f'    "optimizer": {opt_ref},\n'
                f'    "lr_scheduler": {{"scheduler": {sched_ref}, "interval": "{interval}"}},\n'
                "}\n"
            )
        ]
    elif plan.manual:
        conf = [stmt("return self.optimizers_list\n")]
    else:
        conf = [stmt(f"return {opt_ref}\n")]
    if tail_comments:
        conf[0] = with_comments(conf[0], tail_comments)
    if moved is not None and len(moved[0]) == 1 and not all_scheds:
        only = moved[0][0]
        conf = [
            with_comments(
                stmt(f"return {code_of(only.body[0].value)}\n"),
                [*comments_of(only), *comments_of(conf[0])],
            )
        ]
    elif moved is not None:
        conf = [*moved[0], *conf]
    methods.append(method("configure_optimizers(self)", conf))

    # helpers whose every call was converted are removed (their comments move to the class)
    drops = [site.train_fn] if site.train_fn is not None else []
    converted_calls: dict[str, int] = {}
    for p in (val, test):
        if p is not None and p.fn is not None:
            converted_calls[p.fn.name.value] = converted_calls.get(p.fn.name.value, 0) + 1
    header_comments = _loop_comments(outer)
    for p in (val, test):
        if p is not None and p.fn is not None and p.fn not in drops:
            name = p.fn.name.value
            if calls_of(module, name) == converted_calls[name]:
                drops.append(p.fn)
                header_comments += p.comments
    if site.epoch_for is not None:
        header_comments += _loop_comments(site.batch_for) if site.train_fn is None else []
    if site.train_fn is not None:
        header_comments += _loop_comments(site.batch_for) + _loop_comments(site.train_fn)
        header_comments += comments_of(site.train_call)  # the call's own comments
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
    args = [model_code, *extras, opt_code] + ([all_scheds[0]] if all_scheds else [])
    if moved is not None:
        args = [model_code, *extras]
    if plan.manual:
        args = manual_models + manual_opts
    new = [cls, stmt(f"{inst} = {cls_name}({', '.join(args)})\n").with_changes(leading_lines=blank)]
    if synthesized:
        synthesized[0] = synthesized[0].with_changes(leading_lines=cls.leading_lines)
        new = [*synthesized, cls.with_changes(leading_lines=blank), *new[1:]]
    # the module starts with the values the loop reads from before it
    loop_reads = hook_reads if site.train_fn is None else (e_reads - u_after) | f_reads
    copy_in = (shared | fn_shared) & written(before)
    copy_in &= definitely_bound(before) | loop_reads
    for n in sorted(copy_in):
        new.append(stmt(f"{inst}.{attr_of[n]} = {n}\n"))
    device, cuda = _find_device(scope_bodies, model_code)
    if device is None and not cuda and hints is not None and hints.device is not None:
        device = hints.device
    accelerator = '"cpu"'
    if device is not None and _names_a_device(cst.parse_expression(device), scope_bodies):
        accelerator = f"torch.device({device}).type"
    elif device is not None:
        # a device index or something only known at run time (`model.to(gpu_id)`): the Trainer
        # takes the device type the script's own `.to(...)` gave the model
        accelerator = f"next({model_code}.parameters()).device.type"
    if cuda == "True":  # `model.cuda()`: the device type the script put the model on
        accelerator = f"next({model_code}.parameters()).device.type"
    elif cuda is not None:  # `if use_cuda: model.cuda()`: the same test picks the accelerator
        accelerator = f'"gpu" if {cuda} else "cpu"'
    if device == '"auto"':
        accelerator = device
    trainer_args = [
        f"max_epochs=len({epoch_iter})"
        if epoch_iter
        else ("max_epochs=-1" if while_test is not None else "max_epochs=1"),
        f"accelerator={accelerator}",
        "devices=1",
    ]
    if hints is not None and hints.dist is not None:
        trainer_args[-1:] = ['strategy="ddp"', f"devices={hints.dist.devices}"]
        if hints.dist.num_nodes is not None:
            trainer_args.append(f"num_nodes={hints.dist.num_nodes}")
        # the script's own DistributedSampler (if any) stays: same shards, same len(loader)
        trainer_args.append("use_distributed_sampler=False")
    if plan.amp is not None:
        precision = amp_precision(plan.amp)
        if precision is None:
            refuse(
                R.PRECISION_UNKNOWN,
                "autocast without a dtype on an unknown device: cannot tell the "
                "precision; pass dtype=torch.float16 or torch.bfloat16",
            )
        trainer_args.append(f"precision={precision}")
    if plan.accumulate is not None:
        trainer_args.append(f"accumulate_grad_batches={plan.accumulate}")
    steps = None if plan.accumulate is not None or plan.manual else _step_budget(plan.body, before)
    if steps is not None:
        trainer_args.append(f"max_steps={steps}")
    if plan.clip:
        trainer_args += [
            f"gradient_clip_val={plan.clip[0]}",
            f'gradient_clip_algorithm="{plan.clip[1]}"',
        ]
    if val is not None:
        trainer_args.append("num_sanity_val_steps=0")
    if early is not None:
        trainer_args.append(f"callbacks=[{early.callback}]")
    # the Trainer's logger and checkpoints cannot change what the script computes: they stay
    # on (--no-tooling turns them off); the script prints its own progress, so the progress bar
    # and the summary table stay off
    if not tooling:
        trainer_args += ["logger=False", "enable_checkpointing=False"]
    trainer_args += ["enable_progress_bar=False", "enable_model_summary=False"]
    inner = "".join(f"    {a},\n" for a in trainer_args)
    new.append(stmt(f"{trainer_var} = L.Trainer(\n{inner})\n"))
    val_loader = f", {val.loader_code}" if val is not None else ""
    new.append(stmt(f"{trainer_var}.fit({inst}, {loader_code}{val_loader})\n"))
    for n in sorted((shared | fn_shared) & u_after):
        new.append(stmt(f"{n} = {inst}.{attr_of[n]}\n"))
    # the values the loop variables had in the last epoch that ran
    for line in epoch_lines(u_after, (), f"{trainer_var}.current_epoch - 1"):
        new.append(stmt(line + "\n"))
    findings.insert(
        0,
        Finding(
            R.LOOP_CONVERTED,
            FIXED,
            f"training loop converted to `{cls_name}` + `{trainer_var}.fit(...)`",
            *where,
        ),
    )

    # --- splice: replace the outer loop; drop the inlined train() function
    others = {}
    if test is not None:
        lines = [stmt(f"{trainer_var}.test({inst}, {test.loader_code}, verbose=False)\n")]
        if test.target is not None:
            lines.append(stmt(f"{test.target} = {inst}.{test_attr}\n"))
        lines[0] = lines[0].with_changes(leading_lines=test.call_stmt.leading_lines)
        others[test.call_stmt] = lines
    if moved is not None:
        for original_stmt in moved[2]:
            others[original_stmt] = []  # now in configure_optimizers, comments included
    replacer = _Splice(outer if site.train_fn is None else site.epoch_for, new, drops, others)
    bound_before = written(module.body)
    module = module.visit(replacer)
    # the generated lines may name modules the script reached another way (`from torch import
    # nn` only): imported when the script does not bind the name itself
    for name in sorted({"torch", "os"} & (_used(new) - bound_before), reverse=True):
        module = _add_import(module, f"import {name}\n")
    module = _add_import(
        module, "import runtime as L\n" if engine == "runtime" else "import lightning as L\n"
    )
    return module, findings


class _Splice(cst.CSTTransformer):
    def __init__(self, target, replacement: list, drops: list, others: dict | None = None) -> None:
        self.target, self.replacement, self.drops = target, replacement, drops
        self.others = others or {}

    def on_leave(self, original, updated):
        if original is self.target:
            return cst.FlattenSentinel(self.replacement)
        for old, new in self.others.items():
            if original is old:
                return cst.FlattenSentinel(new)
        if any(original is d for d in self.drops):
            return cst.RemoveFromParent()
        return updated


_PROGRESS_WRAPPERS = ("tqdm", "tqdm.tqdm", "tqdm.auto.tqdm", "trange", "iter")


def _loader_at_fit(loader_code: str, per_epoch: list, refuse) -> str:
    """The loader expression as ``trainer.fit`` sees it, before the loop starts. A progress
    wrapper made each epoch (``pbar = tqdm(loader)``; the wrapper itself stays where the script
    made it) is looked through; anything else the epoch makes cannot be handed over."""
    made = written(per_epoch)
    expr = cst.parse_expression(loader_code)
    while isinstance(expr, cst.Name) and expr.value in made:
        value = last_assigned_value(per_epoch, expr.value)
        if not (
            isinstance(value, cst.Call)
            and code_of(value.func) in _PROGRESS_WRAPPERS
            and value.args
            and value.args[0].keyword is None
        ):
            refuse(
                R.LOADER_PER_EPOCH,
                f"the batch loop iterates over `{expr.value}`, which the epoch loop makes anew "
                "each epoch; the Trainer needs the DataLoader before training starts. Build it "
                "once before the epoch loop (or iterate over the DataLoader itself)",
            )
        expr = value.args[0].value
    if _used([cst.SimpleStatementLine([cst.Expr(expr)])]) & made:
        refuse(
            R.LOADER_PER_EPOCH,
            f"the batch loop's iterable `{code_of(expr)}` reads variables the epoch loop "
            "changes; the Trainer needs the DataLoader before training starts",
        )
    return code_of(expr)


def _own_model_attrs(attrs: dict[str, str], changing: set[str]) -> dict[str, str]:
    """{script name: module attribute} for the models the LightningModule holds, less the
    names that do not stay the same object through the loop."""
    return {
        n: a for n, a in attrs.items() if re.fullmatch(r"[A-Za-z_]\w*", n) and n not in changing
    }


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


def _read_later(after: list, module: cst.Module, module_level: bool, skip=()) -> set[str]:
    """Names whose value at the end of the loop the rest of the scope may read; at module level
    also what any function of the module reads as a global (it may be called later)."""
    reads = incoming(after)
    if module_level:
        defs = [
            s
            for s in module.body
            if isinstance(s, (cst.FunctionDef, cst.ClassDef)) and s not in skip
        ]
        reads |= incoming(defs)
    return reads


def _step_budget(body: list, before: list) -> str | None:
    """``N`` when the batch loop counts its steps (``c += 1``, ``c = 0`` before the loop) and
    breaks once ``c >= N``: the Trainer's ``max_steps`` (the break stays; both stop together)."""
    increments = [
        s
        for s in body
        if m.matches(
            s,
            m.SimpleStatementLine(
                body=[m.AugAssign(target=m.Name(), operator=m.AddAssign(), value=m.Integer("1"))]
            ),
        )
    ]
    counters = [s.body[0].target.value for s in increments]
    for s in body:
        if not isinstance(s, cst.If) or s.orelse is not None:
            continue
        test = s.test
        if not (
            isinstance(test, cst.Comparison)
            and len(test.comparisons) == 1
            and isinstance(test.left, cst.Name)
            and test.left.value in counters
            and isinstance(test.comparisons[0].operator, (cst.GreaterThanEqual, cst.Equal))
        ):
            continue
        inner = s.body.body if isinstance(s.body, cst.IndentedBlock) else []
        if not inner or not m.matches(inner[-1], m.SimpleStatementLine(body=[m.Break()])):
            continue
        counter, bound = test.left.value, test.comparisons[0].comparator
        if not isinstance(bound, (cst.Name, cst.Integer, cst.Attribute)):
            continue
        if counters.count(counter) != 1 or counter in _assigned(
            [x for x in body if x is not s and x not in increments]
        ):
            continue  # counted (or reset) elsewhere too
        if m.matches(last_assigned_value(before, counter), m.Integer("0")):
            return code_of(bound)
    return None


def _movable_construction(scope_body, loop_index, opt, sched, model, remaining):
    """``(statements for configure_optimizers, [optimizer, scheduler names], originals)`` when
    ``opt = ...`` (and ``sched = ...``) are plain assignments in the loop's scope that nothing
    but the loop reads, built from names that do not change before the loop; else None."""
    if not re.fullmatch(r"[A-Za-z_]\w*", opt) or not re.fullmatch(r"[A-Za-z_]\w*", model):
        return None
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
    others = [s_ for i, s_ in enumerate(scope_body) if i not in moved_idx and i != loop_index]
    if set(wanted) & (_used(between) | _used(remaining) | _used(others)):
        return None  # read elsewhere (printed, saved, passed on)
    renamed = transform_stmts(
        moved, _Renamer({model: cst.Attribute(cst.Name("self"), cst.Name("model"))})
    )
    renamed = [s_.with_changes(leading_lines=comments_of(s_)) for s_ in renamed]
    return renamed, wanted, moved


def _epoch_values(loop: cst.For, refuse) -> dict[str, str]:
    """``for epoch in range(...)`` or ``for i, epoch in enumerate(range(...)[, start])``: each
    loop variable's value in epoch ``{i}`` (a format template)."""
    it, target = loop.iter, loop.target
    index_name = start = None
    if m.matches(it, m.Call(func=m.Name("enumerate"))) and it.args:
        if not (isinstance(target, cst.Tuple) and len(target.elements) == 2):
            refuse(
                R.EPOCH_ITERABLE,
                "`for ... in enumerate(...)` epoch loops must unpack `index, epoch`",
            )
        first, second = (e.value for e in target.elements)
        if not isinstance(first, cst.Name):
            refuse(R.EPOCH_ITERABLE, "the epoch loop's index must be a plain name")
        index_name, target = first.value, second
        start = code_of(it.args[1].value) if len(it.args) > 1 else None
        it = it.args[0].value
    if not m.matches(it, m.Call(func=m.Name("range"))):
        refuse(
            R.EPOCH_ITERABLE,
            "the epoch loop must iterate over range(...) (or enumerate(range(...)))",
        )
    if not isinstance(target, cst.Name):
        refuse(R.EPOCH_ITERABLE, "the epoch loop variable must be a plain name")
    values = {target.value: f"{code_of(it)}[{{i}}]"}
    if index_name is not None:
        values[index_name] = f"{start} + {{i}}" if start is not None else "{i}"
    return values


def _plan_test(module: cst.Module, after: list, epoch_names: set[str]):
    """The first statement after the loop that calls a no-grad evaluation helper, as test hooks
    (None when there is none, or when the helper needs the epoch variable or never switches the
    model to eval mode: then the call stays as it is)."""
    from scaffold.migrate.evaluation import plan_evaluation

    for s in after:
        if not isinstance(s, cst.SimpleStatementLine):
            continue
        plan = plan_evaluation(module, s)
        if plan is None:
            continue
        code = code_of(cst.Module(body=[*plan.pre, *plan.body, *plan.post]))
        if any(re_word(n, t) for n in epoch_names for t in [code, *plan.bindings]):
            return None
        if not m.findall(plan.fn, m.Call(func=m.Attribute(attr=m.Name("eval")))):
            return None
        return plan
    return None


def _add_import(module: cst.Module, line: str) -> cst.Module:
    """``line`` after the script's leading imports (after its docstring when it has no import)."""
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
