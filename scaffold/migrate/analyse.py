"""analyse: what a located training loop is, as a frozen plan (no code is built here).

``analyse(module, site, position, hints)`` answers, in this order (each answer needs the ones
before it):

1. *call binding*: the ``train(...)`` helper's parameters -> the caller's expressions;
2. *roles*: which optimizer is stepped, which model(s) it trains, whether the update runs as
   automatic or manual optimization (``step.plan_step``);
3. *schedules*: which schedulers move to ``configure_optimizers`` (per batch or per epoch) and
   what the helper's ``return`` becomes;
4. *epoch plan*: ``max_epochs`` and each epoch variable's value from ``current_epoch``;
5. *evaluation*: validation hooks (a helper or an inline loop), the early-stopping counter;
6. *carried state* (``dataflow``): which variables cross hooks or outlive the loop and so become
   module attributes, which models the hooks may read as ``self.<attr>``;
7. *final evaluation*: a test helper called after the loop.

Anything the converter cannot keep exact raises ``CannotConvert`` with the rule that stops it.
"""

from __future__ import annotations

import contextlib
import re
from dataclasses import dataclass, field, replace

import libcst as cst

import scaffold.migrate.match as m
from scaffold.migrate import helpers, names
from scaffold.migrate import rules as R
from scaffold.migrate.dataflow import declared_global, incoming, written
from scaffold.migrate.findings import FIXED, MANUAL, CannotConvert, Finding
from scaffold.migrate.locate import (
    Site,
    around_block,
    function_owning,
    loop_bodies,
    statement_calls,
)
from scaffold.migrate.names import PROGRESS_BARS, PROGRESS_WRAPPERS, qualified
from scaffold.migrate.step import (
    StepPlan,
    _flatten_accumulation,
    _flatten_amp,
    _manual_update,
    _manual_update_optimizer,
    plan_step,
)
from scaffold.migrate.syntax import (
    LIGHTNING_ATTRS,
    _assigned,
    _assignment_value,
    _bound_names,
    _dotted,
    _fresh,
    _kwarg,
    _method_call,
    _receiver,
    _simple,
    _statement_index,
    _unwrap_loader,
    _used,
    body_without_docstring,
    call_bindings,
    calls_of,
    code_of,
    comments_of,
    last_assigned_value,
    pure,
    re_word,
    split_lines,
    stmt,
    with_comments,
)
from scaffold.migrate.tensors import trained_tensors, why_not
from scaffold.migrate.walk import walk


@dataclass
class Hints:
    """What earlier passes learned: the model and its device when the optimizer is built out of
    sight (trainer classes), and the distributed setup the Trainer takes over."""

    model: str | None = None
    device: str | None = None
    dist: object | None = None  # ddp.DistInfo
    # optimizer variable -> the model variables it trains, where the construction is out of
    # sight (a trainer class's __init__ builds `self.d_optimizer` from `self.D.parameters()`)
    trained: dict | None = None


@dataclass(frozen=True)
class Roles:
    """Who is who in the update."""

    step: StepPlan  # the training step's statements, loss, optimizers, clip/amp/accumulation
    opt_code: str  # the optimizer the Trainer steps (automatic optimization)
    model_code: str | None  # the model it trains (the LightningModule's ``self.model``)
    model_names: frozenset[str]  # names of that model in the loop's scopes (helper parameters)
    extra_models: tuple[str, ...] = ()  # further modules the optimizer trains (submodules)
    manual_models: tuple[str, ...] = ()  # manual optimization: every trained module, in order
    manual_opts: tuple[str, ...] = ()  # manual optimization: the optimizers, construction order
    # those of them that may be None (``... if fine_tune else None``): not handed to the
    # Trainer, None again in the training step
    optional_opts: tuple[str, ...] = ()
    synthesized: tuple = ()  # statements defining an optimizer the script wrote by hand
    # the script's own tensors an optimizer trains (``SGD([w, b])``, see ``tensors``): they
    # stay the script's globals; ``model_code`` is None when no module is trained at all
    tensors: tuple[str, ...] = ()

    @property
    def manual(self) -> bool:
        return self.step.manual


@dataclass(frozen=True)
class Schedules:
    """Schedulers the Trainer steps, and the loop tails without their ``step()`` calls."""

    epoch: tuple[str, ...] = ()  # stepped once per epoch (interval="epoch")
    step: tuple[str, ...] = ()  # stepped once per batch (interval="step")
    fn_post: tuple = ()  # the helper's statements after the batch loop
    epoch_post: tuple = ()  # the epoch loop's statements after the batch loop / helper call
    tail_comments: tuple = ()  # comments of removed step() calls at the very end
    call_target: str | None = None  # ``x`` (or ``a, b``) in ``x = train(...)``

    @property
    def names(self) -> tuple[str, ...]:
        return self.epoch + self.step


@dataclass(frozen=True)
class EpochPlan:
    """How many epochs, and each epoch variable's value in epoch ``{i}``."""

    iter: str | None = None  # ``range(...)`` -> max_epochs=len(range(...))
    while_test: cst.BaseExpression | None = None  # ``while cond:`` -> checked at each epoch end
    values: dict = field(default_factory=dict)  # name -> format template of its value
    while_check: tuple = ()  # the statements stopping the Trainer when the condition fails
    max_epochs: str | None = None  # the epoch count, as code
    # the epoch body starts with `if <test>: break` (stop before this epoch trains: the
    # captioning tutorials' `if epochs_since_improvement == 20: break`)
    start_break: bool = False

    def lines(self, used: set[str], texts=(), index: str = "self.current_epoch") -> list[str]:
        """``epoch = range(...)[self.current_epoch]`` (and the enumerate index) for the epoch
        variables that ``used`` holds or ``texts`` mention."""
        return [
            f"{name} = {value.format(i=index)}"
            for name, value in self.values.items()
            if name in used or any(re_word(name, t) for t in texts)
        ]


@dataclass(frozen=True)
class State:
    """Carried state (``dataflow``): what becomes an attribute of the module."""

    shared: frozenset[str]  # crosses epoch-level hooks or outlives the loop
    fn_shared: frozenset[str]  # crosses hooks inside the train() helper
    global_names: frozenset[str]  # declared ``global`` by the script
    attr_of: dict  # shared name -> attribute
    read_later: frozenset[str]  # names read after the loop
    loop_reads: frozenset[str]  # names the loop reads (their values come in before it)
    before: tuple  # the scope's statements before the loop
    after: tuple  # and after it
    index: int  # the loop's index in its scope
    own_models: dict  # model name -> attribute, where the name stays the same object
    epoch_readers: dict  # script function -> epoch variables it reads as globals


@dataclass(frozen=True)
class LoopPlan:
    """Everything ``build`` needs; nothing in it is mutated after ``analyse``."""

    module: cst.Module
    site: Site
    outer: cst.CSTNode  # the statement the class and the Trainer replace (the original node)
    where: tuple[int, int]
    fn_map: dict  # train() parameter -> the caller's expression
    # names a value the Trainer reads once cannot stand for (see `_varying`)
    varying: frozenset[str]
    loader_code: str  # what trainer.fit trains on
    # the loop header's iterable may be a one-shot iterator (a generator, zip, enumerate, an
    # unknown call): the script made it anew each epoch, so the Trainer must too
    loader_each_epoch: bool
    progress_bar: bool  # the script showed a progress bar over its batches (tqdm)
    roles: Roles
    schedules: Schedules
    epoch: EpochPlan
    val: object | None  # evaluation.ValPlan
    early: object | None  # early_stop.EarlyStopPlan
    test: object | None  # evaluation.ValPlan (the final evaluation)
    test_attr: str | None
    state: State
    epoch_post: tuple  # the epoch's statements left for on_train_epoch_end
    findings: tuple[Finding, ...]
    hints: Hints | None
    stop_attr: str = "stop_epoch"
    # the batch loop iterates over a name the epoch loop binds anew each epoch, before the
    # batch loop (`loader = make_loader(...)`): on_train_epoch_start binds it as the script did
    # and the Trainer iterates over the module's attribute (runtime engine only)
    loader_attr: str | None = None

    @property
    def scope_bodies(self) -> list:
        return [self.site.scope_body, self.module.body]

    def outer_code(self, name: str) -> str:
        return self.fn_map.get(name, name)

    def refuse(self, rule: str, message: str):
        raise CannotConvert(Finding(rule, MANUAL, message, *self.where))


