"""``fit``'s loops: the sanity check, epochs, the batches of one epoch, when validation runs
inside ``fit``, and the end of an epoch (metrics, monitoring callbacks, plateau schedulers).

A train loader is iterated exactly like ``for batch in loader:`` (to exhaustion, no prefetch),
so a script moved onto the runtime consumes data and random numbers in the order its
hand-written loop did. Validation that Lightning runs inside the last batch therefore runs
right after the loader is exhausted; hooks see the same order.
"""

from __future__ import annotations

import math
import time
from typing import Any

from runtime.checkpoint import (
    _loader_gen_states,
    _set_rng,
    restore_training_state,
)
from runtime.data import parts
from runtime.loops.dispatch import (
    SKIP_EPOCH,
    _publish_epoch,
    _send_to_loggers,
    call_both,
    call_cb,
    call_lm,
    profiled,
)
from runtime.loops.evaluation import EvaluationLoop
from runtime.loops.optimization import step_plateau_epoch, step_schedulers, train_batch
from runtime.loops.progress import (
    _READY_COMPLETED,
    BatchProgress,
    Progress,
    _AutomaticOptimization,
    _ManualOptimization,
    steps_optimizer,
)
from runtime.rank_zero import PossibleUserWarning, rank_zero_info, rank_zero_warn
from runtime.results import Results
from runtime.seed import collect_rng_states, isolate_rng


def resolve_limits(t: Any) -> None:
    """At the start of ``fit``, as Lightning: ``max_epochs=None`` becomes 1000 (with a warning)
    unless ``max_steps``/``max_time`` bound the run (then unbounded, -1); ``min_epochs=None``
    becomes 1 with ``min_steps``, else 0."""
    loop = t.fit_loop
    if loop.max_epochs is None:
        loop.max_epochs = loop.resolved_max_epochs(t.max_time)
        if loop.max_epochs == 1000:
            rank_zero_warn(
                "`max_epochs` was not set. Setting it to 1000 epochs. To train without an epoch "
                "limit, set `max_epochs=-1`.",
                category=PossibleUserWarning,
            )
    if loop.min_epochs is None:
        loop.min_epochs = 1 if loop.min_steps is not None else 0


def _fit(t: Any, ckpt: dict[str, Any] | None, rng: dict[str, Any] | None = None) -> None:
    t._told_min_not_met = False
    t.training = True
    t._resume_skip = 0
    t._resume_rng = None
    t._validation_ran = False
    call_both(t, "on_fit_start")
    if ckpt is not None:
        restore_training_state(t, ckpt, rng)
    call_lm(t, "zero_grad")
    # as Lightning: no sanity check when the loops resume from a checkpoint's state (it would
    # run validation batches the restored counters do not expect)
    if not (ckpt is not None and (ckpt.get("loops") or {}).get("fit_loop")):
        run_sanity_check(t)
    fit_loop(t)
    call_both(t, "on_train_end")
    call_both(t, "on_fit_end")


def run_sanity_check(t: Any) -> None:
    n = t.num_sanity_val_steps
    if not n or not t._data.has_val or t.limit_val_batches == 0:
        return
    t.sanity_checking = True
    try:
        with isolate_rng():
            call_cb(t, "on_sanity_check_start")
            loaders = t.fit_loop.epoch_loop.val_loop.setup_data()
            counts = [min(c, n) for c in t._data.eval_counts["val"]]
            t.num_sanity_val_batches = counts
            t.fit_loop.epoch_loop.val_loop.run(loaders, counts, in_fit=True)
            call_cb(t, "on_sanity_check_end")
    finally:
        # the sanity check's batches are not part of the run's progress (as Lightning)
        t.fit_loop.epoch_loop.val_loop.batch_progress.reset()
        t.training = True  # back to the stage the sanity check interrupted
        t._results = t._train_results
        # what the sanity check logged is not a result (Lightning: reset_metrics)
        t._callback_metrics, t._logged_metrics, t._pbar_metrics = {}, {}, {}


