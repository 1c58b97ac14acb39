"""migrate's pipeline for one source text: the ordered ``PASSES`` (each says why it sits where
it does), then the safety net (the output parses, keeps every comment, and migrating it again
changes nothing).

No file access and no printing here (see ``files``)."""

from __future__ import annotations

import contextlib
import difflib
import re
import tokenize
from collections import Counter
from dataclasses import dataclass, field
from io import StringIO
from pathlib import Path

from scaffold.migrate import rules as R
from scaffold.migrate.findings import FIXED, INFO, MANUAL, REFUSED, CannotConvert, Finding

MIGRATED, UNCHANGED, NOT_CONVERTED, OUT_OF_SCOPE, SYNTAX_ERROR = (
    "migrated", "unchanged", "manual", "refused", "error",
)  # fmt: skip

# (regex on the source, reason); any hit refuses the whole script.
OUT_OF_SCOPE_MARKERS = [
    (r"torch\.distributed\.rpc|from torch\.distributed import rpc|dist_autograd",
     "uses torch.distributed.rpc (remote procedure calls): out of scope for a Lightning migration"),
    (r"parallelize_module|DeviceMesh|init_device_mesh|tensor\.parallel",
     "uses tensor parallelism (DeviceMesh / parallelize_module): out of scope"),
    (r"^\s*import gym\b|^\s*import gymnasium\b|^\s*from gym(nasium)? import",
     "is a reinforcement-learning script (gym environments): out of scope"),
    (r"\.share_memory\(\)",
     "trains in several processes sharing one model (Hogwild): out of scope"),
    (r"^\s*import horovod|^\s*from horovod",
     "trains with Horovod, which Lightning 2.x no longer supports: out of scope"),
    (r"accelerator\.backward\(|fabric\.backward\(",
     "already runs on Accelerate/Fabric, which manage the loop: out of scope"),
]  # fmt: skip


@dataclass
class SourceResult:
    status: str
    code: str  # the new text (== the input unless status is MIGRATED)
    findings: list[Finding] = field(default_factory=list)


def comments(code: str) -> Counter:
    found: Counter = Counter()
    try:
        for tok in tokenize.generate_tokens(StringIO(code).readline):
            if tok.type == tokenize.COMMENT:
                found[tok.string.strip()] += 1
    except (tokenize.TokenError, IndentationError, SyntaxError):
        pass
    return found


def _line_of(code: str, index: int) -> int:
    return code.count("\n", 0, index) + 1


def _refusal(code: str, module=None) -> Finding | None:
    for pattern, reason in OUT_OF_SCOPE_MARKERS:
        hit = re.search(pattern, code, re.M)
        if hit:
            line = _line_of(code, hit.start())
            return Finding(R.OUT_OF_SCOPE, REFUSED, f"script {reason}", line, 1)
    return _training_in_module_method(code, module)


def _training_in_module_method(code: str, module=None) -> Finding | None:
    """``.backward()`` + ``.step()`` inside a method of an nn.Module subclass (training inside
    ``forward``, forward-forward style): refused."""
    import libcst as cst
    from libcst.metadata import MetadataWrapper, PositionProvider

    import scaffold.migrate.match as m

    if "class " not in code or ".backward(" not in code:
        return None
    parsed = module if module is not None else cst.parse_module(code)
    wrapper = MetadataWrapper(parsed, unsafe_skip_copy=True)
    candidates = [
        c
        for c in m.findall(wrapper.module, m.ClassDef())
        if m.findall(c, m.Call(func=m.Attribute(attr=m.Name("backward"))))
    ]
    if not candidates:
        return None
    positions = wrapper.resolve(PositionProvider)
    for cls in candidates:
        bases = " ".join(cst.Module(body=[]).code_for_node(b.value) for b in cls.bases)
        if "Module" not in bases or "LightningModule" in bases:
            continue
        for fn in m.findall(cls, m.FunctionDef()):
            if m.findall(fn, m.Call(func=m.Attribute(attr=m.Name("backward")))) and m.findall(
                fn, m.Call(func=m.Attribute(attr=m.Name("step")))
            ):
                pos = positions[fn].start
                return Finding(
                    R.TRAINING_IN_MODULE,
                    REFUSED,
                    f"training happens inside `{cls.name.value}.{fn.name.value}` of an nn.Module "
                    "(not a training loop Lightning can own): out of scope",
                    pos.line,
                    pos.column + 1,
                )
    return None


