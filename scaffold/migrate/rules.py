"""Every rule code ``scaffold migrate`` reports, in one place.

A finding is ``path:line:col: CODE [status] message``; the code says *which* rule produced it
(stable: users and CI grep for it), the message says what is true for that file. Each rule below
documents what it covers and what it does not; ``scaffold migrate --explain CODE`` prints it.

Ranges: ``SCF0xx`` a conversion that was made, ``SCF1xx`` information, ``SCF2xx`` Lightning 1.x
-> 2.x upgrades, ``SCF3xx`` a loop left as written (exit 3 when it is *the* loop), ``SCF8xx`` the
file itself could not be read or written (exit 1), ``SCF9xx`` the script is out of scope (refused).

The modules never spell a code: they import the rule (``from scaffold.migrate import rules as
R``; ``R.MODEL_UNKNOWN``). A rule is a ``str`` equal to its code, so findings, reports and
JSON carry the plain code.
"""

from __future__ import annotations

import inspect


class Rule(str):
    """A rule code (``"SCF311"``) carrying its one-line summary and its documentation."""

    summary: str
    doc: str

    def __new__(cls, code: str, summary: str, doc: str) -> Rule:
        rule = super().__new__(cls, code)
        rule.summary = summary
        rule.doc = inspect.cleandoc(doc)
        return rule

    @property
    def code(self) -> str:
        return str(self)

    def explain(self) -> str:
        return f"{self.code}: {self.summary}\n\n{self.doc}\n"


REGISTRY: dict[str, Rule] = {}


def _rule(code: str, summary: str, doc: str) -> Rule:
    if code in REGISTRY:  # pragma: no cover - a registry bug
        raise ValueError(f"rule {code} registered twice")
    REGISTRY[code] = rule = Rule(code, summary, doc)
    return rule


def lookup(code: str) -> Rule | None:
    return REGISTRY.get(code.strip().upper())