def _done(t: Any) -> bool:
    if t.fit_loop.done:
        return True
    if t.should_stop:
        if _can_stop_early(t):
            return True
        # as Lightning: should_stop stays set (the stop happens once the minimum is reached)
        if not t._told_min_not_met:
            t._told_min_not_met = True
            rank_zero_info(
                f"Trainer was signaled to stop but the required `min_epochs="
                f"{t.min_epochs}` or `min_steps={t.min_steps}` has not been met. Training "
                "will continue..."
            )
    return False


def _can_stop_early(t: Any) -> bool:
    return t.current_epoch >= (t.min_epochs or 0) and t.global_step >= (t.min_steps or 0)


def _stateful(loader: Any) -> bool:
    return callable(getattr(loader, "state_dict", None)) and callable(
        getattr(loader, "load_state_dict", None)
    )


def _loader_states(t: Any) -> list[Any]:
    data = getattr(t, "_data", None) if t is not None else None
    loader = getattr(data, "train_loader", None)
    if loader is None:
        return []
    return [p.state_dict() for p in parts(loader) if _stateful(p)]


def _load_loader_states(t: Any, loader: Any) -> bool:
    """Loads the states a resumed checkpoint holds into the stateful train loaders (in order).
    Those loaders then go on where they were: the resumed epoch draws no batches to skip."""
    fit = t.fit_loop
    states, fit._loader_states_to_load = fit._loader_states_to_load, []
    if not states or loader is None:
        return False
    stateful = [p for p in parts(loader) if _stateful(p)]
    for part, state in zip(stateful, states):
        part.load_state_dict(state)
    return bool(stateful)


def fit_loop(t: Any) -> None:
    data = t._data
    t._train_results = Results("train", sync=t._sync_fn()) if not t.barebones else None
    t._results = t._train_results
    loader = t.fit_loop.setup_data()
    # a resumed epoch whose loaders were put back where they were continues from them
    resumed_loaders = _load_loader_states(t, loader)
    n, every = t.num_training_batches, t.log_every_n_steps
    if t.loggers and every and n != math.inf and n < every and not t.fast_dev_run:
        rank_zero_warn(
            f"The number of training batches ({int(n)}) is smaller than the logging "
            f"interval Trainer(log_every_n_steps={every}). Set a lower value for "
            "log_every_n_steps if you want to see logs for the training epoch."
        )
    if _val_epoch(t) and "val" not in data.eval_loaders:
        # as Lightning: the validation loaders are known before training starts (progress bars
        # and callbacks read their length in on_train_start) even without a sanity check
        t.validating = True
        t.fit_loop.epoch_loop.val_loop.setup_data()
        t.training = True
    t._last_val_time = time.monotonic()  # a time-based val_check_interval counts from here
    call_both(t, "on_train_start")
    if t.num_training_batches == 0:
        rank_zero_info("`Trainer.fit` stopped: No training batches.")
        return
    first = True
    while not _done(t):
        reload = t.reload_dataloaders_every_n_epochs
        if not first and reload and t.current_epoch % reload == 0:
            loader = t.fit_loop.setup_data()
            if data.has_val and "val" in data.eval_loaders:
                data.eval_loaders.pop("val")
        _set_sampler_epoch(loader, t.current_epoch)
        if not (first and t._resume_skip):
            # as Lightning: a run resumed mid-epoch continues that epoch; it does not start it
            t.fit_loop.epoch_progress.increment_ready()
            t.fit_loop.epoch_progress.increment_started()
            t.fit_loop.epoch_loop.new_epoch()
            call_both(t, "on_train_epoch_start")
        if first and t._resume_rng is not None:
            rng = t._resume_rng
            # resumed inside the saved epoch: from its start; otherwise from the save
            resumed_inside = t._resume_skip and rng["epoch_start"] is not None
            resumed_inside = resumed_inside and not resumed_loaders
            _set_rng(rng["epoch_start"] if resumed_inside else rng["now"], loader)
        t._epoch_start_rng = {"global": collect_rng_states(), "loader": _loader_gen_states(loader)}
        with profiled(t, "run_training_epoch"):
            run_train_epoch(
                t,
                loader,
                resume_rng=t._resume_rng if first else None,
                loaders_resumed=first and resumed_loaders,
            )
        first = False
        _train_epoch_end(t)
    if t.fit_loop.max_steps_reached:
        rank_zero_info(f"`Trainer.fit` stopped: `max_steps={t.max_steps}` reached.")
    elif t.fit_loop.max_epochs_reached:
        rank_zero_info(f"`Trainer.fit` stopped: `max_epochs={t.max_epochs}` reached.")