def _training_outside_loops(module, positions, class_reason: str | None = None) -> Finding | None:
    """backward() and step() in a function or method this tool did not convert (e.g. a
    hand-written Trainer class): reported, never silently skipped. ``positions()``: the
    module's PositionProvider map."""
    import libcst as cst

    import scaffold.migrate.match as m
    from scaffold.migrate.locate import loops_stepping

    step_call = m.Call(func=m.Attribute(attr=m.Name("step")))
    for cls in m.findall(module, m.ClassDef()):
        bases = " ".join(cst.Module(body=[]).code_for_node(b.value) for b in cls.bases)
        if "LightningModule" in bases:
            continue
        # backward() alone is no training step (an autograd Function's own `backward`, a
        # saliency map): the class trains when it, or a loop of the script, takes a step
        if m.findall(cls, m.Call(func=m.Attribute(attr=m.Name("backward")))) and (
            m.findall(cls, step_call) or loops_stepping(module)
        ):
            pos = positions()[cls].start
            return Finding(
                R.TRAINER_CLASS,
                MANUAL,
                f"class `{cls.name.value}` runs the training step in "
                "its methods (a hand-written trainer) and cannot be flattened into one "
                f"training method: {class_reason or 'no method runs the whole loop'}",
                pos.line,
                pos.column + 1,
            )
    for fn in m.findall(module, m.FunctionDef()):
        if m.findall(fn, m.Call(func=m.Attribute(attr=m.Name("backward")))) and m.findall(
            fn, m.Call(func=m.Attribute(attr=m.Name("step")))
        ):
            pos = positions()[fn].start
            name = fn.name.value
            calls = [c for c in m.findall(module, m.Call(func=m.Name(name))) if c in positions()]
            if not calls:
                why = "it is never called in this file"
            elif len(calls) > 1:
                lines = ", ".join(str(positions()[c].start.line) for c in calls[:5])
                why = f"it is called from {len(calls)} places (lines {lines})"
            else:
                why = (
                    f"its call on line {positions()[calls[0]].start.line} is not a statement of "
                    "its own directly inside a `for` loop"
                )
            return Finding(
                R.STEP_FUNCTION,
                MANUAL,
                f"`{name}()` takes optimizer steps, and {why}; not converted: call it once per "
                "batch (or per epoch) as a statement of a `for` loop, or convert it by hand",
                pos.line,
                pos.column + 1,
            )
    return None


@dataclass
class _Work:
    """One script on its way through the passes."""

    code: str  # the user's text (never changed)
    engine: str
    tooling: bool
    module: object = None  # libcst.Module: the script as the passes left it so far
    findings: list[Finding] = field(default_factory=list)
    hints: object = None  # loops.Hints: what earlier passes learned for the loop pass
    class_reason: str | None = None  # why a hand-written trainer class was not flattened
    undistributed: tuple | None = None  # (module, findings) before the distributed set-up went
    converted: bool = False
    # imports a rewrite needs, added last (so findings keep the script's line numbers)
    imports: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Pass:
    name: str
    run: object  # (_Work) -> SourceResult | None; a result ends the pipeline
    why_here: str  # the reason for its place in the order


def _parse(work: _Work) -> SourceResult | None:
    import libcst as cst

    code = work.code
    try:
        compile(code, "<script>", "exec")
        work.module = cst.parse_module(code)
    except SyntaxError as err:
        at = (err.lineno or 1, err.offset or 1)
        return SourceResult(
            SYNTAX_ERROR, code, [Finding(R.SYNTAX_ERROR, MANUAL, f"syntax error: {err.msg}", *at)]
        )
    except RecursionError:
        # Python itself cannot compile it (nor run it); libcst's parser would crash the process
        return _too_deep(code)
    except cst.ParserSyntaxError as err:
        at = (err.raw_line, err.raw_column + 1)
        return SourceResult(
            SYNTAX_ERROR,
            code,
            [Finding(R.SYNTAX_ERROR, MANUAL, f"syntax error: {err.message}", *at)],
        )
    return None