# --------------------------------------------------------------------------------- SCF0xx: done
SYNTAX_ERROR = _rule(
    "SCF000",
    "the file does not parse",
    """
    Covers: a file Python (or libcst) cannot parse; it is left untouched and the run exits 1.
    Not covered: files that parse but fail at import time; those are migrated like any other.
""",
)
LOOP_CONVERTED = _rule(
    "SCF001",
    "training loop converted to a LightningModule + Trainer.fit",
    """
    Covers: one hand-written loop (zero_grad / backward / optimizer.step over a loader, inside an
    epoch loop or alone, at module level, in a function, or in a `train()` helper called once per
    epoch) replaced by a `LitModel` class and `trainer.fit(...)` in the same place.
    Not covered: several independent training loops in one file (the first is converted; run
    migrate again for the next), loops whose update the converter cannot prove equivalent (an
    SCF3xx finding says why).
""",
)
OPTIMIZATION_REMOVED = _rule(
    "SCF002",
    "zero_grad/backward/step removed (automatic optimization)",
    """
    Covers: the textbook `zero_grad(); loss.backward(); opt.step()` sequence (in any order that
    computes the same update) run by the Trainer; `training_step` returns the loss.
    Not covered: statements between backward and step, several backward calls, conditional
    steps: these go to manual optimization (SCF011), which keeps the script's order.
""",
)
BATCH_TRANSFER_REMOVED = _rule(
    "SCF003",
    "batch transfer to the device removed",
    """
    Covers: `x = x.to(device)` / `.cuda()` on the batch's own tensors; the Trainer moves each
    batch to the module's device before `training_step`.
    Not covered: transfers of other tensors (they stay as written).
""",
)
GRADIENT_CLIPPING = _rule(
    "SCF004",
    "gradient clipping mapped to Trainer(gradient_clip_*)",
    """
    Covers: an unconditional `clip_grad_norm_` / `clip_grad_value_` over the model's parameters
    between backward and step.
    Not covered: conditional clipping or clipping of a subset of parameters (manual optimization
    keeps it as written).
""",
)
SCHEDULER_MOVED = _rule(
    "SCF005",
    "learning-rate scheduler moved to configure_optimizers",
    """
    Covers: one scheduler stepped without arguments once per batch (interval="step") or once per
    epoch (interval="epoch") that nothing else reads.
    Not covered: several schedulers, schedulers read by other code, `step(metric)`: the calls stay
    where they were.
""",
)
BREAK_MAPPED = _rule(
    "SCF006",
    "`break` mapped to ending the epoch / stopping the Trainer",
    """
    Covers: a `break` in the last statement of the batch loop (on_train_batch_start returns -1)
    or of the epoch loop (trainer.should_stop), and `if <test>: break` as the first statement
    of the epoch loop (on_train_epoch_start stops the Trainer before that epoch iterates its
    loader, and that epoch's end hook returns at once; runtime engine only, not with a
    validated loop or a scheduler stepped per epoch).
    Not covered: `break` elsewhere (SCF318).
""",
)
EPOCH_LOOP_MAPPED = _rule(
    "SCF007",
    "epoch loop mapped to Trainer(max_epochs=...)",
    """
    Covers: `for epoch in range(...)`, `enumerate(range(...))`, and `while <condition>` (checked
    at each epoch's end, max_epochs=-1); the epoch variable is recomputed from current_epoch.
    Not covered: other iterables (SCF314), `for/while ... else` (SCF315).
""",
)
PRECISION_MAPPED = _rule(
    "SCF008",
    "autocast / GradScaler mapped to Trainer(precision=...)",
    """
    Covers: `with torch.autocast(...)` / `torch.cuda.amp.autocast()` around the forward pass and
    the GradScaler scale/step/update calls.
    Not covered: autocast without a dtype on an unknown device (SCF324).
""",
)
ACCUMULATION_MAPPED = _rule(
    "SCF009",
    "gradient accumulation mapped to accumulate_grad_batches",
    """
    Covers: `if (i + 1) % k == 0: step; zero_grad` with the loss divided by k.
    Not covered: accumulation whose period is not a fixed expression.
""",
)
VERIFIED = _rule(
    "SCF010",
    "migration verified by running both scripts",
    """
    Covers: `--verify`: the original and the migrated script ran and printed the same numbers.
    Not covered: scripts that need data or devices this machine lacks.
""",
)
MANUAL_OPTIMIZATION = _rule(
    "SCF011",
    "manual optimization keeps the script's update order",
    """
    Covers: GAN-style loops (several optimizers, steps under conditions), statements between
    backward and step, model or gradients touched after the step: `automatic_optimization =
    False`, `self.manual_backward(loss)`, the script's own order kept.
    Not covered: schedulers (they stay the script's business), `step(closure)` (SCF305).
""",
)
HANDWRITTEN_UPDATE = _rule(
    "SCF012",
    "hand-written parameter update wrapped as an optimizer",
    """
    Covers: `with torch.no_grad(): for p in model.parameters(): p -= lr * p.grad` style updates,
    wrapped as a small Optimizer subclass that the Trainer steps.
    Not covered: updates that read other state than the parameters and their gradients.
""",
)
STEP_HELPER_INLINED = _rule(
    "SCF013",
    "per-batch helper inlined into the training loop",
    """
    Covers: a function called once per batch that holds backward and step (`train_step(x, y)`).
    Not covered: helpers with several call sites or *args/**kwargs.
""",
)
LOSS_LOGGED = _rule(
    "SCF014",
    "training loss logged with self.log('train_loss')",
    """
    Covers: the loss `training_step` returns, logged for the progress bar, callbacks and loggers.
    Not covered: manual optimization (the script's own prints are kept).
""",
)
VALIDATION_HOOKS = _rule(
    "SCF015",
    "evaluation -> validation_step and the validation epoch hooks",
    """
    Covers: a `no_grad` evaluation helper called right after each epoch's training, or an
    evaluation loop written inline in the epoch loop.
    Not covered: evaluation in the middle of the batch loop, helpers with several call sites.
""",
)
TRAINER_CLASS_FLATTENED = _rule(
    "SCF016",
    "hand-written trainer class flattened",
    """
    Covers: a class whose method runs the epoch loop, calling the class's own per-epoch/per-batch
    methods: they are inlined into that method (the object read as its alias) before conversion.
    Not covered: classes whose loop spans several methods in other ways (SCF326).
""",
)
DISTRIBUTED_MAPPED = _rule(
    "SCF017",
    "distributed boilerplate mapped to Trainer(strategy='ddp')",
    """
    Covers: mp.spawn / torchrun, init/destroy_process_group, MASTER_ADDR/PORT, the DDP wrapper
    and `.module`, rank queries; the script's DistributedSampler is kept.
    Not covered: other collectives (all_reduce, broadcast...) and several spawn calls (SCF328);
    nothing is removed when the loop itself is not converted.
""",
)
TEST_HOOKS = _rule(
    "SCF018",
    "final evaluation -> test_step + trainer.test",
    """
    Covers: an evaluation helper called once after training.
    Not covered: helpers that also run during training with other arguments.
""",
)
EARLY_STOPPING = _rule(
    "SCF019",
    "early-stopping counter -> EarlyStopping callback",
    """
    Covers: best value + epochs-without-improvement counter + `break` at the patience.
    Not covered: other shapes: the counter stays and stops the Trainer as the `break` did.
""",
)
CONSTRUCTION_MOVED = _rule(
    "SCF020",
    "optimizer/scheduler construction -> configure_optimizers",
    """
    Covers: the construction statements, when nothing else reads the objects and nothing they are
    built from changes between construction and the loop.
    Not covered: anything else: the objects are handed to the module unchanged.
""",
)
METRICS_LOGGED = _rule(
    "SCF021",
    "printed evaluation metrics logged with self.log",
    """
    Covers: values the validation/test epoch-end hook prints with a numeric format (`{x:.4f}`,
    `"{:.2f}".format(x)`, `"%.3f" % x`), when they are a variable or attribute: logged as
    `val_<name>` / `test_<name>` right after the print (the print stays).
    Not covered: values printed without a numeric format (their type is not known), expressions,
    prints inside loops or branches, training-epoch prints.
""",
)
EACH_EPOCH_ITERABLE = _rule(
    "SCF022",
    "batch iterable made anew each epoch (EachEpoch)",
    """
    Covers: a batch loop header inside an epoch loop whose iterable may be a one-shot iterator
    (a generator function's call, `zip(...)`, `enumerate(...)` inside a progress bar, `map`,
    any call other than a container or a `DataLoader(...)`): the Trainer gets
    `EachEpoch(lambda: <iterable>)`, which makes it again at every epoch as the header did.
    Not covered: iterables that read variables the epoch loop changes (SCF331).
""",
)
TRAINING_CALL_SPLIT = _rule(
    "SCF023",
    "a training helper's call split out of the expression using its result",
    """
    Covers: `losses.append(train(epoch))`, `print(train(epoch))`, `total += train()`: the call
    becomes `train_result = train(epoch)` on a line of its own, before the statement that uses
    the result (what the statement reads before the call must be pure and untouched by the
    helper's `global` names, so the order does not matter).
    Not covered: calls that run conditionally or repeatedly (`a and train()`, inside a
    comprehension or a lambda).
""",
)
PROGRESS_BLOCK_OPENED = _rule(
    "SCF025",
    "a `with tqdm(...) as bar:` block around the batch loop written out",
    """
    Covers: a tqdm bar (`tqdm`, `trange`, from `tqdm`, `tqdm.auto`, ...) entered with `with`
    around a loop that calls backward: it becomes `bar = tqdm(...)`, the block's statements, then
    `bar.close()` (what leaving the block does), so the batch loop sits in the epoch loop where
    the loop pass sees it. The bar touches no tensor and draws no random numbers.
    Not covered: a `with` holding other context managers besides the bar, or a block that can
    leave early (`break`/`continue` of an enclosing loop, `return`, `yield`).
""",
)
RETURN_MAPPED = _rule(
    "SCF027",
    "`return` in the batch loop mapped to stopping the Trainer and returning after fit",
    """
    Covers: `return [value]` in the batch loop of the function holding the whole training loop
    (early stopping by steps, `if step >= max_steps: return model`), as the last thing its
    iteration runs: the module keeps `(value,)` as evaluated there, sets
    `trainer.should_stop`, ends the epoch without drawing another batch, skips the rest of that
    epoch (on_train_epoch_end returns first), and the function returns the value after fit.
    Not covered (SCF319): a return in a per-epoch helper (`train(epoch)`, it ends that epoch
    only), in a loop that is also validated or has a scheduler stepped per epoch (the Trainer
    would run those once more when stopping), in a loop nested in the batch loop (SCF310), or
    before the optimizer step (SCF318).
""",
)
ENDLESS_LOOP_COUNTED = _rule(
    "SCF026",
    "an endless `while True:` training loop written as `for _ in itertools.count():`",
    """
    Covers: a `while True:` (or `while 1:`) loop that draws its own batches and trains until a
    `break` (step-counted scripts such as makemore): the two headers run the body the same
    number of times, and the loop pass then converts a batch loop over an endless iterable whose
    `break` ends the Trainer's one epoch where the script stopped. A `while step < max_steps:`
    loop becomes `if step < max_steps: for _ in itertools.count(): ...; if not (step <
    max_steps): break`: the test runs as often, and at the same points, as `while` ran it.
    Not covered: a tested `while` whose body has a `continue` of its own (it would skip the
    test at the end of the pass), or a `while` with an `else:` block (SCF330).
""",
)
PHASE_LOOP_UNROLLED = _rule(
    "SCF024",
    'a `for phase in ["train", "val"]` loop written out, one copy per phase',
    """
    Covers: a loop over a literal list (or a variable bound once to one) of phase names around
    a training batch loop, whose body switches on the phase (`if phase == "train"`,
    `dataloaders[phase]`, `torch.set_grad_enabled(phase == "train")`): the body is written out
    once per phase, each copy folded for its phase, so the training phase becomes a batch loop
    and the evaluation phase an evaluation loop; `phase = "..."` stays ahead of a copy that
    still reads it.
    Not covered: a phase loop with `break`/`continue` of its own or an `else:`, a body that
    rebinds the phase variable, phases that are not string literals (an enum, a parameter).
""",
)
NOTHING_TO_DO = _rule(
    "SCF100",
    "no hand-written training loop found",
    """
    Covers: files without zero_grad/backward/step; nothing is written. A script that calls a
    function of a module beside it that runs a training loop (`engine.train(...)`) gets a
    second SCF100 at that call, naming the module to migrate instead.
""",
)