def _val_epoch(t: Any) -> bool:
    """Whether validation runs in this epoch (``check_val_every_n_epoch``)."""
    return t.fit_loop.epoch_loop._should_check_val_epoch()


def _set_sampler_epoch(loader: Any, epoch: int) -> None:
    for part in parts(loader):
        for obj in (
            getattr(part, "sampler", None),
            getattr(getattr(part, "batch_sampler", None), "sampler", None),
        ):
            set_epoch = getattr(obj, "set_epoch", None)
            if callable(set_epoch):
                set_epoch(epoch)


def _val_check_batch(t: Any) -> float:
    if t._val_check_time_interval is not None:
        return math.inf  # validation is due by the clock (see ``_time_for_val``), not by batches
    n, interval = t.num_training_batches, t.val_check_interval
    if isinstance(interval, int):
        if t.check_val_every_n_epoch is not None and n != math.inf and interval > n:
            raise ValueError(
                f"`val_check_interval` ({interval}) must be less than or equal to the number of "
                f"the training batches ({int(n)}). If you want to disable validation set "
                "`limit_val_batches` to 0.0 instead. If you want to validate based on the total "
                "training batches, set `check_val_every_n_epoch=None`."
            )
        return float(interval)
    if n == math.inf:
        return math.inf
    return float(max(1, int(n * interval)))


def run_train_epoch(
    t: Any, loader: Any, resume_rng: Any = None, loaders_resumed: bool = False
) -> None:
    """One training epoch. Resumed inside it (``trainer._resume_skip`` batches done), the
    loader is drawn past those batches from the epoch's restored random state, or, when its
    loaders kept a state of their own (``loaders_resumed``), they go on where they were."""
    n = t.num_training_batches
    progress = t.fit_loop.epoch_loop.batch_progress
    try:
        full = len(loader)
    except (TypeError, NotImplementedError):
        full = math.inf
    early_break = n < full
    val_every = _val_check_batch(t)
    cvne = t.check_val_every_n_epoch
    val_epoch = _val_epoch(t)
    skip = t._resume_skip
    t._resume_skip = 0
    batch_idx = -1
    pending = None  # the last batch's post-processing, run after the loader is exhausted
    resume_at_end = False

    def resume_point(idx: int) -> None:
        # where the resumed run picks up the saved one: its random state, then what was due
        # after the saved batch
        if resume_rng is not None:
            _set_rng(resume_rng["now"], loader)
        _skip_validation_due(t, idx, val_epoch, val_every, cvne)
        _finish_interrupted_validation(t, idx + 1 == n)

    batches: Any = loader
    if loaders_resumed and skip:
        batch_idx = skip - 1  # the loaders go on where they were: nothing to draw past
        skip = 0
        resume_point(batch_idx)
        if batch_idx + 1 >= n:
            batches = ()  # saved after the epoch's last batch: a loader would start its next
    for batch in batches:
        batch_idx += 1
        if batch_idx < skip:
            if batch_idx + 1 == skip:
                if skip == n:  # the epoch's last batch: the loader ends first, as it had
                    resume_at_end = True
                    if early_break:
                        break
                    continue
                resume_point(batch_idx)
            continue  # counted already: the restored progress holds these batches
        is_last = batch_idx + 1 == n
        progress.is_last_batch = is_last
        with profiled(t, "run_training_batch"):
            stepped = train_batch(t, batch, batch_idx, is_last)
        if stepped is SKIP_EPOCH:
            # As Lightning: the skipped batch is the epoch's last, so epoch schedulers step and
            # epoch-end validation runs.
            progress.is_last_batch = True
            step_schedulers(t, "epoch")
            if val_epoch:
                _run_fit_validation(t)
            return
        check_val = val_epoch and (
            _val_due_by_count(progress, batch_idx, val_every, cvne)
            or (t.should_stop and _can_stop_early(t))
            or _time_for_val(t)
        )
        if is_last:
            pending = (stepped, check_val)
            if early_break:
                break
            continue
        _after_batch(t, stepped, check_val)
        if _done_mid_epoch(t) or (early_break and batch_idx + 1 >= n):
            break
    if resume_at_end:
        resume_point(skip - 1)
    if pending is None and batch_idx >= 0 and full == math.inf and n == math.inf:
        # no length: the end of the epoch was only known at StopIteration
        progress.is_last_batch = True
        step_schedulers(t, "epoch")
        if val_epoch:
            _run_fit_validation(t)
        return
    if pending is not None:
        by_batches = t._val_check_time_interval is None
        _after_batch(t, *pending, last=val_epoch and by_batches and val_every == math.inf)