def _out_of_scope(work: _Work) -> SourceResult | None:
    refusal = _refusal(work.code, work.module)
    return SourceResult(OUT_OF_SCOPE, work.code, [refusal]) if refusal is not None else None


def _lightning1(work: _Work) -> SourceResult | None:
    from scaffold.migrate.lightning1 import upgrade, uses_lightning1

    if uses_lightning1(work.module):
        work.module, work.findings = upgrade(work.module, work.engine)
    return None


def _distributed(work: _Work) -> SourceResult | None:
    from scaffold.migrate.ddp import strip_distributed, uses_distributed

    if not uses_distributed(work.code):
        return None
    try:
        stripped, dist = strip_distributed(work.module)
    except CannotConvert as err:
        if not _calls_backward(work.module):
            return None  # distributed library code without a training step: nothing to convert
        return SourceResult(NOT_CONVERTED, work.code, [*work.findings, err.finding])
    if dist.findings:
        work.undistributed = (work.module, list(work.findings))
        work.module, work.hints.dist = stripped, dist
        work.findings += dist.findings
    return None


def _calls_backward(module) -> bool:
    import scaffold.migrate.match as m

    return bool(m.findall(module, m.Call(func=m.Attribute(attr=m.Name("backward")))))


def _trainer_class(work: _Work) -> SourceResult | None:
    from scaffold.migrate.locate import has_hand_written_loop
    from scaffold.migrate.trainer_class import inline_trainer_class

    if "class " not in work.code:
        return None
    plan = inline_trainer_class(work.module)
    if isinstance(plan, str):
        work.class_reason = plan
    elif plan is not None and has_hand_written_loop(plan.module):
        work.module, work.hints.model, work.hints.device = plan.module, plan.model, plan.device
        work.hints.trained = plan.trained
        what = (
            f"methods {', '.join(f'`{n}`' for n in plan.inlined)} inlined into `{plan.method}()`"
            if plan.inlined
            else f"`{plan.method}()` converted in place"
        )
        work.findings.append(
            Finding(
                R.TRAINER_CLASS_FLATTENED,
                FIXED,
                f"hand-written trainer class `{plan.cls_name}`: {what}, "
                f"the trainer object read as `{plan.alias}` inside it",
                _line_of(work.code, work.code.find(f"class {plan.cls_name}")),
                1,
            )
        )
    return None


def _first_line(code: str, hit) -> tuple[int, int]:
    """(line, column) of the script's first line ``hit`` accepts, where a finding of a pass
    that rewrote the tree is reported; (1, 1) when none does."""
    for at, text in enumerate(code.splitlines(), 1):
        if hit(text):
            return at, len(text) - len(text.lstrip()) + 1
    return 1, 1


def _report_fixed(work: _Work, rule: str, message: str, hit) -> None:
    """A rewrite of a pass, reported at the script's first line ``hit`` accepts (the tree the
    pass rewrote has no positions in the user's text)."""
    line, col = _first_line(work.code, hit)
    work.findings.append(Finding(rule, FIXED, message, line, col))


def _unroll_phases(work: _Work) -> SourceResult | None:
    from scaffold.migrate.phases import unroll_phase_loop

    if "backward" not in work.code:
        return None
    for _ in range(4):  # one phase loop per round; a file has one or two
        unrolled = unroll_phase_loop(work.module)
        if unrolled is None:
            break
        header = re.compile(rf"^\s*for\s+{re.escape(unrolled.variable)}\s+in\b")
        work.module = unrolled.module
        _report_fixed(
            work,
            R.PHASE_LOOP_UNROLLED,
            f"`for {unrolled.variable} in [{', '.join(unrolled.phases)}]` written out, one copy "
            "of its body per phase, each folded for its phase",
            header.match,
        )
    return None