# ------------------------------------------------------------------ SCF2xx: Lightning 1.x -> 2.x
L1_IMPORTS = _rule(
    "SCF201",
    "pytorch_lightning imports -> lightning / runtime",
    """
    Covers: `import pytorch_lightning as pl`, `from pytorch_lightning... import`.
    Not covered: `import pytorch_lightning` without an alias when the engine changes (SCF211).
""",
)
L1_GPUS = _rule(
    "SCF202",
    "Trainer(gpus=/tpu_cores=) -> accelerator + devices",
    """
    Covers: integer, list and string values of `gpus` and `tpu_cores`.
""",
)
L1_PRECISION = _rule(
    "SCF203",
    "precision=16/32/64/'bf16' -> '16-mixed' etc.",
    """
    Covers: the 1.x precision spellings.
""",
)
L1_TRAINER_FLAGS = _rule(
    "SCF204",
    "renamed Trainer flags",
    """
    Covers: progress_bar_refresh_rate, weights_summary, checkpoint_callback, replace_sampler_ddp.
""",
)
L1_STRATEGY = _rule(
    "SCF205",
    "accelerator='ddp' / distributed_backend -> strategy",
    """
    Covers: the 1.x ways of naming a distributed strategy.
""",
)
L1_RESUME = _rule(
    "SCF206",
    "resume_from_checkpoint -> fit(ckpt_path=...)",
    """
    Covers: a Trainer built and fitted in the same scope.
    Not covered: a Trainer passed elsewhere before fit (reported, to do by hand).
""",
)
L1_REMOVED_FLAG = _rule(
    "SCF207",
    "a Trainer flag removed in 2.0",
    """
    Covers: flags with no replacement; the finding says what to do instead.
""",
)
L1_EPOCH_END_MANUAL = _rule(
    "SCF208",
    "`*_epoch_end(outputs)` that needs a hand edit",
    """
    Covers: epoch-end hooks without a matching step or with several dataloaders.
""",
)
L1_EPOCH_END = _rule(
    "SCF209",
    "`*_epoch_end(outputs)` -> on_*_epoch_end with collected outputs",
    """
    Covers: the step's outputs collected in a list attribute and read by the new hook.
""",
)
L1_ENGINE = _rule(
    "SCF211",
    "a Lightning 1.x name with no runtime equivalent",
    """
    Covers: imports the runtime engine does not provide; use --engine lightning.
""",
)
L1_METRICS = _rule(
    "SCF212",
    "pytorch_lightning.metrics -> torchmetrics",
    """
    Covers: metric classes whose task is implied; classification metrics need task=... by hand.
""",
)
L1_RENAMED_ARGUMENT = _rule(
    "SCF213",
    "renamed keyword arguments",
    """
    Covers: e.g. `fit(train_dataloader=)` -> `train_dataloaders=`.
""",
)
L1_ARGPARSE = _rule(
    "SCF214",
    "Trainer.from_argparse_args / add_argparse_args removed",
    """
    Covers: reported with the replacement (your own arguments or LightningCLI).
""",
)
L1_CHECKPOINT = _rule(
    "SCF215",
    "ModelCheckpoint(filepath=/period=/prefix=)",
    """
    Covers: period -> every_n_epochs, filepath -> dirpath + filename; prefix reported.
""",
)
L1_HPARAMS = _rule(
    "SCF216",
    "`self.hparams = ...` -> save_hyperparameters(...)",
    """
    Covers: assignment of a dict or Namespace to self.hparams.
""",
)
L1_REMOVED_HOOK = _rule(
    "SCF217",
    "a hook removed in 2.0",
    """
    Covers: on_epoch_end/on_batch_end etc.: renamed when unambiguous, reported otherwise.
""",
)