def analyse(module: cst.Module, site: Site, position, hints: Hints | None) -> LoopPlan:
    outer = site.epoch_for or site.batch_for
    here = position(outer)
    where = (here.line, here.column + 1)

    def refuse(rule: str, message: str):
        raise CannotConvert(Finding(rule, MANUAL, message, *where))

    findings: list[Finding] = []
    fn_map = _bind_call(site, refuse)
    site, roles = _roles(module, site, position, hints, fn_map, where, refuse, findings)
    schedules = _schedules(
        module, site, roles, fn_map, [site.scope_body, module.body], where, refuse, findings
    )
    epoch = _epoch_plan(site, schedules.epoch_post, where, refuse, findings)
    epoch_post = list(schedules.epoch_post)
    val, epoch_post = _evaluation(module, site, epoch_post, schedules, position, where, findings)
    idx = _statement_index(site.scope_body, site.train_call if site.train_fn else outer)
    if site.train_fn is not None:
        idx = _statement_index(site.scope_body, site.epoch_for)
    before, after = site.scope_body[:idx], site.scope_body[idx + 1 :]
    varying = _varying(site, fn_map)
    early = None
    if isinstance(site.epoch_for, cst.For):
        from scaffold.migrate.early_stop import plan_early_stopping

        early = plan_early_stopping(list(epoch_post), [*before, *site.fn_pre], after, varying)
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
    loader_code, epoch_loader = _train_loader(site, fn_map, module, refuse)
    state = _carried_state(
        module, site, roles, schedules, epoch, val, epoch_post, idx, refuse, epoch_loader
    )
    test, test_attr = _plan_test(module, after, set(epoch.values)), None
    if test is not None:
        if test.target is not None:
            test_attr = _fresh(
                test.target if test.target not in LIGHTNING_ATTRS else f"{test.target}_",
                set(state.attr_of.values()) | {"stop_epoch"},
            )
        p = position(test.call_stmt)
        findings.append(
            Finding(
                R.TEST_HOOKS,
                FIXED,
                f"final evaluation `{test.fn.name.value}()` converted to test_step and the test "
                "epoch hooks, run by trainer.test where the script called it",
                p.line,
                p.column + 1,
            )
        )
    return LoopPlan(
        module=module,
        site=site,
        outer=outer,
        where=where,
        fn_map=fn_map,
        varying=varying,
        loader_code=loader_code,
        loader_each_epoch=epoch_loader is not None
        or not _reiterable(cst.parse_expression(loader_code)),
        loader_attr=epoch_loader,
        progress_bar=_progress_bar(site),
        roles=roles,
        schedules=schedules,
        epoch=epoch,
        val=val,
        early=early,
        test=test,
        test_attr=test_attr,
        state=state,
        epoch_post=tuple(epoch_post),
        findings=tuple(findings),
        hints=hints,
    )


def attr_of_model(name: str) -> str:
    """The module attribute for a model variable (Lightning's own names get a ``_``)."""
    return name if name not in LIGHTNING_ATTRS else f"{name}_"


def _loader(site: Site, fn_map, scope_bodies, refuse) -> str:
    """The DataLoader expression ``trainer.fit`` receives (a progress wrapper looked through,
    a helper's parameter bound to the caller's argument)."""
    loader, _, _ = _unwrap_loader(site.batch_for.iter)
    loader_code = code_of(loader)
    if site.train_fn is not None and isinstance(loader, cst.Name):
        loader_code = fn_map.get(loader.value, loader.value)
    changing = set()
    if site.epoch_for is not None:
        # what an epoch changes, for the next epoch's loop header: its own variable too
        changing |= written(list(site.epoch_for.body.body))
        if isinstance(site.epoch_for, cst.For):
            changing |= _bound_names(site.epoch_for.target)
    if site.train_fn is not None and isinstance(site.train_fn.body, cst.IndentedBlock):
        changing |= written(list(site.train_fn.body.body))
    loader_code = _loader_at_fit(
        loader_code, [*site.epoch_pre, *site.fn_pre], refuse, changing - set(fn_map)
    )
    if site.train_fn is not None and loader_code in fn_map:
        # `bar = tqdm(data_loader)` in the helper: the caller's argument, not the parameter
        loader_code = fn_map[loader_code]
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
    return loader_code


# calls whose result can be iterated again and again (a container, a DataLoader)
_REITERABLE_CALLS = {"range", "list", "tuple", "sorted", "dict", "set", "frozenset"}


def _train_loader(site: Site, fn_map, module, refuse) -> tuple[str, str | None]:
    """(what ``trainer.fit`` trains on, as code; the name of a loader the epoch loop makes
    anew, or None). Where the loader cannot be handed over as it is because the epoch makes it
    (SCF331), a loader the epoch loop makes in one plain assignment is taken from the module
    (see ``LoopPlan.loader_attr``)."""
    try:
        return _loader(site, fn_map, [site.scope_body, module.body], refuse), None
    except CannotConvert as err:
        made = _epoch_made_loader(site)
        if err.finding.code != R.LOADER_PER_EPOCH or made is None:
            raise
        return made, made


def _epoch_made_loader(site: Site) -> str | None:
    """``for epoch in ...: loader = make_loader(...); bar = tqdm(enumerate(loader)); for b in
    bar: ...``: the name the batch loop iterates over when the epoch loop binds it anew, with one
    plain assignment among its statements before the batch loop, and nothing else of the epoch
    binds it; None otherwise."""
    header = site.batch_for.iter
    if site.train_fn is not None or site.epoch_for is None or not isinstance(header, cst.Name):
        return None
    name = header.value
    pre = list(site.epoch_pre)
    writers = [s for s in [*pre, *site.epoch_post] if name in written([s])]
    if len(writers) != 1 or writers[0] not in pre:
        return None
    return name if _assignment_value(writers, name) is not None else None


def _reiterable(expr) -> bool:
    """Whether iterating what ``expr`` evaluates to once per epoch gives each epoch the batches
    that evaluating it anew at each epoch gave the script: a variable or attribute (the same
    object either way), a container, or a ``DataLoader`` built in place. A generator, ``zip``,
    ``enumerate``, ``map``, ``iter`` or any other call may return a one-shot iterator."""
    if isinstance(expr, (cst.Name, cst.Attribute, cst.Subscript)):
        return True
    if isinstance(expr, cst.Call):
        name = qualified(expr) or code_of(expr.func)
        return name in _REITERABLE_CALLS or name.split(".")[-1] == "DataLoader"
    return isinstance(expr, (cst.List, cst.Tuple, cst.ListComp))


def _progress_bar(site: Site) -> bool:
    """Whether the batch loop iterates through a tqdm bar (made in the loop header or earlier
    in the epoch) that is not disabled: the Trainer's progress bar takes its place."""
    where = [cst.Expr(site.batch_for.iter), *site.epoch_pre, *site.fn_pre]
    for call in m.findall(
        cst.Module(body=[cst.SimpleStatementLine([where[0]]), *where[1:]]), m.Call()
    ):
        if qualified(call) in PROGRESS_BARS and _kwarg(call, "disable") is None:
            return True
    return False


def _bind_call(site: Site, refuse) -> dict:
    """The train() helper's parameters bound to the call's arguments."""
    if site.train_fn is None:
        return {}
    fn_map = call_bindings(site.train_fn, site.train_call.body[0].value)
    if fn_map is None:
        refuse(
            R.CALL_ARGUMENTS,
            f"`{site.train_fn.name.value}(...)` uses *args/**kwargs; not converted",
        )
    return fn_map


def _own_step_receivers(site: Site, module) -> list[str]:
    """Receivers of ``x.first_step(...)``-like calls in the batch loop where ``x`` is an
    optimizer (a ``torch.optim.Optimizer`` subclass, SAM), in the order they are called."""
    from scaffold.migrate.locate import optimizers_with_own_steps

    known = optimizers_with_own_steps(module)
    if not known:
        return []
    found = []
    for call in m.findall(site.batch_for.body, m.Call(func=m.Attribute())):
        receiver = _dotted(call.func.value)
        name = call.func.attr.value
        if receiver in known and name != "step" and "step" in name.split("_"):
            found.append(receiver)
    return list(dict.fromkeys(found))