def _open_progress_blocks(work: _Work) -> SourceResult | None:
    from scaffold.migrate.progress import open_progress_blocks

    opened = open_progress_blocks(work.module)
    if opened is None:
        return None
    work.module = opened.module
    for bar in opened.bars:
        header = re.compile(rf"^\s*with\b.*\bas\s+{re.escape(bar)}\s*:")
        _report_fixed(
            work,
            R.PROGRESS_BLOCK_OPENED,
            f"`with ... as {bar}:` around the batch loop written out as `{bar} = ...` and "
            f"`{bar}.close()`, what leaving the block does",
            header.match,
        )
    return None


def _count_endless_loops(work: _Work) -> SourceResult | None:
    from scaffold.migrate.whiles import count_endless_loops

    if "while" not in work.code or "backward" not in work.code:
        return None
    counted = count_endless_loops(work.module)
    if counted is None:
        return None
    work.module = counted.module
    work.imports.append("import itertools\n")
    _report_fixed(
        work,
        R.ENDLESS_LOOP_COUNTED,
        "`while True:` training loop written as `for _ in itertools.count():` (the same "
        "passes; its `break` ends the Trainer's epoch)",
        re.compile(r"^\s*while\s*(True|1|\(True\))\s*:").match,
    )
    return None


def _split_training_calls(work: _Work) -> SourceResult | None:
    from scaffold.migrate.hoist import hoist_training_calls

    if "backward" not in work.code:
        return None
    for _ in range(8):  # one call per round; a file has a few training helpers at most
        hoisted = hoist_training_calls(work.module)
        if hoisted is None:
            break
        called = re.compile(rf"(?<![\w.]){re.escape(hoisted.helper)}\(")
        work.module = hoisted.module
        _report_fixed(
            work,
            R.TRAINING_CALL_SPLIT,
            f"`{hoisted.helper}(...)` split out of the expression using its result "
            f"(`{hoisted.result} = {hoisted.helper}(...)` first)",
            lambda text, called=called: (
                called.search(text) and not text.lstrip().startswith("def ")
            ),
        )
    return None


def _step_helpers(work: _Work) -> SourceResult | None:
    from scaffold.migrate.inline import inline_step_helpers
    from scaffold.migrate.locate import has_hand_written_loop

    if has_hand_written_loop(work.module):
        return None
    inlined = inline_step_helpers(work.module)
    if inlined is not None and has_hand_written_loop(inlined):
        work.module = inlined
        work.findings.append(
            Finding(R.STEP_HELPER_INLINED, FIXED, "per-batch helper inlined into the training loop")
        )
    return None


def _unreachable_training(work: _Work) -> SourceResult | None:
    from scaffold.migrate.locate import has_hand_written_loop

    if has_hand_written_loop(work.module):
        return None
    # reported on the script as written: nothing is converted, so nothing was removed either
    module, findings = work.undistributed or (work.module, work.findings)
    from libcst.metadata import MetadataWrapper, PositionProvider

    wrapper = MetadataWrapper(module, unsafe_skip_copy=True)
    resolved: list = []

    def positions():  # resolved once, and only for a file that has something to report
        if not resolved:
            resolved.append(wrapper.resolve(PositionProvider))
        return resolved[0]

    module = wrapper.module
    found = (
        _accumulation_loop(module, positions)
        or _custom_step_loop(module, positions)
        or _flat_while_loop(module, positions, work.code)
        or _training_outside_loops(module, positions, work.class_reason)
    )
    if found is not None:
        return SourceResult(NOT_CONVERTED, work.code, [*findings, found])
    return None