def _skip_validation_due(
    t: Any, batch_idx: int, val_epoch: bool, val_every: Any, cvne: Any
) -> None:
    """Resumed from a checkpoint saved in ``on_train_batch_end``: the validation due after
    that batch (``val_check_interval``) had not run when it was saved. As Lightning, it is not
    run now; its batch counters move to the end of such a run (the loop state then matches the
    uninterrupted run's)."""
    epoch_loop = t.fit_loop.epoch_loop
    due, epoch_loop._val_due_on_resume = epoch_loop._val_due_on_resume, False
    progress = epoch_loop.batch_progress
    if not (due and val_epoch and _val_due_by_count(progress, batch_idx, val_every, cvne)):
        return
    val_loop = epoch_loop.val_loop
    if "val" not in t._data.eval_loaders:
        val_loop.setup_data()
    counts = [c for c in t._data.eval_counts["val"] if c != math.inf]
    if not counts or max(counts) <= 0:
        return
    val_loop.batch_progress.reset_on_run()
    val_loop.batch_progress.increment_by(int(max(counts)))
    val_loop.batch_progress.is_last_batch = True


def _val_due_by_count(progress: Any, batch_idx: int, val_every: float, cvne: Any) -> bool:
    """``val_check_interval`` as a batch count: due after every ``val_every`` batches, counted
    over the whole run when ``check_val_every_n_epoch=None``, else within the epoch."""
    idx = progress.total.ready - 1 if cvne is None else batch_idx
    return val_every != math.inf and (idx + 1) % val_every == 0


def _finish_interrupted_validation(t: Any, is_last: bool) -> None:
    """Resumed from a checkpoint written while a validation inside the epoch ran (an
    exception checkpoint): that validation goes on from the batch it stopped at, then what
    follows a batch (step schedulers, the step count) runs for the batch it followed, as
    Lightning."""
    epoch_loop = t.fit_loop.epoch_loop
    done, epoch_loop._val_resume_from = epoch_loop._val_resume_from, None
    if done is None:
        return
    epoch_loop.batch_progress.is_last_batch = is_last
    batches = epoch_loop.batch_progress.current.processed
    stepped = steps_optimizer(batches - 1, t.accumulate_grad_batches, is_last)
    # the random state saved is the one at the failure, after the validation had drawn what it
    # draws up front (its loader iterators' seeds, a shuffle): training goes on from that state,
    # not from one the validation's restart drew again
    with isolate_rng():
        _after_batch(t, stepped, check_val=True, val_resume_from=done)


def _time_for_val(t: Any) -> bool:
    """Time-based ``val_check_interval``: validate once that long has passed since the last
    validation (or the start of training), at whatever batch that is, as Lightning 2.6."""
    interval = t._val_check_time_interval
    return interval is not None and time.monotonic() - t._last_val_time >= interval