def _roles(module, site: Site, position, hints, fn_map, where, refuse, findings):
    """(site, Roles): the optimizer, the model(s) it trains and the step plan. A hand-written
    update (``p -= lr * p.grad``) becomes the step of a small optimizer class first."""
    scope_bodies = [site.scope_body, module.body]

    def outer_code(name: str) -> str:
        return fn_map.get(name, name)

    flat, _, _ = _flatten_amp(split_lines(site.batch_for.body.body), position, site.batch_for)
    flat, _ = _flatten_accumulation(flat, site.batch_for)
    step_names = [_dotted(_receiver(c)) for s in flat if (c := _method_call(s, "step"))]
    own_steps = _own_step_receivers(site, module) if not step_names else []
    if own_steps:
        # SAM's `optimizer.first_step()` / `second_step()`: the optimizer is stepped through
        # methods of its own (manual optimization keeps the calls, see step.plan_step)
        step_names = own_steps
    synthesized: list = []  # statements defining an optimizer the script did not have
    construction = None
    if not step_names:
        update = _manual_update(site.batch_for, module)
        if update is not None:
            node, params_code = update
            _check_update_inputs(node, site, refuse)
            taken_names = _used([*module.body])
            opt_cls, opt_var = (
                _fresh("ManualUpdate", taken_names),
                _fresh("manual_optimizer", taken_names),
            )
            declare = _update_declarations(node, params_code, site, module)
            synthesized = _manual_update_optimizer(node, opt_cls, opt_var, params_code, declare)
            new_body = [
                stmt(f"{opt_var}.step()\n").with_changes(leading_lines=node.leading_lines)
                if x is node
                else x
                for x in site.batch_for.body.body
            ]
            site = replace(
                site,
                batch_for=site.batch_for.with_changes(
                    body=site.batch_for.body.with_changes(body=new_body)
                ),
            )
            step_names = [opt_var]
            construction = cst.parse_expression(f"{opt_cls}({params_code})")
            findings.append(
                Finding(
                    R.HANDWRITTEN_UPDATE,
                    FIXED,
                    "hand-written parameter update wrapped as the "
                    f"step of an optimizer (`{opt_cls}`), run by the Trainer",
                    *where,
                )
            )

    def optimizers(names: list) -> list:
        # a scheduler's step (ahead of the optimizer's, say) is no optimizer's
        return [n for n in names if n is None or not _is_scheduler(outer_code(n), scope_bodies)]

    if not optimizers(step_names):
        # `if update: optimizer.step()`: stepped under a condition only (manual optimization
        # keeps the condition); the receivers must be plain names
        nested = m.findall(site.batch_for.body, m.Call(func=m.Attribute(attr=m.Name("step"))))
        receivers = [_dotted(_receiver(c)) for c in nested if not c.args]
        if receivers and None not in receivers and optimizers(receivers):
            step_names = receivers
    step_names = optimizers(step_names) or step_names
    if not step_names and m.findall(site.batch_for, m.Call(func=m.Attribute(attr=m.Name("step")))):
        refuse(
            R.STEP_CLOSURE,
            "`optimizer.step(...)` is used inside an expression or a nested block "
            "(e.g. `loss = optimizer.step(closure)`); not converted",
        )
    if not step_names or step_names[0] is None:
        refuse(R.NO_STEP, "no `optimizer.step()` statement in the batch loop")
    opt_code = outer_code(step_names[0])
    per_epoch = [*site.epoch_pre, *site.epoch_post, *site.fn_pre, *site.fn_post]
    rebuilt = {opt_code, step_names[0]} & written(per_epoch)
    if rebuilt:
        # a new optimizer every epoch (fresh state, often a new learning rate): the Trainer
        # builds one for the whole run, so no rewrite keeps the numbers
        where = f"`{site.train_fn.name.value}()`" if site.train_fn else "the epoch loop"
        if not written([*site.fn_pre, *site.fn_post]) & rebuilt:
            where = "the epoch loop"
        refuse(
            R.MODEL_UNKNOWN,
            f"`{sorted(rebuilt)[0]}` is assigned in {where} while training runs (a new "
            "optimizer, with fresh state, from then on); the Trainer keeps the one optimizer "
            "configure_optimizers returned for the whole run: build it once before the epoch "
            "loop (a per-epoch learning rate belongs in a scheduler), or convert by hand",
        )
    construction, trained, branch_models = _optimizer_of(
        module, site, opt_code, construction, scope_bodies
    )
    model_code = None
    extra_models: list[str] = []  # further modules whose parameters the optimizer holds
    if trained:
        model_code = trained[0]
        extra_models = [
            n for n in trained[1:] if re.fullmatch(r"[A-Za-z_]\w*", n) and n != model_code
        ]
    if model_code is None and hints is not None and hints.model is not None:
        model_code = hints.model
    tensors = None
    if model_code is None and (hints is None or hints.dist is None):
        tensors = trained_tensors(construction, scope_bodies, module)
    if model_code is None and not tensors:
        why = _unknown_model_reason(module, site, opt_code, construction, branch_models)
        refuse(R.MODEL_UNKNOWN, f"cannot tell which model `{opt_code}` trains: {why}")
    trained_names = {model_code} if model_code else set(tensors)
    model_names = trained_names | {p for p, a in fn_map.items() if a in trained_names}
    plan = _step_of(site, position, model_names, own_steps, fn_map, construction, refuse)
    findings.extend(plan.findings)
    manual_models: list[str] = []
    manual_opts: list[str] = []
    optional_opts: list[str] = []
    if plan.manual:
        built = {opt_code: construction} if synthesized else {}
        manual_models, manual_opts, manual_tensors, optional_opts = _manual_roles(
            module, site, plan, scope_bodies, outer_code, refuse, hints, built
        )
        model_code = manual_models[0] if manual_models else None
        tensors = manual_tensors or None
        if tensors:
            model_names |= set(tensors)
    return site, Roles(
        step=plan,
        opt_code=opt_code,
        model_code=model_code,
        model_names=frozenset(model_names),
        extra_models=tuple(extra_models),
        manual_models=tuple(manual_models),
        manual_opts=tuple(manual_opts),
        optional_opts=tuple(optional_opts),
        synthesized=tuple(synthesized),
        tensors=tuple(tensors or ()),
    )


def _check_update_inputs(node, site: Site, refuse) -> None:
    """A hand-written update becomes the step of an optimizer object built before training;
    its code then reads each name where the optimizer class sits, at step time. A name the
    training loop (or the helper holding it) binds is not there, or no longer the loop's
    value once the loop's state moves into the module (``lr = lr * 0.5`` each epoch would
    leave the update on the first ``lr``): refused."""
    # the update's own in-place assignments (`w -= lr * w.grad`) change no binding
    without = cst.SimpleStatementLine([cst.Pass()])
    loop = (site.epoch_for or site.batch_for).deep_replace(node, without)
    changing = written([loop])
    if site.train_fn is not None:
        fn = site.train_fn.deep_replace(node, without)
        changing |= written(_suite(fn.body)) | _param_names(fn)
    read = sorted(incoming([node]) & changing)
    if read:
        refuse(
            R.UNSUPPORTED_UPDATE,
            f"the hand-written parameter update reads `{read[0]}`, which the training loop "
            "binds or changes; the update would become an optimizer step that cannot see the "
            "loop's value. Use an optimizer and an LR scheduler (or convert by hand)",
        )


def _update_declarations(node, params_code: str, site: Site, module) -> tuple[str, ...]:
    """``global w, b`` (names of the module) / ``nonlocal w`` (names of the function holding
    the loop) for the tensors a hand-written update assigns in place (``w -= lr * w.grad``),
    which moves into the step method of an optimizer class."""
    if not params_code.startswith("["):
        return ()
    names = re.findall(r"[A-Za-z_]\w*", params_code)
    assigned = [n for n in names if m.findall(node, m.AugAssign(target=m.Name(n)))]
    if not assigned:
        return ()
    owner = function_owning(module, site.scope_body) if site.scope_body is not module.body else None
    # names the function binds (its parameters too) are its own; the rest are the module's
    bound_here = (written(site.scope_body) | _param_names(owner)) if owner is not None else set()
    local = [n for n in assigned if n in bound_here]
    outer = [n for n in assigned if n not in local]
    lines = []
    if outer:
        lines.append(f"global {', '.join(outer)}")
    if local:
        lines.append(f"nonlocal {', '.join(local)}")
    return tuple(lines)


_NONE = m.Name("None")


def _may_be_none(name: str, scope_bodies, loop_body: list) -> bool:
    """Whether the optimizer ``name`` may be None where the loop runs: bound to
    ``x if c else None``, or bound to ``None`` somewhere while the loop tests it against None
    (``if opt is not None: opt.step()``)."""
    target = [m.AssignTarget(target=m.Name(name))]
    either = m.Assign(targets=target, value=m.IfExp(body=_NONE) | m.IfExp(orelse=_NONE))
    plain = m.Assign(targets=target, value=_NONE)
    tested = m.Comparison(
        left=m.Name(name),
        comparisons=[m.ComparisonTarget(operator=m.Is() | m.IsNot(), comparator=_NONE)],
    )
    bodies = [cst.Module(body=list(body)) for body in scope_bodies]
    if any(m.findall(b, either) for b in bodies):
        return True
    return any(m.findall(b, plain) for b in bodies) and bool(
        m.findall(cst.Module(body=list(loop_body)), tested)
    )