def _loop(work: _Work) -> SourceResult | None:
    from scaffold.migrate.analyse import Hints
    from scaffold.migrate.locate import has_hand_written_loop, innermost_training_loops
    from scaffold.migrate.loops import convert

    if not has_hand_written_loop(work.module):
        return None
    alias = work.hints.model.split(".")[0] if work.hints.model else None
    several = len(innermost_training_loops(work.module)) > 1
    if several and work.hints != Hints():
        return SourceResult(NOT_CONVERTED, work.code, [*work.findings, _several_with_hints(work)])
    found: list = []
    while True:
        # one loop per round (locate refuses loops that share an epoch loop); each round
        # analyses the script as the previous round left it
        before = len(innermost_training_loops(work.module))
        seen = work.module.code
        try:
            work.module, more = convert(work.module, work.engine, work.hints, work.tooling)
        except CannotConvert as err:
            finding = _original_positions([err.finding], seen, work.code, alias)[0]
            return SourceResult(NOT_CONVERTED, work.code, [*work.findings, finding])
        except LookupError:
            if not found:
                return None
            break
        found += _original_positions(more, seen, work.code, alias)
        left = len(innermost_training_loops(work.module))
        if not left or not several:
            break
        if left >= before:  # never expected: a round must take one loop over
            raise RuntimeError("a conversion round left the training loop in place")
    reseeded = _reseeds_each_epoch(work.module) if work.engine == "lightning" else None
    if reseeded is not None:
        finding = Finding(
            R.ENGINE_ORDER,
            MANUAL,
            f"the epoch loop reseeds the random generators (`{reseeded}`) before drawing its "
            "batches; Lightning draws the epoch's shuffle order in a different place relative to "
            "on_train_epoch_start, so the batches would differ. Migrate with the default "
            "`--engine runtime` (which keeps the script's order), or seed once before training",
        )
        return SourceResult(NOT_CONVERTED, work.code, [*work.findings, finding])
    work.findings += found
    work.converted = True
    return None


def _several_with_hints(work: _Work) -> Finding:
    return Finding(
        R.LOOP_NOT_FOUND_SHAPE,
        MANUAL,
        "more than one training loop, together with a hand-written trainer class or a "
        "distributed set-up the Trainer would take over: only files with one such loop are "
        "converted",
    )


def _reseeds_each_epoch(module) -> str | None:
    """A seeding call in the generated on_train_epoch_start, as code (None when there is none)."""
    import libcst as cst

    import scaffold.migrate.match as m

    for fn in m.findall(module, m.FunctionDef(name=m.Name("on_train_epoch_start"))):
        for call in m.findall(fn, m.Call()):
            name = cst.Module(body=[]).code_for_node(call.func)
            if name.split(".")[-1] in ("manual_seed", "seed", "seed_everything", "set_rng_state"):
                return name + "(...)"
    return None


def _restore_distributed(work: _Work) -> SourceResult | None:
    from scaffold.migrate.ddp import collectives_outside_hooks

    if work.undistributed is not None and not work.converted:
        # without a Trainer taking over, the process group and the DDP wrapper stay as written
        work.module, work.findings = work.undistributed
    dist = work.hints.dist if work.hints is not None else None
    if work.converted and dist is not None and dist.collective_helpers:
        caller = collectives_outside_hooks(work.module, dist.collective_helpers)
        if caller is not None:
            return SourceResult(
                NOT_CONVERTED,
                work.code,
                [
                    *work.findings,
                    Finding(
                        R.SPAWN,
                        MANUAL,
                        f"{', '.join(f'`{h}()`' for h in dist.collective_helpers)} "
                        "calls collectives (`dist.all_reduce`, ...) and is reached outside the "
                        f"training hooks (through `{caller}(...)`), where the Trainer has no "
                        "process group: keep such calls inside the training loop, or convert "
                        "by hand with Trainer(strategy='ddp', devices=N)",
                    ),
                ],
            )
    return None


def _result(work: _Work) -> SourceResult:
    from scaffold.migrate.imports import add_import
    from scaffold.migrate.syntax import FoldCommentHolders

    for line in work.imports:
        work.module = add_import(work.module, line)
    new_code = work.module.code
    # a comment line right above a `pass`: maybe a holder to fold (one more pass over the tree
    # only then; most migrations leave none)
    if new_code != work.code and re.search(r"#[^\n]*\n[ \t]*pass[ \t]*\n", new_code):
        work.module = work.module.visit(FoldCommentHolders())
        new_code = work.module.code
    if new_code == work.code:
        nothing = Finding(
            R.NOTHING_TO_DO, INFO, "no hand-written training loop (zero_grad/backward/step) found"
        )
        return SourceResult(UNCHANGED, work.code, [*work.findings, nothing, *_loops_beside(work)])
    problem = _check_output(work.code, new_code)
    if problem is not None:
        return SourceResult(NOT_CONVERTED, work.code, [problem])
    work.findings.sort(key=lambda f: (f.line, f.col))
    return SourceResult(MIGRATED, new_code, work.findings)