def _after_batch(
    t: Any, stepped: bool, check_val: bool, last: bool = False, val_resume_from: int = 0
) -> None:
    if check_val or last:
        _run_fit_validation(t, zero_grad=stepped, resume_from=val_resume_from)
    step_schedulers(t, "step", plateau=True)
    if stepped:
        t._batches_that_stepped += 1


def _done_mid_epoch(t: Any) -> bool:
    return t.fit_loop.max_steps_reached or bool(t.should_stop and _can_stop_early(t))


def _run_fit_validation(t: Any, zero_grad: bool = True, resume_from: int = 0) -> None:
    data = t._data
    if "val" not in data.eval_loaders:
        t.fit_loop.epoch_loop.val_loop.setup_data()
    counts = data.eval_counts["val"]
    if not any(counts):
        return
    if zero_grad:
        call_lm(t, "on_validation_model_zero_grad")
    t.validating = True  # and so no longer training
    try:
        t.fit_loop.epoch_loop.val_loop.run(
            data.eval_loaders["val"], counts, in_fit=True, resume_from=resume_from
        )
    finally:
        t.training = True
        t._results = t._train_results
    t._validation_ran = True


def _train_epoch_end(t: Any) -> None:
    epochs = t.fit_loop.epoch_progress
    epochs.increment_processed()
    results = t._train_results
    if results is not None:
        results.end_epoch()
    _publish_epoch(t, results)
    call_cb(t, "on_train_epoch_end:plain")
    call_lm(t, "on_train_epoch_end")
    # again: LightningModule.on_train_epoch_end may log what the monitoring callbacks read
    logged = _publish_epoch(t, results)
    call_cb(t, "on_train_epoch_end:monitor")
    if t.fit_loop.epoch_loop._num_ready_batches_reached():
        # as Lightning: an epoch cut short (max_steps) does not step plateau schedulers
        step_plateau_epoch(t)
    if results is not None:
        _send_to_loggers(t, logged, step=t._batches_that_stepped - 1)
        results.reset()
    epochs.increment_completed()