def _manual_roles(
    module, site, plan: StepPlan, scope_bodies, outer_code, refuse, hints=None, built=None
):
    """Manual optimization: (trained modules, optimizers in construction order, the script's
    tensors they train, the optimizers that may be None). Schedulers
    stepped by the script stay the script's business (the Trainer never steps them with manual
    optimization); only optimizers are handed over."""
    plan.optimizers = [n for n in plan.optimizers if not _is_scheduler(outer_code(n), scope_bodies)]
    for name in plan.argument_steps:
        # `scheduler.step(val_loss)` stays the script's call; an optimizer's `step(closure)`
        # (LBFGS) with the closure defined in the batch loop is handed over with its closure
        if _is_scheduler(outer_code(name), scope_bodies):
            continue
        if name not in plan.closure_steps:
            refuse(
                R.STEP_CLOSURE,
                f"`{outer_code(name)}.step(...)` with manual optimization takes something other "
                "than a closure the batch loop defines",
            )
        if name not in plan.optimizers:
            plan.optimizers.append(name)
    if not plan.optimizers:
        refuse(R.NO_STEP, "no `optimizer.step()` in the batch loop")
    order = {}
    for i, st in enumerate(site.scope_body):
        for n in _assigned([st]):
            order.setdefault(n, i)
    plan.optimizers = sorted(plan.optimizers, key=lambda n: order.get(outer_code(n), 1 << 30))
    models: list[str] = []
    opts: list[str] = []
    tensors: list[str] = []  # the script's own tensors some optimizers train (see `tensors`)
    optional: list[str] = []
    for name in plan.optimizers:
        code = outer_code(name)
        known = (built or {}).get(code)  # an optimizer made here for a hand-written update
        value, found, branch_models = _optimizer_of(module, site, code, known, scope_bodies)
        if not found and hints is not None and hints.trained and code in hints.trained:
            found = list(hints.trained[code])
        if not re.fullmatch(r"[A-Za-z_]\w*", code):
            refuse(R.MODEL_UNKNOWN, f"`{code}` must be a plain variable")
        if _may_be_none(code, scope_bodies, plan.body):
            # not handed to the Trainer when None; the step gets None for it again
            optional.append(code)
        if not found and (hints is None or hints.dist is None):
            own = trained_tensors(value, scope_bodies, module)
            if own:
                opts.append(code)
                tensors += [t for t in own if t not in tensors]
                continue
        if not found:
            why = _unknown_model_reason(module, site, code, value, branch_models)
            refuse(R.MODEL_UNKNOWN, f"cannot tell which model `{code}` trains: {why}")
        opts.append(code)
        for model in found:
            if not re.fullmatch(r"[A-Za-z_]\w*", model):
                refuse(R.MODEL_UNKNOWN, f"the model `{model}` must be a plain variable")
            if model not in models:
                models.append(model)
    return models, opts, tensors, optional


def _schedules(
    module, site: Site, roles: Roles, fn_map, scope_bodies, where, refuse, findings
) -> Schedules:
    """Argument-less ``sched.step()`` calls at the end of the helper or of the epoch move to
    ``configure_optimizers`` when there is one scheduler and nothing else reads it."""
    plan = roles.step

    def outer_code(name: str) -> str:
        return fn_map.get(name, name)

    def sched_ok(name):
        # with manual optimization the Trainer does not step schedulers: keep the calls
        return not plan.manual and _is_scheduler(outer_code(name), scope_bodies)

    fn_post, fn_scheds, fn_tail_comments = _scheduler_steps(site.fn_post, sched_ok)
    epoch_post, epoch_scheds, ep_tail_comments = _scheduler_steps(site.epoch_post, sched_ok)
    # the Trainer steps an epoch scheduler right after the epoch's last batch, before the code
    # the script runs after its batch loop (hooks, evaluation), also in an epoch that stops
    # training: the step moves only when that code cannot tell the difference
    if fn_scheds:
        between = _ahead_of_removed(site.fn_post, fn_post)
    else:
        between = [*site.fn_post, *_ahead_of_removed(site.epoch_post, epoch_post)]
    watched = {roles.opt_code, *roles.manual_opts, *fn_scheds, *epoch_scheds}
    unobserved = not _may_observe_optimizer(module, between, {outer_code(n) for n in watched})
    fn_post, call_target = _train_fn_result(site, fn_post, refuse)
    epoch_names = [outer_code(n) for n in fn_scheds] + epoch_scheds
    step_names = [outer_code(n) for n in plan.step_schedulers]
    other_text = code_of(
        cst.Module(body=[*site.epoch_pre, *site.fn_pre, *fn_post, *epoch_post, *plan.body])
    )
    if (
        len(epoch_names + step_names) > 1
        or not unobserved
        or any(re_word(n, other_text) for n in [*plan.step_schedulers, *fn_scheds, *epoch_scheds])
    ):
        # keep the calls where they were: exact, at the cost of configure_optimizers not seeing them
        if plan.step_schedulers:
            refuse(
                R.SCHEDULER_SHARED, "a per-batch scheduler that other code reads is not converted"
            )
        fn_post, _ = _train_fn_result(site, list(site.fn_post), refuse)
        return Schedules(
            fn_post=tuple(fn_post),
            epoch_post=tuple(site.epoch_post),
            call_target=call_target,
        )
    for name in epoch_names + step_names:
        interval = "epoch" if name in epoch_names else "step"
        findings.append(
            Finding(
                R.SCHEDULER_MOVED,
                FIXED,
                f"`{name}.step()` moved to configure_optimizers (interval={interval!r})",
                *where,
            )
        )
    return Schedules(
        epoch=tuple(epoch_names),
        step=tuple(step_names),
        fn_post=tuple(fn_post),
        epoch_post=tuple(epoch_post),
        tail_comments=tuple(fn_tail_comments + ep_tail_comments),
        call_target=call_target,
    )


def _ahead_of_removed(stmts: list, kept: list) -> list:
    """The statements of ``stmts`` before the first one ``_scheduler_steps`` removed."""
    kept_ids = {id(k) for k in kept}
    ahead = []
    for st in stmts:
        if id(st) not in kept_ids:
            break
        ahead.append(st)
    return ahead


_LR_READS = ("param_groups", "get_last_lr", "get_lr", "lr_scheduler")


def _may_observe_optimizer(module, stmts: list, names: set[str]) -> bool:
    """Whether ``stmts`` (and the script's functions they call, followed through) may read the
    optimizer's learning rate or state, or skip what follows (``break``/``continue``/``return``)."""
    if not stmts:
        return False
    if m.findall(cst.Module(body=list(stmts)), m.Break() | m.Continue() | m.Return()):
        return True
    functions = {f.name.value: f for f in m.findall(module, m.FunctionDef())}
    seen: set[str] = set()
    todo = [cst.Module(body=list(stmts))]
    while todo:
        node = todo.pop()
        text = code_of(node)
        if any(re_word(n, text) for n in names) or any(w in text for w in _LR_READS):
            return True
        for call in m.findall(node, m.Call(func=m.Name())):
            name = call.func.value
            if name in functions and name not in seen:
                seen.add(name)
                todo.append(functions[name])
    return False


def _train_fn_result(site: Site, fn_post: list, refuse) -> tuple[list, str | None]:
    """``x = train(...)``: the helper's final ``return v`` becomes ``x = v``; a bare return
    is dropped. (fn_post, x)."""
    if site.train_fn is None:
        return fn_post, None
    call_target = target = None
    call_small = site.train_call.body[0]
    if isinstance(call_small, cst.Assign):
        target = call_small.targets[0].target
        call_target = code_of(target.with_changes(lpar=[], rpar=[]))
    last = fn_post[-1] if fn_post else None
    if last is not None and m.matches(last, m.SimpleStatementLine(body=[m.Return()])):
        value = last.body[0].value
        if target is not None and value is not None:
            assign = cst.Assign(targets=[cst.AssignTarget(target)], value=value)
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
    return fn_post, call_target


def _break_test(node) -> cst.BaseExpression | None:
    """``test`` of ``if test: break`` (nothing else in the ``if``, no ``else``)."""
    if (
        isinstance(node, cst.If)
        and node.orelse is None
        and isinstance(node.body, cst.IndentedBlock)
        and len(node.body.body) == 1
        and m.matches(node.body.body[0], m.SimpleStatementLine(body=[m.Break()]))
    ):
        return node.test
    return None


def _epoch_plan(site: Site, epoch_post, where, refuse, findings) -> EpochPlan:
    """``for epoch in range(...)`` / ``enumerate(range(...))`` / ``while cond``."""
    loop = site.epoch_for
    if loop is not None:
        if loop.orelse is not None:
            kind = "while" if isinstance(loop, cst.While) else "for"
            refuse(R.LOOP_ELSE, f"`{kind} ... else` on the epoch loop is not converted")
        pre = list(site.epoch_pre)
        start_break = bool(pre) and _break_test(pre[0]) is not None
        if m.findall(cst.Module(body=pre[1:] if start_break else pre), m.Break() | m.Continue()):
            refuse(
                R.EARLY_CONTROL_FLOW,
                "`break`/`continue` before the batch loop is not converted (only an "
                "`if <test>: break` as the epoch's first statement is)",
            )
    if site.batch_for.orelse is not None:
        refuse(R.LOOP_ELSE, "`for ... else` on the batch loop is not converted")
    if m.findall(cst.Module(body=list(epoch_post)), m.Continue()):
        refuse(R.EARLY_CONTROL_FLOW, "`continue` in the epoch loop is not converted")
    if isinstance(loop, cst.While):
        findings.append(
            Finding(
                R.EPOCH_LOOP_MAPPED,
                FIXED,
                f"`while {code_of(loop.test)}` mapped to "
                "Trainer(max_epochs=-1), stopping when the condition turns false "
                "at an epoch's end",
                *where,
            )
        )
        # a while loop re-checks its condition before the next epoch
        check = stmt(f"if not ({code_of(loop.test)}):\n    self.trainer.should_stop = True\n")
        return EpochPlan(while_test=loop.test, while_check=(check,), start_break=start_break)
    if loop is None:
        return EpochPlan()
    values = _epoch_values(loop, refuse)
    it = loop.iter
    if m.matches(it, m.Call(func=m.Name("enumerate"))):
        it = it.args[0].value
    count = _epoch_count(it)
    findings.append(
        Finding(
            R.EPOCH_LOOP_MAPPED, FIXED, f"epoch loop mapped to Trainer(max_epochs={count})", *where
        )
    )
    return EpochPlan(iter=code_of(it), values=values, max_epochs=count, start_break=start_break)