def _loops_beside(work: _Work) -> list[Finding]:
    """For a script without a loop of its own: the functions it calls from modules beside it
    that run one (``engine.train(...)`` of ``engine.py``), each reported where the script calls
    it, with the file to migrate instead."""
    import libcst as cst

    import scaffold.migrate.match as m
    from scaffold.migrate import helpers
    from scaffold.migrate.names import qualified

    found: list[Finding] = []
    seen: set[str] = set()
    with helpers.within(work.module):
        for call in m.findall(work.module, m.Call()):
            full = qualified(call) if isinstance(call.func, cst.Attribute | cst.Name) else None
            if full is None or "." not in full or full in seen:
                continue
            seen.add(full)  # each function looked up once, however often the script calls it
            located = helpers.located(call)
            if located is None or located[1] is work.module:
                continue
            fn, module = located
            if not _trains(fn, module):
                continue
            owner = full.rpartition(".")[0]
            path = owner.replace(".", "/") + ".py"
            spelled = cst.Module(body=[]).code_for_node(call.func) + "("
            line, col = _first_line(work.code, lambda t, spelled=spelled: spelled in t)
            found.append(
                Finding(
                    R.NOTHING_TO_DO,
                    INFO,
                    f"`{full}()` runs a training loop in {path}, a module beside this script: "
                    f"migrate that file (`scaffold migrate {path}`); its callers here are read "
                    "to tell which model the optimizer they pass trains",
                    line,
                    col,
                )
            )
    return found


def _trains(fn, module, depth: int = 0) -> bool:
    """Whether ``fn`` holds a loop that calls ``.backward()``, or calls a function of its
    module that does (two levels deep)."""
    import libcst as cst

    import scaffold.migrate.match as m
    from scaffold.migrate.locate import innermost_training_loops
    from scaffold.migrate.walk import walk

    loops = innermost_training_loops(module)
    if any(any(n is loop for n in walk(fn)) for loop in loops):
        return True
    if depth >= 2:
        return False
    defs = {s.name.value: s for s in module.body if isinstance(s, cst.FunctionDef)}
    called = {c.func.value for c in m.findall(fn, m.Call(func=m.Name()))}
    return any(_trains(defs[n], module, depth + 1) for n in called & set(defs) if defs[n] is not fn)


PASSES: tuple[Pass, ...] = (
    Pass("parse", _parse, "nothing can be analysed in a file that does not parse"),
    Pass("out-of-scope", _out_of_scope, "refuse before rewriting anything"),
    Pass(
        "lightning1",
        _lightning1,
        "1.x names become 2.x first: every later pass recognises the 2.x spellings only",
    ),
    Pass(
        "distributed",
        _distributed,
        "the process group, the DDP wrapper and `.module` go before the loop is located, so "
        "`model.module` and rank checks do not hide the model (undone by restore-distributed "
        "when the loop is not converted)",
    ),
    Pass(
        "trainer-class",
        _trainer_class,
        "a loop spread over a class's methods becomes one function the loop pass can see",
    ),
    Pass(
        "unroll-phases",
        _unroll_phases,
        'a `for phase in ["train", "val"]` loop around the batch loop is written out per '
        "phase, so the training phase is a batch loop the later passes can see; after "
        "trainer-class, whose methods may hold such a loop",
    ),
    Pass(
        "open-progress-blocks",
        _open_progress_blocks,
        "a `with tqdm(...) as bar:` block around the batch loop is written out, so the batch "
        "loop sits in the epoch loop's body; after unroll-phases, whose copies may hold one",
    ),
    Pass(
        "count-endless-loops",
        _count_endless_loops,
        "a `while True:` training loop becomes a `for` over `itertools.count()`, a batch loop "
        "the loop pass converts; after trainer-class, whose methods may hold one",
    ),
    Pass(
        "split-training-calls",
        _split_training_calls,
        "a training helper whose result an expression uses (`losses.append(train(e))`) is "
        "called on a statement of its own first, so step-helpers and the loop pass can follow "
        "its call; after trainer-class, which may make such helpers",
    ),
    Pass(
        "step-helpers",
        _step_helpers,
        "a per-batch helper holding backward/step is inlined so the batch loop holds them; "
        "after trainer-class, whose methods may be such helpers",
    ),
    Pass(
        "unreachable-training",
        _unreachable_training,
        "training code no pass could bring into a loop is reported, never passed over as "
        "'no loop found'",
    ),
    Pass("loop", _loop, "the conversion proper, on the script every earlier pass prepared"),
    Pass(
        "restore-distributed",
        _restore_distributed,
        "after loop: only a converted loop lets the Trainer take over the distributed set-up",
    ),
)