class TrainingEpochLoop:
    """State of the batches of one training epoch: batch, optimizer-step and scheduler counters,
    and the validation loop that runs inside ``fit``."""

    def __init__(self, min_steps: int | None, max_steps: int) -> None:
        self.min_steps = min_steps
        self.max_steps = max_steps
        self.batch_progress = BatchProgress()
        self.scheduler_progress = Progress(_READY_COMPLETED)
        self.automatic_optimization = _AutomaticOptimization()
        self.manual_optimization = _ManualOptimization()
        self.val_loop = EvaluationLoop()
        self._batches_that_stepped = 0
        self.restarting = False  # loaded from a checkpoint, not yet reset
        # set by a restore (runtime.checkpoint._restore_progress) for the resumed epoch's
        # first batch: a validation due after the saved batch that had not run (its counters
        # move to its end), or one interrupted after this many batches (it is finished)
        self._val_due_on_resume = False
        self._val_resume_from: int | None = None
        self.trainer: Any = None  # set by the Trainer that owns this loop

    @property
    def _restarted_on_train_batch_end(self) -> bool:
        """Saved in ``on_train_batch_end``: the batch's work is done, its hooks were not."""
        total = self.batch_progress.total
        return total.ready == total.processed == total.completed + 1

    def reset(self) -> None:
        """Prepare the counters for a run of the loop. Restarting from a checkpoint (Lightning's
        rule): a batch saved in ``on_train_batch_end`` counts as completed; a finished epoch's
        ``current`` counters start over; otherwise what was fetched but not completed is fetched
        again. A fresh run starts every ``current`` counter over."""
        if not self.restarting:
            self.new_epoch()
            return
        on_batch_end = self._restarted_on_train_batch_end
        if on_batch_end:
            self.batch_progress.increment_completed()
        if on_batch_end and self.batch_progress.is_last_batch:
            self.batch_progress.reset_on_run()
            self.scheduler_progress.reset_on_run()
            self.automatic_optimization.optim_progress.reset_on_run()
            self.manual_optimization.optim_step_progress.reset_on_run()
            return
        self.batch_progress.reset_on_restart()
        self.scheduler_progress.reset_on_restart()
        self.automatic_optimization.optim_progress.reset_on_restart()
        self.manual_optimization.optim_step_progress.reset_on_restart()

    def _num_ready_batches_reached(self) -> bool:
        """Whether every batch of this epoch was fetched (the epoch ran to its end)."""
        progress = self.batch_progress
        return progress.current.ready == self.trainer.num_training_batches or bool(
            progress.is_last_batch
        )

    def _should_check_val_epoch(self) -> bool:
        """Whether validation runs in the current epoch (``check_val_every_n_epoch``)."""
        t = self.trainer
        cvne = t.check_val_every_n_epoch
        return t._has_val_batches() and (cvne is None or (t.current_epoch + 1) % cvne == 0)

    def _get_monitor_value(self, key: str) -> Any:
        """The value a ReduceLROnPlateau scheduler monitors (a hook point, as in Lightning)."""
        return self.trainer.callback_metrics.get(key)

    @property
    def step_progress(self) -> Progress:
        """The optimizer-step counter of the module's optimization mode (manual optimization has
        its own, as in Lightning)."""
        if self.trainer is None or self.trainer._automatic:
            return self.automatic_optimization.optim_progress.optimizer.step
        return self.manual_optimization.optim_step_progress

    @property
    def global_step(self) -> int:
        """Optimizer steps taken in the whole run."""
        return self.step_progress.total.completed

    @property
    def total_batch_idx(self) -> int:
        """Index of the current batch over all epochs."""
        return self.batch_progress.total.ready - 1

    @property
    def batch_idx(self) -> int:
        """Index of the current batch in this epoch."""
        return self.batch_progress.current.ready - 1

    def new_epoch(self) -> None:
        self.batch_progress.reset_on_run()
        self.scheduler_progress.reset_on_run()
        self.automatic_optimization.optim_progress.reset_on_run()
        self.manual_optimization.optim_step_progress.reset_on_run()
        # as Lightning: validation's total counts the batches of this epoch (it tells how often
        # validation ran within the epoch)
        self.val_loop.batch_progress.total.reset()

    def state_dict(self) -> dict[str, Any]:
        return {
            "state_dict": {"_batches_that_stepped": self._batches_that_stepped},
            "batch_progress": self.batch_progress.state_dict(),
            "scheduler_progress": self.scheduler_progress.state_dict(),
            "automatic_optimization.state_dict": {},
            "automatic_optimization.optim_progress": (
                self.automatic_optimization.optim_progress.state_dict()
            ),
            "manual_optimization.state_dict": {},
            "manual_optimization.optim_step_progress": (
                self.manual_optimization.optim_step_progress.state_dict()
            ),
            "val_loop.state_dict": {},
            "val_loop.batch_progress": self.val_loop.batch_progress.state_dict(),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self._batches_that_stepped = int(
            (state.get("state_dict") or {}).get("_batches_that_stepped", 0)
        )
        self.batch_progress.load_state_dict(state.get("batch_progress") or {})
        self.scheduler_progress.load_state_dict(state.get("scheduler_progress") or {})
        self.automatic_optimization.optim_progress.load_state_dict(
            state.get("automatic_optimization.optim_progress") or {}
        )
        self.manual_optimization.optim_step_progress.load_state_dict(
            state.get("manual_optimization.optim_step_progress") or {}
        )
        self.val_loop.batch_progress.load_state_dict(state.get("val_loop.batch_progress") or {})


class FitLoop:
    """``trainer.fit_loop``: epoch counters and limits; ``epoch_loop`` holds the rest.

    ``max_epochs`` may be changed between two ``fit`` calls (``trainer.fit_loop.max_epochs = 4``
    trains on to epoch 4)."""

    def __init__(
        self,
        min_epochs: int | None,
        max_epochs: int | None,
        min_steps: int | None,
        max_steps: int,
    ) -> None:
        self.min_epochs = min_epochs
        self.max_epochs = max_epochs
        self.epoch_progress = Progress()
        self.epoch_loop = TrainingEpochLoop(min_steps, max_steps)
        self.restarting = False  # loaded from a checkpoint, not yet reset
        self._trainer: Any = None
        self._loaded_state: dict[str, Any] = {}  # kept as loaded
        # states of the stateful train loaders, loaded into them when the run sets its data up
        self._loader_states_to_load: list[Any] = []

    def reset(self) -> None:
        """Prepare the epoch counters for a run. Restarting from a checkpoint saved in the last
        batch's ``on_train_batch_end``, that epoch counts as completed (Lightning's rule)."""
        if not self.restarting:
            return
        loop = self.epoch_loop
        if loop._restarted_on_train_batch_end and loop.batch_progress.is_last_batch:
            self.epoch_progress.increment_processed()
            self.epoch_progress.increment_completed()

    @property
    def trainer(self) -> Any:
        return self._trainer

    @trainer.setter
    def trainer(self, trainer: Any) -> None:
        self._trainer = self.epoch_loop.trainer = self.epoch_loop.val_loop.trainer = trainer
        self.epoch_loop.automatic_optimization.trainer = trainer

    def setup_data(self) -> Any:
        """Ask for the training loader (the hook or what was passed), apply
        ``limit_train_batches``/``overfit_batches`` and set ``trainer.num_training_batches``."""
        return self.trainer._data.load_train()

    @property
    def max_steps(self) -> int:
        return self.epoch_loop.max_steps

    @max_steps.setter
    def max_steps(self, value: int) -> None:
        self.epoch_loop.max_steps = value

    @property
    def min_steps(self) -> int | None:
        return self.epoch_loop.min_steps

    @property
    def total_batch_idx(self) -> int:
        return self.epoch_loop.total_batch_idx

    @property
    def batch_idx(self) -> int:
        return self.epoch_loop.batch_idx

    def resolved_max_epochs(self, max_time: float | None) -> int:
        """``max_epochs`` as ``fit`` runs it: ``None`` means 1000, or no limit (-1) when
        ``max_steps`` or ``max_time`` bound the run (Lightning's rule)."""
        if self.max_epochs is not None:
            return self.max_epochs
        return -1 if self.max_steps != -1 or max_time is not None else 1000

    @property
    def max_steps_reached(self) -> bool:
        return self.max_steps != -1 and self.epoch_loop.global_step >= self.max_steps

    @property
    def max_epochs_reached(self) -> bool:
        max_epochs = self.max_epochs
        return max_epochs not in (-1, None) and self.epoch_progress.current.completed >= max_epochs

    @property
    def done(self) -> bool:
        """True once ``max_steps`` or ``max_epochs`` is reached (time and early stopping are
        decided by the loop as it runs)."""
        return self.max_steps_reached or self.max_epochs_reached

    def state_dict(self) -> dict[str, Any]:
        inner = dict(self._loaded_state)
        states = _loader_states(self._trainer)
        if states:
            # as Lightning: the train loaders that keep a state of their own (state_dict /
            # load_state_dict, e.g. torchdata's StatefulDataLoader), in order
            inner["combined_loader"] = states
        out: dict[str, Any] = {"state_dict": inner}
        for key, value in self.epoch_loop.state_dict().items():
            out[f"epoch_loop.{key}"] = value
        out["epoch_progress"] = self.epoch_progress.state_dict()
        return out

    def load_state_dict(self, state: dict[str, Any]) -> None:
        prefix = "epoch_loop."
        self.epoch_loop.load_state_dict(
            {k[len(prefix) :]: v for k, v in state.items() if k.startswith(prefix)}
        )
        self.epoch_progress.load_state_dict(state.get("epoch_progress") or {})
        self._loaded_state = dict(state.get("state_dict") or {})
        self._loader_states_to_load = list(self._loaded_state.pop("combined_loader", None) or [])
        loop = self.epoch_loop
        for owner in (self, loop, loop.automatic_optimization, loop.manual_optimization):
            owner.restarting = True