def _evaluation(
    module, site: Site, epoch_post: list, schedules: Schedules, position, where, findings
):
    """(validation plan or None, the epoch's statements left): an evaluation helper called
    first after training, or an evaluation loop written in the epoch loop."""
    if not isinstance(site.epoch_for, cst.For):
        return None, epoch_post
    from scaffold.migrate.evaluation import plan_inline_validation, plan_validation

    fn_post = list(schedules.fn_post)
    val = plan_validation(module, epoch_post, fn_post)
    if val is not None:
        findings.append(
            Finding(
                R.VALIDATION_HOOKS,
                FIXED,
                f"evaluation helper `{val.fn.name.value}()` "
                "converted to validation_step and the validation epoch hooks",
                *where,
            )
        )
        return val, epoch_post[len(val.lead) + 1 :]
    val = plan_inline_validation(epoch_post, fn_post)
    if val is None:
        return None, epoch_post
    p = position(val.call_stmt)
    findings.append(
        Finding(
            R.VALIDATION_HOOKS,
            FIXED,
            "evaluation loop of the epoch converted to validation_step "
            "(the statements before it run in on_validation_epoch_start)",
            p.line,
            p.column + 1,
        )
    )
    return val, val.rest


def _carried_state(
    module, site: Site, roles: Roles, schedules, epoch, val, epoch_post, idx, refuse, loader=None
) -> State:
    """Data flow (``scaffold.migrate.dataflow``): a variable becomes an attribute of the module
    only when its value crosses from one hook call to another, or from the loop to the code
    after it."""
    plan = roles.step
    before, after = site.scope_body[:idx], site.scope_body[idx + 1 :]
    # a loop in an `if`/`try` block: what ran before the block set values the loop starts
    # from, what runs after it reads the loop's values
    ahead, behind = around_block(module, site.scope_body)
    before, after = [*ahead, *before], [*after, *behind]
    targets = _bound_names(site.batch_for.target)
    while_check = list(epoch.while_check)
    fn_post = list(schedules.fn_post)
    u_after = _read_later(
        after, module, site.scope_body is module.body, [site.train_fn] if site.train_fn else []
    )
    outer_globals = declared_global(site.scope_body)
    if site.train_fn is None:
        pre, post = list(site.epoch_pre), list(epoch_post) + while_check
        hook_writes = written(pre) | written(plan.body) | targets | written(post)
        hook_reads = incoming(pre) | incoming(plan.body, targets) | incoming(post) | u_after
        if loader is not None:
            hook_reads.add(loader)  # the Trainer reads the epoch's loader from the module
        shared = (hook_writes & hook_reads) - set(epoch.values) - outer_globals
        fn_shared: set[str] = set()
        fn_globals: set[str] = set()
        loop_reads = hook_reads
    else:
        fn_globals = declared_global(site.fn_pre)
        params = {p.name.value for p in site.train_fn.params.params}
        f_writes = written(site.fn_pre) | written(plan.body) | targets | written(fn_post)
        f_reads = (
            incoming(site.fn_pre) | incoming(plan.body, targets) | incoming(fn_post)
        ) - params
        fn_shared = (f_writes & f_reads) - fn_globals
        e_writes = (
            written(site.epoch_pre)
            | written(epoch_post)
            | (
                _bound_names(cst.parse_expression(schedules.call_target))
                if schedules.call_target
                else set()
            )
        )
        e_reads = (
            incoming(site.epoch_pre)
            | incoming(epoch_post + while_check)
            | u_after
            | (f_reads - f_writes)
        )
        shared = (e_writes & e_reads) - set(epoch.values) - outer_globals
        if shared & fn_shared:
            refuse(
                R.STATE_CONFLICT,
                f"variables {sorted(shared & fn_shared)} are used both in the epoch loop and in "
                f"`{site.train_fn.name.value}()`; not converted",
            )
        loop_reads = (e_reads - u_after) | f_reads
    if val is not None and (val.inline or val.lead):
        shared |= _evaluation_state(site, plan, targets, val, epoch_post + while_check, u_after)
        shared -= set(epoch.values) | outer_globals
    if val is not None and val.target is not None:
        shared.add(val.target)  # the helper's result, stored by on_validation_epoch_end
    readers = _epoch_readers(module, site, epoch)
    global_names = outer_globals | fn_globals | set().union(*readers.values())
    attr_of = {n: (n if n not in LIGHTNING_ATTRS else f"{n}_") for n in shared | fn_shared}
    # the hooks use the module's own attributes for the model(s) it holds, where the name is
    # the same object throughout the loop (never rebound by it)
    if plan.manual:
        models = {n: attr_of_model(n) for n in roles.manual_models}
    else:
        models = {
            **{n: attr_of_model(n) for n in roles.extra_models},
            # no module at all when the optimizer trains the script's own tensors
            **(dict.fromkeys(roles.model_names, "model") if roles.model_code else {}),
        }
    changing = (
        written(site.epoch_pre)
        | written(plan.body)
        | written(epoch_post)
        | written(site.fn_pre)
        | written(fn_post)
        | targets
        | shared
        | fn_shared
        | global_names
    )
    return State(
        shared=frozenset(shared),
        fn_shared=frozenset(fn_shared),
        global_names=frozenset(global_names),
        attr_of=attr_of,
        read_later=frozenset(u_after),
        loop_reads=frozenset(loop_reads),
        before=tuple(before),
        after=tuple(after),
        index=idx,
        own_models=_own_model_attrs(models, changing),
        epoch_readers=readers,
    )


def _epoch_readers(module, site: Site, epoch) -> dict[str, frozenset[str]]:
    """{script function: the epoch variables it reads as globals} for a module-level epoch loop
    (``print(epoch)`` inside a ``test()`` the loop calls): the hooks calling it keep them global.
    Empty for a loop inside a function (its epoch variable is no global)."""
    at_module_level = site.scope_body is module.body or any(
        isinstance(s, cst.If)
        and isinstance(s.body, cst.IndentedBlock)
        and s.body.body is site.scope_body
        for s in module.body
    )
    if not at_module_level:
        return {}
    names = set(epoch.values)
    found: dict[str, frozenset[str]] = {}
    for fn in module.body:
        if not isinstance(fn, cst.FunctionDef) or fn is site.train_fn:
            continue
        params = {p.name.value for p in fn.params.params}
        reads = names & incoming(list(body_without_docstring(fn)), params)
        if reads:
            found[fn.name.value] = frozenset(reads)
    return found