def migrate_source(
    code: str, engine: str = "runtime", tooling: bool = True, origin: Path | None = None
) -> SourceResult:
    """Migrates one script's text: the passes in ``PASSES`` order, then the safety net
    (``_check_output``). ``tooling``: keep the Trainer's logger and checkpointing (they do not
    change the numbers); False gives a bare Trainer. ``origin``: the file the text came from,
    whose folder holds the modules it imports helpers from (read, never imported)."""
    from libcst.metadata import MetadataWrapper

    from scaffold.migrate import names
    from scaffold.migrate.helpers import beside
    from scaffold.migrate.loops import Hints

    work = _Work(code, engine, tooling, hints=Hints())
    with contextlib.ExitStack() as stack:
        stack.enter_context(beside(origin))
        try:
            for step in PASSES:
                result = step.run(work)
                if result is not None:
                    return result
                if step.run is _parse:
                    # what the script's names resolve to, for every pass (a pass that needs node
                    # metadata of the module as it left it makes its own, see loops.convert)
                    # the passes walk the tree recursively: room for what Python compiles
                    stack.enter_context(_recursion_limit(20000))
                    wrapper = MetadataWrapper(work.module, unsafe_skip_copy=True)
                    stack.enter_context(names.using(wrapper))
            return _result(work)
        except RecursionError:
            return _too_deep(code)


@contextlib.contextmanager
def _recursion_limit(limit: int):
    import sys

    before = sys.getrecursionlimit()
    sys.setrecursionlimit(max(before, limit))
    try:
        yield
    finally:
        sys.setrecursionlimit(before)


def _too_deep(code: str) -> SourceResult:
    message = (
        "an expression nests too deeply for the converter (e.g. a chain of thousands of `+`); "
        "left as written"
    )
    return SourceResult(NOT_CONVERTED, code, [Finding(R.TOO_DEEP, MANUAL, message)])


def _accumulation_loop(module, positions) -> Finding | None:
    """backward() in an inner loop, the step in the loop around it: reported (``--check``
    flags it), never passed over as "no loop found"."""
    from scaffold.migrate.locate import accumulation_loops

    found = accumulation_loops(module)
    if not found:
        return None
    inner, outer = found[0]
    where, outer_line = positions()[inner].start, positions()[outer].start.line
    return Finding(
        R.ACCUMULATION_LOOP,
        MANUAL,
        "backward() runs in this inner loop and the optimizer steps in the loop around it "
        f"(line {outer_line}): gradients accumulated over micro-batches; not converted. "
        "Convert by hand: one micro-batch per training_step with "
        "Trainer(accumulate_grad_batches=<micro-batches per step>)",
        where.line,
        where.column + 1,
    )