# ------------------------------------------------------------ SCF3xx: left as written (manual)
LOOP_NOT_FOUND_SHAPE = _rule(
    "SCF301",
    "training loop shape not recognised",
    """
    Covers: backward/step found, but not inside a `for batch in loader` loop this tool converts.
""",
)
NESTED_TOO_DEEP = _rule(
    "SCF302",
    "the batch loop is nested in more than an epoch loop",
    """
    Covers: loops over folds, models or hyper-parameters around the epoch loop; convert by hand
    or move the inner part into a function.
""",
)
UPDATE_ORDER = _rule(
    "SCF303",
    "update statements in an order that cannot be reproduced",
    """
    Covers: zero_grad/backward/step sequences that automatic or manual optimization would run in
    a different order.
""",
)
BACKWARD_ARGUMENTS = _rule(
    "SCF304",
    "backward() with arguments",
    """
    Covers: `loss.backward(retain_graph=True)`, gradients passed explicitly.
""",
)
STEP_CLOSURE = _rule(
    "SCF305",
    "optimizer.step(closure) or step used inside an expression",
    """
    Covers: LBFGS-style closures that are not the textbook shape, `loss = opt.step(closure)`.
""",
)
STEP_BEFORE_BACKWARD = _rule(
    "SCF306",
    "optimizer step before backward()",
    """
    Covers: a step whose update would move relative to backward.
""",
)
OPTIMIZER_EXPRESSION = _rule(
    "SCF307",
    "the optimizer is not a plain variable",
    """
    Covers: `optimizers[k].step()`, `self.opts["g"].step()`.
""",
)
UNKNOWN_IN_STEP = _rule(
    "SCF308",
    "a statement in the step sequence this tool cannot place",
    """
    Covers: calls between zero_grad and step that are neither the forward pass nor logging.
""",
)
NO_STEP = _rule(
    "SCF309",
    "no optimizer.step() statement in the batch loop",
    """
    Covers: loops with backward but no step the converter can see.
""",
)
UNSUPPORTED_UPDATE = _rule(
    "SCF310",
    "an update the Trainer cannot run",
    """
    Covers: e.g. several backward calls feeding one step with intervening reads.
""",
)
MODEL_UNKNOWN = _rule(
    "SCF311",
    "cannot tell which model the optimizer trains",
    """
    Covers: optimizers built from a variable or expression that does not lead back to
    `<model>.parameters()` in the same scope; branches that build it from different models (or
    load it); an optimizer built anew every epoch; a helper's optimizer parameter whose caller
    cannot be followed; an optimizer over the script's own tensors (`SGD([w, b])`) where a
    tensor is bound more than once, declared `global` by a function, or not made to require
    grad where it is bound (the message says which).
    Not covered (converted): `SGD([w, b])`, `Adam(params)` with `params = [W1, b1] + [W2]`
    over tensors bound once to `requires_grad=True`/`.requires_grad_()`/`nn.Parameter(...)`
    (or a script helper returning one): the module holds no model and its optimizer trains
    those very tensors, which the script's functions keep reading. Under manual optimization,
    an optimizer that may be None (`x if fine_tune else None`, or bound to None and tested
    against None in the loop): `configure_optimizers` hands over those that are not None and
    the training step gets None for the others, as the script had them. A function of a
    module that the file never calls (`engine.py`'s `train(model, ..., optimizer)`): the
    modules beside it (same folder) that import it are read, and when each of their calls
    passes an optimizer built on the model it passes, the function converts; without such a
    caller, or with callers that disagree, it stays refused.
""",
)
CALL_ARGUMENTS = _rule(
    "SCF312",
    "the train() helper's arguments cannot be bound",
    """
    Covers: *args/**kwargs, parameters without a value at the call.
""",
)
SCHEDULER_SHARED = _rule(
    "SCF313",
    "a per-batch scheduler that other code reads",
    """
    Covers: schedulers whose state the script reads (get_last_lr, printing).
""",
)
EPOCH_ITERABLE = _rule(
    "SCF314",
    "the epoch loop does not iterate over range(...)",
    """
    Covers: epoch loops over lists, zips, tqdm(range) with a non-plain target.
""",
)
LOOP_ELSE = _rule(
    "SCF315",
    "`for/while ... else` on the training loops",
    """
    Covers: an else clause whose meaning a Trainer cannot keep.
""",
)
EARLY_CONTROL_FLOW = _rule(
    "SCF316",
    "`break`/`continue` outside the places the Trainer maps",
    """
    Covers: `break`/`continue` before the batch loop other than a leading `if <test>: break`
    (SCF006), that one under `--engine lightning` or in a validated loop or with a scheduler
    stepped per epoch, and `continue` in the epoch loop.
""",
)
STATE_CONFLICT = _rule(
    "SCF317",
    "variables shared by the epoch loop and the train() helper",
    """
    Covers: names both scopes write, which one attribute cannot represent.
""",
)
BREAK_POSITION = _rule(
    "SCF318",
    "`break` not in the loop's last statement",
    """
    Covers: breaks whose following statements would still run in a hook.
""",
)
EARLY_RETURN = _rule(
    "SCF319",
    "the train() helper returns early or returns nothing used",
    """
    Covers: `return` in a nested block, `x = train()` without `return <value>`, and a `return`
    in the batch loop that SCF027 does not map (a per-epoch helper, a validated loop, a
    scheduler stepped per epoch).
""",
)
LOOP_TARGET = _rule(
    "SCF320",
    "`enumerate` loop target is not `index, batch`",
    """
    Covers: nested unpacking in the enumerate target.
""",
)
LIST_OF_BATCHES = _rule(
    "SCF322",
    "the loader is a Python list of batches",
    """
    Covers: loops over lists/tuples; wrap the data in a Dataset/DataLoader first.
""",
)
VERIFY_FAILED = _rule(
    "SCF323",
    "--verify: the migrated script computes something else",
    """
    Covers: a difference found by running both; nothing is written.
""",
)
PRECISION_UNKNOWN = _rule(
    "SCF324",
    "autocast without a dtype on an unknown device",
    """
    Covers: the precision cannot be told; pass dtype=torch.float16 or torch.bfloat16.
""",
)
SCALER_SHAPE = _rule(
    "SCF325",
    "GradScaler used in a shape this tool does not map",
    """
    Covers: scaler calls outside the scale/step/update sequence.
""",
)
TRAINER_CLASS = _rule(
    "SCF326",
    "a hand-written trainer class that cannot be flattened",
    """
    Covers: classes whose methods run the training step, when no single method runs the loop.
""",
)
STEP_FUNCTION = _rule(
    "SCF327",
    "a function takes optimizer steps outside a convertible loop",
    """
    Covers: functions never called, called from several places, or called inside an expression;
    the message says which, with the lines.
""",
)
SPAWN = _rule(
    "SCF328",
    "distributed set-up that cannot be mapped",
    """
    Covers: several spawn calls, collectives other than the rank/world queries, process groups
    laid out from SLURM variables (a multi-node launch: Trainer(num_nodes=...) by hand).
""",
)
FLAT_WHILE = _rule(
    "SCF330",
    "a `while` loop that draws its own batches",
    """
    Covers: `while` loops drawing their own batches that SCF026 cannot rewrite: a `while`
    with an `else:` block, or a tested `while` whose body has a `continue` of its own; iterate
    over a DataLoader inside an epoch loop and migrate again.
""",
)
LOADER_PER_EPOCH = _rule(
    "SCF331",
    "the loader is rebuilt every epoch",
    """
    Covers: a loop header reading names the epoch loop changes (`for b in loaders[epoch]`), a
    loader the epoch makes in a block or more than once, and, with `--engine lightning`, any
    loader the epoch makes (Lightning draws the first epoch's first batch before
    on_train_epoch_start).
    Not covered (converted): a progress-bar wrapper (tqdm) of a loader built once; with the
    runtime engine, a loader the epoch loop makes with one assignment before the batch loop
    (`loader = make_loader(...)`): on_train_epoch_start makes it and the Trainer iterates
    over the module's attribute, drawn when the epoch's first batch is.
""",
)
ACCUMULATION_LOOP = _rule(
    "SCF332",
    "backward() in an inner loop, the optimizer step in an enclosing one",
    """
    Covers: gradient accumulation over micro-batches written as a nested loop that the
    converter cannot take over: the inner loop calling backward() sits in a block (an `if`, a
    `with`) of the loop that steps, or that loop is a `while` with a real test, or several
    inner loops call backward(). Reported so that `--check` flags it; convert by hand with
    `Trainer(accumulate_grad_batches=k)`.
    Not covered: the inner loop directly in the body of a `for` (or `while True:`) loop that
    steps, as in nanoGPT: that loop is converted, one training_step per optimizer step, with
    manual optimization keeping the inner loop as written (SCF011); accumulation written as
    `if (i + 1) % k == 0: optimizer.step()` inside the batch loop (SCF009).
""",
)
ENGINE_ORDER = _rule(
    "SCF334",
    "epoch-start code that only the runtime engine keeps in order",
    """
    Covers: `--engine lightning` with a call in the epoch loop before the batch loop that may
    draw random numbers or change the batches (`torch.manual_seed(...)`, `noise =
    torch.randn(1)`, a helper of the script): Lightning iterates the train loader at set-up,
    before the first epoch's on_train_epoch_start (a DataLoader's iterator draws its seed from
    torch's generator there; an iterable without a length yields its first batch), so the first
    epoch would see other numbers. The default engine keeps the script's order.
    Not covered: `print`, `len`, `range`, `time.*`, `model.train()`/`.eval()` there.
""",
)
CUSTOM_STEP = _rule(
    "SCF333",
    "the optimizer is stepped through a method other than step()",
    """
    Covers: loops that call backward() and update through a method other than `step()` of an
    object that is not a `torch.optim.Optimizer` subclass (`step_and_update_lr()` of a
    scheduled-optimizer wrapper, or a class the tool cannot read), with no `step()` call:
    reported so that `--check` flags them; convert by hand with manual optimization. Also an
    optimizer class of the script whose `step()` takes no closure: the Trainer steps every
    optimizer with `step(closure=...)`.
    Not covered (converted): a script's optimizer class whose `step(closure=None)` never runs
    the closure (manual optimization: the training step computes the gradients itself); `optimizer.first_step()` / `second_step()` where `optimizer` is
    bound once to a class subclassing `torch.optim.Optimizer` (SAM), defined in the script, in a
    module beside it or in a folder the script adds to `sys.path`: manual optimization keeps the
    calls on the Trainer's wrapper of that optimizer; `scheduler.step()`-style calls next to a
    real `optimizer.step()`.
""",
)
TOO_DEEP = _rule(
    "SCF396",
    "an expression nests deeper than the converter follows",
    """
    Covers: generated or hand-unrolled code (a `+` chain of thousands of terms) that exhausts the
    converter's recursion: the file is left as written, the rest of a folder run goes on.
""",
)
LOOP_REMAINS = _rule(
    "SCF397",
    "a hand-written loop would remain after conversion",
    """
    Covers: the safety net: nothing is written.
""",
)
OUTPUT_INVALID = _rule(
    "SCF398",
    "internal error: the converted code does not compile",
    """
    Covers: the safety net: nothing is written; please report it.
""",
)
COMMENTS_LOST = _rule(
    "SCF399",
    "converting would drop comments",
    """
    Covers: the safety net: every comment of the input must be in the output.
""",
)

# ------------------------------------------------------------------------- SCF8xx: the file
FILE_ERROR = _rule(
    "SCF800",
    "the file could not be read or written",
    """
    Covers: a file that is not UTF-8 text, a broken symbolic link, a read-only script, a folder
    that cannot be written, a `FILE.orig` that holds something else: that file is left exactly as
    it was (no `.orig`, no temporary file), the run goes on with the other files and exits 1.
""",
)

# ---------------------------------------------------------------------- SCF9xx: out of scope
OUT_OF_SCOPE = _rule(
    "SCF901",
    "the script is out of scope",
    """
    Covers: RPC, tensor parallelism, reinforcement-learning environments, Hogwild training,
    Horovod, scripts already on Accelerate/Fabric.
""",
)
TRAINING_IN_MODULE = _rule(
    "SCF902",
    "training happens inside an nn.Module's method",
    """
    Covers: forward-forward style models that step their own optimizers.
""",
)