def _evaluation_state(site, plan, targets, val, epoch_rest, u_after) -> set[str]:
    """What evaluation code written in the epoch loop (inline, or statements run just before
    the helper) carries: its variables that later code reads, and what it reads from the
    training part."""
    shared: set[str] = set()
    if val.inline:
        v_targets = _bound_names(val.call_stmt.body.body[0].target)
        v_writes = written([*val.pre, *val.body]) | v_targets
        # the evaluation loop's body runs with its batch names bound
        v_reads = incoming(val.pre) | incoming(val.body, written(val.pre) | v_targets)
    else:
        v_writes, v_reads = written(val.lead), incoming(val.lead)
    later = incoming(epoch_rest) | u_after | incoming(site.epoch_pre)
    shared |= v_writes & (later | v_reads)
    if site.train_fn is None:
        # what the evaluation reads from the training part (not its own variables)
        shared |= (written(site.epoch_pre) | written(plan.body) | targets) & (v_reads - v_writes)
    return shared


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
    """Whether ``name`` holds a learning-rate scheduler: what its construction resolves to
    (``torch.optim.lr_scheduler.*`` yes, another ``torch.optim.*`` no); for a class of the
    script's own or a library's, what it is called."""
    for body in scope_bodies:
        value = _assignment_value(body, name)
        if value is not None:
            built = qualified(value) if isinstance(value, cst.Call) else None
            if built is not None and built.startswith("torch.optim."):
                return built.startswith("torch.optim.lr_scheduler.")
            text = code_of(value)
            callee = text.split("(")[0]
            return (
                "lr_scheduler" in text
                or "Scheduler" in text
                or "LR(" in text
                or "LR" in callee
                or "schedule" in callee.lower()
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


def _optimizer_models(code: str, construction, scope_bodies) -> tuple:
    """(construction, the modules it trains, per-branch modules) of the optimizer ``code``:
    its assignment in the scope, or the branches that build it (``if args.optim == "sgd":
    optimizer = SGD(...) else: ...``: the object is handed over as built; every branch must
    train the same modules)."""
    for body in scope_bodies:
        if construction is not None:
            break
        construction = _assignment_value(body, code)
    if construction is not None:
        return construction, _trained_models(construction, scope_bodies), []
    found = [vs for body in scope_bodies for vs in _branch_values(body, code)]
    if not found:
        return None, [], []
    branches = [v for v, _ in found]
    branch_models = [_trained_models(v, scope_bodies) for v in branches]
    known = [b for b in branch_models if b]
    # the other branches load the optimizer (a checkpoint's `optimizer`) in the same branch as
    # they load every one of those models: the pair saved together trains together
    loaded_together = all(
        b or set(known[0] if known else ()) <= written(suite)
        for b, (_, suite) in zip(branch_models, found, strict=True)
    )
    if known and all(b == known[0] for b in known) and loaded_together:
        return branches[branch_models.index(known[0])], known[0], []
    same = all(f == branch_models[0] for f in branch_models)
    return branches[0], branch_models[0] if same else [], branch_models


def _step_of(site, position, model_names, own_steps, fn_map, construction, refuse):
    """The step plan, once the optimizer's class is known to take the Trainer's closure."""
    closure_free = _closure_free_step(construction)
    if closure_free is not None and closure_free.endswith("takes no closure"):
        refuse(
            R.CUSTOM_STEP,
            f"{closure_free}: the Trainer steps every optimizer with `step(closure=...)`, "
            "automatic and manual optimization alike; give it a `closure=None` parameter (and "
            "call the closure when given one), then migrate again",
        )
    return plan_step(
        site,
        position,
        model_names,
        own_steps=tuple(own_steps),
        varying=_varying(site, fn_map),
        closure_free=closure_free,
    )


def _closure_free_step(construction) -> str | None:
    """Why the Trainer cannot step the optimizer ``construction`` builds with a closure: its
    class, defined in the script or beside it, has a ``step`` that takes no closure or never
    calls (or hands on) the one it takes; the Trainer's automatic optimization runs
    training_step inside ``optimizer.step(closure)``. None when the class is not the script's
    (torch's optimizers, and library ones, run the closure they are given)."""
    from scaffold.migrate.helpers import visible_class

    if not isinstance(construction, cst.Call) or not isinstance(construction.func, cst.Name):
        return None
    cls = visible_class(construction.func.value)
    body = cls.body.body if cls is not None and isinstance(cls.body, cst.IndentedBlock) else []
    step = next(
        (f for f in body if isinstance(f, cst.FunctionDef) and f.name.value == "step"), None
    )
    if step is None:
        return None  # inherited: a library optimizer's step
    params = [*step.params.params[1:], *step.params.kwonly_params]
    name = f"`{cls.name.value}.step()`"
    if not params:
        return f"{name} takes no closure"
    closure = params[0].name.value
    if not any(isinstance(n, cst.Name) and n.value == closure for n in walk(step.body)):
        return f"{name} never runs the closure it is given"
    runs = m.Call(func=m.Name(closure))
    calls = m.findall(step.body, runs)
    looped = any(m.findall(loop, runs) for loop in _loops_in(step.body))
    if len(calls) > 1 or looped:
        # a line search or a two-pass step: given the Trainer's closure it would run
        # training_step again, where the script's own step ran without one
        return f"{name} may run the closure it is given more than once"
    return None


def _loops_in(node) -> list:
    return [n for n in walk(node) if isinstance(n, (cst.For, cst.While))]


def _varying(site: Site, fn_map: dict) -> frozenset[str]:
    """Names a value read once where the Trainer is built cannot stand for: those the loops
    bind (their targets, what their bodies assign, what the training function assigns) and the
    training function's parameters, unless the call passes a plain name or attribute that the
    epoch loop leaves alone (``train(..., args.clip)``: the Trainer reads ``args.clip``)."""
    per_epoch = [*site.epoch_pre, *site.epoch_post, *site.fn_pre, *site.fn_post]
    loops = [site.batch_for, *([site.epoch_for] if site.epoch_for is not None else [])]
    names = written([*site.batch_for.body.body, *per_epoch])
    names |= _used([loop.target for loop in loops if isinstance(loop, cst.For)])
    epoch_writes = written(per_epoch) | (
        written(list(site.epoch_for.body.body)) if site.epoch_for is not None else set()
    )
    if site.train_fn is not None:
        for p in _param_names(site.train_fn):
            value = fn_map.get(p)
            if value is None or not _simple(value) or _root(value) in epoch_writes | names:
                names.add(p)
    return frozenset(names)


def _param_names(fn: cst.FunctionDef) -> set[str]:
    p = fn.params
    return {x.name.value for x in [*p.posonly_params, *p.params, *p.kwonly_params]}


def _optimizer_of(module, site: Site, code: str, construction, scope_bodies) -> tuple:
    """``_optimizer_models`` where ``code`` names what it names in the loop's scope: a parameter
    of the function holding the loop shadows any global of that name, so its optimizer is the
    caller's argument, followed through the function's one call (``train(model, opt, ...)``
    called once from ``main()``)."""
    owner = function_owning(module, site.scope_body)
    if construction is None and owner is not None and code in _param_names(owner):
        trained = _through_caller(module, owner, code)
        return None, trained or [], []
    return _optimizer_models(code, construction, scope_bodies)


def _rebinds(stmts, names: set[str]) -> bool:
    """Whether ``stmts`` bind any of ``names`` to another object (``m = m.to(device)`` and the
    like return the object itself and do not count, see ``_keeps_objects``)."""
    return any(written([s]) & names and not _keeps_objects(s, names) for s in stmts)


# wrappers whose `.parameters()` are the wrapped module's own: the optimizer built on either
# trains the same tensors
_SAME_PARAMETERS = {
    "torch.nn.DataParallel",
    "torch.nn.parallel.DataParallel",
    "torch.nn.parallel.DistributedDataParallel",
    "torch.compile",
}


def _keeps_objects(stmt, names: set[str]) -> bool:
    """Whether every binding of ``names`` in ``stmt`` keeps what they hold: ``m = m.to(dev)``
    (``.cuda()``, ``.cpu()``), ``m = nn.DataParallel(m)`` (the same parameters), and apex's
    ``model, optimizer = amp.initialize(model, optimizer, ...)`` (both patched in place); an
    ``if`` whose bindings of them are all such."""
    if isinstance(stmt, cst.If):
        suites = [stmt.body]
        if isinstance(stmt.orelse, cst.Else):
            suites.append(stmt.orelse.body)
        elif isinstance(stmt.orelse, cst.If):
            return _keeps_objects(stmt.orelse, names) and all(
                _keeps_objects(s, names) for s in _suite(stmt.body) if written([s]) & names
            )
        return all(
            _keeps_objects(s, names)
            for suite in suites
            for s in _suite(suite)
            if written([s]) & names
        )
    small = (
        stmt.body[0] if isinstance(stmt, cst.SimpleStatementLine) and len(stmt.body) == 1 else None
    )
    if not (isinstance(small, cst.Assign) and len(small.targets) == 1):
        return False
    target, value = small.targets[0].target, small.value
    if not isinstance(value, cst.Call):
        return False
    if isinstance(target, cst.Name):
        own = target.value
        if m.matches(
            value.func,
            m.Attribute(value=m.Name(own), attr=m.Name("to") | m.Name("cuda") | m.Name("cpu")),
        ):
            return True
        first = value.args[0].value if value.args and value.args[0].keyword is None else None
        return qualified(value) in _SAME_PARAMETERS and m.matches(first, m.Name(own))
    if isinstance(target, (cst.Tuple, cst.List)) and qualified(value) in (
        "apex.amp.initialize",
        "amp.initialize",
    ):
        bound = [code_of(e.value) for e in target.elements]
        passed = [code_of(a.value) for a in value.args[: len(bound)] if a.keyword is None]
        return bound == passed
    return False


def _through_caller(module, fn: cst.FunctionDef, code: str, depth: int = 0) -> list[str] | None:
    """The modules (as ``fn``'s parameters) that the optimizer ``fn`` receives as its parameter
    ``code`` trains, read where ``fn``'s callers build it: each call passes a variable built as
    ``<optimizer>(<model>.parameters(), ...)`` and passes those models as the same parameters
    of ``fn`` (``train(model_a, opt_a)``, later ``train(model_b, opt_b)``). None when that
    cannot be told (an argument that is not a plain name, a rebinding, calls that disagree)."""
    groups = _caller_groups(module, fn)
    if not groups or depth > 3:
        return None
    fn_body = fn.body.body if isinstance(fn.body, cst.IndentedBlock) else []
    agreed: list[str] | None = None
    for caller, calls in groups:
        with _reading(caller, module):
            for body, line, call, enclosing in calls:
                mapped = _passed_models(caller, fn, code, body, line, call, enclosing, depth)
                if not mapped or (agreed is not None and mapped != agreed):
                    return None
                agreed = mapped
    if agreed is None or _rebinds(fn_body, {code, *agreed}):
        return None
    return agreed


def _caller_groups(module, fn: cst.FunctionDef) -> list[tuple] | None:
    """``(module, its statement calls of fn)`` for every module whose calls of ``fn`` are
    followed: the script's own, and for a top-level function of the script being converted,
    those of the modules beside it that import it (``engine.py``'s ``train()``, called by
    ``train.py`` next to it). None when some call cannot be followed or there is none."""
    name = fn.name.value
    groups: list[tuple] = []
    if calls_of(module, name):
        calls = statement_calls(module, name)
        if calls is None:
            return None
        groups.append((module, calls))
    if module is helpers.current_module() and fn in module.body:
        beside = helpers.callers_beside(name)
        if beside is None:
            return None
        groups += beside
    return groups or None


@contextlib.contextmanager
def _reading(caller, script):
    """Names and helpers resolve in ``caller`` while its calls are read (the script's own
    resolution stays as it is when the caller is the script)."""
    if caller is script:
        yield
        return
    from libcst.metadata import MetadataWrapper

    with names.using(MetadataWrapper(caller, unsafe_skip_copy=True)), helpers.within(caller):
        yield


def _passed_models(module, fn, code, body, line, call, enclosing, depth) -> list[str] | None:
    """For one call of ``fn``: the parameters of ``fn`` that receive the models the optimizer
    passed as ``code`` trains."""
    binding = call_bindings(fn, call)
    arg = binding.get(code) if binding else None
    if arg is None or not re.fullmatch(r"[A-Za-z_]\w*", arg):
        return None
    idx = next(i for i, st in enumerate(body) if st is line)
    before = [*around_block(module, body)[0], *body[:idx]]
    # in a loop (however deep in it the call sits), the loop's statements run again before
    # its next call: none of them may bind what the call passes
    again = _loop_statements_around(module, line)
    if any(arg in written([st]) and not _keeps_objects(st, {arg}) for st in again):
        return None
    writes = [
        i for i, st in enumerate(before) if arg in written([st]) and not _keeps_objects(st, {arg})
    ]
    if not writes and enclosing is not None and arg in _param_names(enclosing):
        trained = _through_caller(module, enclosing, arg, depth + 1)
    elif writes:
        last = before[writes[-1]]
        if len(writes) > 1 and _assignment_value([last], arg) is None:
            return None  # rebound conditionally: which build reaches the call is not known
        _, trained, _ = _optimizer_models(arg, None, [[last]])
        roots = {_root(t) for t in trained or []}
        if _rebinds([*before[writes[-1] + 1 :], *again], roots):
            return None  # the models passed on are not the ones the optimizer was built on
    else:
        return None
    mapped: list[str] = []
    for model in trained or []:
        # `model.fc.parameters()`: the module handed over is the one passed, `model`
        params = [p for p, a in binding.items() if a == _root(model)]
        if not params:
            return None  # trains a module the function does not receive
        if params[0] not in mapped:
            mapped.append(params[0])
    return mapped


def _loop_statements_around(module, line) -> list:
    """The statements of every loop body that holds ``line`` (at any depth)."""
    found: list = []
    for body in loop_bodies(module):
        if any(n is line for st in body for n in walk(st)):
            found += list(body)
    return found


def _root(code: str) -> str:
    found = re.match(r"[A-Za-z_]\w*", code)
    return found.group(0) if found else code


def _unknown_model_reason(module, site: Site, opt_code: str, construction, branch_models) -> str:
    """Why the optimizer's model cannot be told, true for the file at hand."""
    if branch_models:
        if all(branch_models):
            return f"the branches that build `{opt_code}` take different models' parameters"
        return (
            f"`{opt_code}` is built in several branches, and not every one takes "
            "`<model>.parameters()` (e.g. one loads it from a checkpoint)"
        )
    if construction is not None:
        listed = why_not(construction, [site.scope_body, module.body], module)
        return (
            f"`{opt_code} = {code_of(construction)[:60]}` trains the script's own tensors, "
            f"but {listed}"
            if listed is not None
            else f"`{opt_code} = {code_of(construction)[:60]}` takes no `<model>.parameters()` "
            "(tensors or parameter groups built elsewhere)"
        )
    owner = function_owning(module, site.scope_body)
    if owner is not None and opt_code in _param_names(owner):
        name = owner.name.value
        calls = calls_of(module, name)
        head = f"`{opt_code}` is a parameter of `{name}()`"
        if site.epoch_for is None and calls:
            return (
                f"{head}, and `{name}()` is not called as `{name}(...)`, `x = {name}(...)` or "
                f"`a, b = {name}(...)` once per epoch in an epoch loop (e.g. "
                f"`losses.append({name}(...))` uses its result in an expression), so its "
                "caller's optimizer cannot be followed"
            )
        if not calls:
            folder = helpers.script_folder()
            where = "the current folder" if str(folder) in ("", ".") else f"`{folder}`"
            beside = (
                f", nor does a module beside it (in {where}) that imports it (or its calls there "
                "do not all pass an optimizer built on the model they pass)"
                if folder is not None
                else " (it is called from another module)"
            )
            return (
                f"{head}, which this file never calls{beside}, so the optimizer it receives "
                "cannot be followed from here; migrate this file where its callers sit beside "
                f"it, or convert by hand (move the epoch loop into the script that builds the "
                f"optimizer and calls `{name}()`, then migrate that script)"
            )
        if calls > 1:
            return (
                f"{head}, which this file calls {calls} times; which optimizer (and model) each "
                "call passes cannot be told apart"
            )
        return (
            f"{head}; its one call does not pass a variable built as `<optimizer>(<model>."
            f"parameters(), ...)` together with that model as another parameter of `{name}()`, "
            "or the function or its caller rebinds them in between"
        )
    return f"`{opt_code}` is not built in this scope (it is passed in or built elsewhere)"


def _branch_values(body, name: str) -> list:
    """``(value, the branch's statements)`` for each branch of the ``if`` statements of ``body``
    (``if``/``elif``/``else``, one level deep) that assigns ``name``, when every branch that
    binds it does so with a plain assignment."""
    values: list = []
    for s in body:
        branch = s if isinstance(s, cst.If) else None
        while branch is not None:
            suites = [branch.body]
            nxt = branch.orelse
            if isinstance(nxt, cst.Else):
                suites.append(nxt.body)
            for suite in suites:
                stmts = _suite(suite)
                value = _assignment_value(stmts, name)
                if value is not None:
                    values.append((value, stmts))
                elif name in written(stmts):
                    return []  # bound some other way (a loop, a with block, unpacking)
            branch = nxt if isinstance(nxt, cst.If) else None
    return values


def _trained_models(construction, scope_bodies, depth: int = 0) -> list[str]:
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
                    grown = _grown_groups(body, arg.value.value, depth)
                    followed = _trained_models(value, [], depth + 1) if grown is None else grown
                    if followed:
                        return followed
                    break
        elif isinstance(arg.value, cst.Call) and depth < 3:
            # `SGD(model.get_parameters(lr), ...)`: parameter groups from the model's method
            followed = _built_by_helper(arg.value, depth + 1)
            if followed:
                return followed
    return _built_by_helper(construction, depth)


_GROWS = m.Call(func=m.Attribute(attr=m.Name("append") | m.Name("extend")))


def _grown_groups(body, name: str, depth: int) -> list[str] | None:
    """``groups = []`` grown by ``groups += [{"params": model.fc.parameters(), ...}]``,
    ``groups.append(...)`` or ``.extend(...)`` (fine-tuning scripts' per-layer learning rates):
    the modules the list's first value and those statements take parameters from. A growth
    under an ``if`` may only add modules the unconditional ones already train (which modules
    the optimizer trains then does not depend on the branch); any other write to the list
    gives []. None when the list never grows."""
    if depth > 3:
        return None
    always: list[str] = []
    sometimes: list[str] = []
    state = {"started": False, "grew": False}

    def visit(stmts, conditional: bool) -> bool:
        for st in stmts:
            if isinstance(st, cst.If):
                branch = st
                while isinstance(branch, cst.If):
                    if not visit(_suite(branch.body), True):
                        return False
                    branch = branch.orelse
                if branch is not None and not visit(_suite(branch.body), True):
                    return False
                continue
            grows = [
                c for c in m.findall(st, _GROWS) if m.matches(c.func.value, m.Name(name)) and c.args
            ]
            smalls = st.body if isinstance(st, cst.SimpleStatementLine) else []
            augmented = [
                s
                for s in smalls
                if isinstance(s, cst.AugAssign)
                and m.matches(s.target, m.Name(name))
                and isinstance(s.operator, cst.AddAssign)
            ]
            values = [*(c.args[0].value for c in grows), *(s.value for s in augmented)]
            if name in written([st]) and not augmented:
                if state["started"] or conditional or not isinstance(st, cst.SimpleStatementLine):
                    return False
                state["started"] = True  # the assignment that starts the list
                first = _assignment_value([st], name)
                always.extend(_trained_models(first, [], depth + 1) if first is not None else [])
                continue
            for value in values:
                state["grew"] = True
                models = _trained_models(value, [], depth + 1)
                if not models:
                    return False
                (sometimes if conditional else always).extend(models)
        return True

    known = visit(list(body), False)
    if not state["grew"]:
        return None
    if not known or not always:
        return []
    roots = {_root(x) for x in always}
    if any(_root(x) not in roots for x in sometimes):
        return []
    return list(dict.fromkeys(always))


def _built_by_method(call: cst.Call) -> list[str]:
    """``optimizer = model.configure_optimizers(...)`` (nanoGPT): ``[model]`` when the classes
    the script binds ``model`` to (``model = GPT(conf)``) are its own or imported from a module
    beside it, and each one's method builds its optimizer from its own parameters only
    (``self.parameters()``/``self.named_parameters()``, nothing else's) and returns it at its
    end; [] otherwise."""
    from scaffold.migrate.helpers import classes_bound_to, methods_named, own_returns

    classes = classes_bound_to(call.func.value.value)
    candidates = methods_named(call.func.attr.value, classes) if classes else None
    if not candidates:
        return []
    params = m.Call(func=m.Attribute(attr=m.Name("parameters") | m.Name("named_parameters")))
    for fn in candidates:
        body = fn.body.body if isinstance(fn.body, cst.IndentedBlock) else []
        last = body[-1] if body else None
        ret = last.body[0] if isinstance(last, cst.SimpleStatementLine) and last.body else None
        sources = m.findall(fn, params)
        if (
            own_returns(fn) != 1
            or not isinstance(ret, cst.Return)
            or not isinstance(ret.value, (cst.Name, cst.Call))
            or not sources
            or any(_root(code_of(c.func.value)) != "self" for c in sources)
        ):
            return []
    return [call.func.value.value] if candidates else []


def _built_by_helper(call: cst.Call, depth: int) -> list[str]:
    """``set_optimizer(opt, model)``: the modules the optimizer that helper returns trains, as
    the caller's arguments (``model``), read from the helper's one ``return`` at its end (a
    construction, or a name its body builds in one place or in branches that agree); [] where
    that cannot be told (a module the helper does not receive, a parameter it rebinds)."""
    from scaffold.migrate.helpers import definition, own_returns

    if isinstance(call.func, cst.Attribute) and isinstance(call.func.value, cst.Name):
        return _built_by_method(call)
    fn = definition(call) if depth < 3 else None
    if fn is None or not isinstance(fn.body, cst.IndentedBlock):
        return []
    body = list(fn.body.body)
    last = body[-1] if body else None
    ret = last.body[0] if isinstance(last, cst.SimpleStatementLine) and last.body else None
    if own_returns(fn) != 1 or not isinstance(ret, cst.Return) or ret.value is None:
        return []
    if isinstance(ret.value, cst.Name):
        _, trained, branches = _optimizer_models(ret.value.value, None, [body[:-1]])
        if branches:
            return []
    else:
        trained = _trained_models(ret.value, [body[:-1]], depth + 1)
    binding = call_bindings(fn, call)
    if not trained or binding is None or _rebinds(body, {_root(t) for t in trained}):
        return []
    passed = []
    for model in trained:
        arg = binding.get(_root(model))
        if arg is None or not re.fullmatch(r"[A-Za-z_][\w.]*", arg):
            return []
        passed.append(arg + model[len(_root(model)) :])
    return list(dict.fromkeys(passed))


def _names_a_device(expr, scope_bodies, depth: int = 0) -> bool:
    """``"cuda"``, ``torch.device(...)``, ``"cuda" if c else "cpu"``, or a variable assigned one
    of these: a value ``torch.device(value)`` accepts on any machine."""
    if isinstance(expr, (cst.SimpleString, cst.FormattedString)):
        return True
    if isinstance(expr, cst.Call):
        return qualified(expr) == "torch.device"
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
            branches = [(_suite(s.body), [*conditions, test if _simple(test) else f"({test})"])]
            if isinstance(s.orelse, cst.Else):
                branches.append((_suite(s.orelse.body), [*conditions, f"not ({test})"]))
            elif isinstance(s.orelse, cst.If):
                branches.append(([s.orelse], [*conditions, f"not ({test})"]))
            found = [f for f in (_device_in(b, model_code, c) for b, c in branches) if f]
            if len(found) > 1 and all(device is None for device, _ in found):
                # `.cuda()` in several branches (if/elif): on the GPU when any of them runs
                return None, " or ".join(
                    f"({cond})" if " and " in cond or " or " in cond else cond for _, cond in found
                )
            if found:
                return found[0]
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


def _invariant_values(expr, per_epoch: list, changing: set[str]) -> dict[str, cst.BaseExpression]:
    """{name: value} for the names ``expr`` reads that the epoch recomputes to the same value
    every time: one plain ``name = <pure expression>`` at the top of the epoch, reading only
    names the loop never changes (``num_batches = n // batch_size``)."""
    made = written(per_epoch)
    out = {}
    for name in _used([cst.SimpleStatementLine([cst.Expr(expr)])]) & made:
        lines = [
            s_
            for s_ in per_epoch
            if isinstance(s_, cst.SimpleStatementLine)
            and len(s_.body) == 1
            and m.matches(s_.body[0], m.Assign(targets=[m.AssignTarget(target=m.Name(name))]))
        ]
        if len(lines) != 1:
            return {}
        others = [s_ for s_ in per_epoch if s_ is not lines[0]]
        value = lines[0].body[0].value
        reads = _used([cst.SimpleStatementLine([cst.Expr(value)])])
        if name in written(others) or not pure(value) or reads & (changing | made):
            return {}
        out[name] = value
    return out


class _Substitute(cst.CSTTransformer):
    """Names replaced by their values (parenthesized inside larger expressions)."""

    def __init__(self, values: dict) -> None:
        self.values = values

    def leave_Arg(self, original, updated):
        if isinstance(original.value, cst.Name) and original.value.value in self.values:
            return updated.with_changes(value=self.values[original.value.value])
        return updated

    def leave_Name(self, original, updated):
        value = self.values.get(updated.value)
        if value is None:
            return updated
        if isinstance(value, (cst.Name, cst.Integer, cst.Attribute)):
            return value
        return value.with_changes(lpar=[cst.LeftParen()], rpar=[cst.RightParen()])


def _loader_at_fit(loader_code: str, per_epoch: list, refuse, changing=frozenset()) -> str:
    """The loader expression as ``trainer.fit`` sees it, before the loop starts. A progress
    wrapper made each epoch (``pbar = tqdm(loader)``; the wrapper itself stays where the script
    made it) is looked through; anything else the epoch makes cannot be handed over."""
    made = written(per_epoch)
    expr = cst.parse_expression(loader_code)
    while isinstance(expr, cst.Name) and expr.value in made:
        value = last_assigned_value(per_epoch, expr.value)
        if not (
            isinstance(value, cst.Call)
            and qualified(value) in PROGRESS_WRAPPERS
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
    as_written = code_of(expr)
    invariant = _invariant_values(expr, per_epoch, set(changing))
    if invariant:
        # recomputed each epoch to the same value: the value itself (``range(n // bs)``)
        expr = expr.visit(_Substitute(invariant))
    moving = _used([cst.SimpleStatementLine([cst.Expr(expr)])]) & (made | set(changing))
    if moving:
        names = ", ".join(f"`{n}`" for n in sorted(moving))
        refuse(
            R.LOADER_PER_EPOCH,
            f"the batch loop's iterable `{as_written}` reads {names}, which the epoch loop "
            "changes; the Trainer needs the DataLoader before training starts",
        )
    return code_of(expr)


def _own_model_attrs(attrs: dict[str, str], changing: set[str]) -> dict[str, str]:
    """{script name: module attribute} for the models the LightningModule holds, less the
    names that do not stay the same object through the loop."""
    return {
        n: a for n, a in attrs.items() if re.fullmatch(r"[A-Za-z_]\w*", n) and n not in changing
    }


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
    values = {target.value: _range_item(it)}
    if index_name is not None:
        values[index_name] = f"{start} + {{i}}" if start is not None else "{i}"
    return values


def _epoch_count(it) -> str:
    """``len(range(...))`` as code; the number itself when the bounds are integer literals."""
    args = it.args if isinstance(it, cst.Call) else ()
    if args and all(isinstance(a.value, cst.Integer) and a.keyword is None for a in args):
        return str(len(range(*(int(a.value.evaluated_value) for a in args))))
    return f"len({code_of(it)})"


def _range_item(it: cst.Call) -> str:
    """``range(...)``'s item ``{i}`` as a format template: ``range(n)`` -> ``{i}``,
    ``range(a, b)`` -> ``a + {i}``, else ``range(...)[{i}]``."""

    def template(node) -> str:
        return code_of(node).replace("{", "{{").replace("}", "}}")

    args = it.args
    if any(a.keyword is not None or a.star for a in args):
        return f"{template(it)}[{{i}}]"
    if len(args) == 1:
        return "{i}"
    if len(args) == 2:
        start = args[0].value
        if isinstance(start, cst.Integer) and start.value == "0":
            return "{i}"
        if not isinstance(start, (cst.Name, cst.Attribute, cst.Integer)):
            return f"({template(start)}) + {{i}}"
        return f"{template(start)} + {{i}}"
    return f"{template(it)}[{{i}}]"


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