def _custom_step_loop(module, positions) -> Finding | None:
    """backward() in a loop whose optimizer moves through a method other than ``step()``."""
    from scaffold.migrate.locate import custom_step_loops

    found = custom_step_loops(module)
    if not found:
        return None
    loop, call = found[0]
    where = positions()[loop].start
    return Finding(
        R.CUSTOM_STEP,
        MANUAL,
        f"this loop trains (backward()) and updates the parameters through `{call}`, not an "
        "optimizer's `step()`; not converted. Convert by hand (manual optimization: "
        "`self.automatic_optimization = False` and the same calls in training_step)",
        where.line,
        where.column + 1,
    )


def _flat_while_loop(module, positions, code: str) -> Finding | None:
    """A ``while`` loop that trains on batches it draws itself: reported (``--check`` flags it),
    never passed over as "no loop found"."""
    from scaffold.migrate.locate import flat_while_training

    if "while" not in code:
        return None
    loops = flat_while_training(module)
    if not loops:
        return None
    from scaffold.migrate.whiles import why_kept

    pos = positions()[loops[0]].start
    return Finding(
        R.FLAT_WHILE,
        MANUAL,
        "this `while` loop trains (backward() and an optimizer step) on batches it draws "
        f"itself, and {why_kept(loops[0])}; not converted. Iterate over a DataLoader (`for "
        "batch in loader:` inside an epoch loop) and migrate again, or write the "
        "LightningModule by hand",
        pos.line,
        pos.column + 1,
    )


def _original_positions(
    findings: list[Finding], seen: str, original: str, alias: str | None
) -> list[Finding]:
    """Findings located in ``seen`` (the script after earlier passes inlined methods or helpers,
    or removed distributed code) moved to the same statement's line in the user's file."""
    if seen == original:
        return findings
    from dataclasses import replace

    seen_lines, orig_lines = seen.splitlines(), original.splitlines()

    def norm(line: str) -> str:
        line = line.strip()
        return line.replace(f"{alias}.", "self.") if alias else line

    where: dict[str, list[int]] = {}
    for number, line in enumerate(orig_lines, 1):
        if line.strip():
            where.setdefault(norm(line), []).append(number)
    # lines an earlier pass (or an earlier loop's conversion) left alone map one to one; the
    # others to the first line of the same text
    same = difflib.SequenceMatcher(
        None, [norm(x) for x in seen_lines], [norm(x) for x in orig_lines], autojunk=False
    )
    aligned = {a + k: b + k + 1 for a, b, size in same.get_matching_blocks() for k in range(size)}
    out = []
    for f in findings:
        if not 1 <= f.line <= len(seen_lines):
            out.append(f)
            continue
        text = seen_lines[f.line - 1]
        hits = [aligned[f.line - 1]] if f.line - 1 in aligned else where.get(norm(text))
        if not hits:
            out.append(f)
            continue
        target = orig_lines[hits[0] - 1]
        shift = (len(target) - len(target.lstrip())) - (len(text) - len(text.lstrip()))
        message = f.message.replace(f"`{alias}.", "`self.") if alias else f.message
        out.append(replace(f, line=hits[0], col=max(1, f.col + shift), message=message))
    return out


def _check_output(before: str, after: str) -> Finding | None:
    """The safety net: never emit code that does not compile, drops a comment, or would be
    migrated again."""
    import libcst as cst

    from scaffold.migrate.locate import has_hand_written_loop

    try:
        compile(after, "<migrated>", "exec")
        again = cst.parse_module(after)
    except SyntaxError as err:  # pragma: no cover - a bug in a codemod
        return Finding(
            R.OUTPUT_INVALID,
            MANUAL,
            f"internal error: the converted code does not compile ({err}); "
            "left unchanged, please report it",
        )
    lost = comments(before) - comments(after)
    if lost:
        shown = ", ".join(sorted(lost))[:200]
        return Finding(
            R.COMMENTS_LOST,
            MANUAL,
            f"converting would drop comments ({shown}); left unchanged, please report it",
        )
    if has_hand_written_loop(again):
        return Finding(
            R.LOOP_REMAINS,
            MANUAL,
            "a hand-written loop would remain after conversion; left unchanged",
        )
    return None


__all__ = ["FIXED", "migrate_source", "SourceResult"]
