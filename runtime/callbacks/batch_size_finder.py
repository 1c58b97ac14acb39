"""The batch-size finder: ``BatchSizeFinder`` (a callback) and ``Tuner.scale_batch_size``, as in
Lightning 2.x.

Each trial sets the batch size (``batch_arg_name`` on the module, its ``hparams`` or the
datamodule), asks the dataloader hook for a new loader and runs ``steps_per_trial`` batches of
the stage (``fit``: optimizer steps, with as many validation batches; ``validate``/``test``/
``predict``: that many batches) without callbacks or loggers. A trial that fails with an
out-of-memory error (CUDA, cuDNN or the CPU allocator; any other error propagates) ends the
search in ``"power"`` mode at half that size, while ``"binsearch"`` searches between the last
size that fitted and the one that did not and then keeps a ``margin``. The size never exceeds
the dataset's length or ``max_val``. Afterwards the weights, optimizer and scheduler states,
loop counters, callbacks and loggers are put back as they were, the batch size stays at the
size found, and the stage goes on with loaders of that size (the Tuner stops after the search).
"""

from __future__ import annotations

import copy
import gc
import logging
from typing import Any

from runtime.callbacks.base import Callback
from runtime.errors import MisconfigurationException, _TunerExitException
from runtime.rank_zero import rank_zero_info, rank_zero_warn
from runtime.tuner import _SearchState

log = logging.getLogger("runtime.tuner")

__all__ = ["BatchSizeFinder", "is_oom_error"]

_OOM_MESSAGES = (
    ("CUDA", "out of memory"),
    ("cuDNN error: CUDNN_STATUS_NOT_SUPPORTED.",),
    ("DefaultCPUAllocator: can't allocate memory",),
)


def is_oom_error(exception: BaseException) -> bool:
    """Whether ``exception`` is the RuntimeError torch raises when memory runs out (on a CUDA
    device, in cuDNN, or in the CPU allocator)."""
    if not isinstance(exception, RuntimeError) or len(exception.args) != 1:
        return False
    message = exception.args[0]
    if not isinstance(message, str):
        return False
    return any(all(part in message for part in parts) for parts in _OOM_MESSAGES)


def _free_memory(after_oom: bool = False) -> None:
    """Give memory back before the next trial: the CUDA cache (after a collection, so that
    the failed trial's tensors are freed), or only a collection after a CPU allocation failed
    (a collection costs ~0.1 s, so trials that fitted on the CPU skip it)."""
    import torch

    if torch.cuda.is_available():
        gc.collect()
        torch.cuda.empty_cache()
    elif after_oom:
        gc.collect()


# ------------------------------------------------------------------ where the batch size lives
def _holders(model: Any, name: str) -> list[Any]:
    """Every object or dict holding ``name``: the module, its hparams, the datamodule and its
    hparams (Lightning's order; reads come from the last)."""
    found: list[Any] = []
    for owner in (model, getattr(getattr(model, "_trainer", None), "datamodule", None)):
        if owner is None:
            continue
        if hasattr(owner, name):
            found.append(owner)
        hparams = getattr(owner, "hparams", None)
        if hparams is not None and name in hparams:
            found.append(hparams)
    return found


def _get(model: Any, name: str) -> Any:
    holders = _holders(model, name)
    if not holders:
        raise AttributeError(
            f"{name} is neither stored in the model namespace nor the `hparams` namespace/dict, "
            "nor the datamodule."
        )
    holder = holders[-1]
    return holder[name] if isinstance(holder, dict) else getattr(holder, name)


def _set(model: Any, name: str, value: Any) -> None:
    holders = _holders(model, name)
    if not holders:
        raise AttributeError(
            f"{name} is neither stored in the model namespace nor the `hparams` namespace/dict, "
            "nor the datamodule."
        )
    for holder in holders:
        if isinstance(holder, dict):
            holder[name] = value
        else:
            setattr(holder, name, value)


# ------------------------------------------------------------------------------ the stage run
_EVAL_STAGE = {"validate": "val", "test": "test", "predict": "predict"}


class _Trials:
    """Runs trials of one stage and puts the trainer back afterwards."""

    def __init__(self, trainer: Any, fn: str, steps_per_trial: int) -> None:
        self.trainer = trainer
        self.fn = fn
        self.steps = steps_per_trial
        self.stage = _EVAL_STAGE.get(fn, "train")

    @property
    def loop(self) -> Any:
        t = self.trainer
        return {
            "fit": t.fit_loop,
            "validate": t.validate_loop,
            "test": t.test_loop,
            "predict": t.predict_loop,
        }[self.fn]

    def __enter__(self) -> _Trials:
        t = self.trainer
        self.state = _SearchState(t, callbacks=[]).__enter__()
        self.saved_loop = dict(self.loop.__dict__)
        self.saved_eval = None if self.fn == "fit" else self._loop_state()
        if self.fn == "fit":
            t.limit_train_batches = 1.0
            t.limit_val_batches = self.steps
            t.fit_loop.max_steps = self.steps
        else:
            setattr(t, f"limit_{self.stage}_batches", self.steps)
        return self

    def _loop_state(self) -> dict[str, Any]:
        return copy.deepcopy(self.loop.batch_progress.state_dict())

    def _load_loop_state(self) -> None:
        """The stage's loop counters as they were when the search started."""
        if self.fn == "fit":
            self.state.reset_fit_loop()
        else:
            self.loop.batch_progress.load_state_dict(copy.deepcopy(self.saved_eval))

    def dataset_length(self) -> int | None:
        """The length of the stage's dataset (the longest of several train loaders, the sum of
        several evaluation loaders); None when a dataset has no length."""
        data = self.trainer._data
        if self.fn == "fit":
            loader = data.load_train()
            loaders = getattr(loader, "loaders", None) or [loader]
            if isinstance(loaders, dict):
                loaders = list(loaders.values())
        else:
            loaders = data.load_eval(self.stage)
        lengths = []
        for dl in loaders:
            dataset = getattr(dl, "dataset", None)
            try:
                lengths.append(len(dataset))  # type: ignore[arg-type]
            except TypeError:
                return None
        if not lengths:
            return None
        return max(lengths) if self.fn == "fit" else sum(lengths)

    def reset_loaders(self) -> None:
        """Forget the loaders so that the next run asks the dataloader hooks again."""
        data = self.trainer._data
        data.train_loader = None
        for stage in ("val", self.stage):
            data.eval_loaders.pop(stage, None)

    def run(self) -> None:
        """One trial: the stage's loop from the state it had when the search started."""
        from runtime.loops.fit import fit_loop

        t = self.trainer
        _free_memory()
        self._load_loop_state()
        self.reset_loaders()
        t.should_stop = False
        if self.fn == "fit":
            fit_loop(t)
        elif self.fn == "predict":
            self.loop.run(t, return_predictions=False)
        else:
            loop = self.loop
            loaders = loop.setup_data()
            loop.run(loaders, t._data.eval_counts[self.stage], in_fit=False)

    def __exit__(self, *exc: Any) -> None:
        t = self.trainer
        self.state.__exit__(*exc)  # puts the fit loop back too
        self.loop.__dict__.update(self.saved_loop)
        if self.fn != "fit":
            self._load_loop_state()
        self.reset_loaders()
        if self.fn != "fit":
            # the stage that called the finder goes on with loaders of the size found
            self.loop.setup_data()
            t._data.resized = self.stage
        _free_memory()


# ------------------------------------------------------------------------------ the search
def _scale_batch_size(
    trainer: Any,
    mode: str = "power",
    steps_per_trial: int = 3,
    init_val: int = 2,
    max_trials: int = 25,
    batch_arg_name: str = "batch_size",
    margin: float = 0.05,
    max_val: int = 8192,
) -> int | None:
    """The search (see the module docstring); returns the size found (also set on the module
    or datamodule), or None under ``fast_dev_run``."""
    if not 0.0 <= margin < 1.0:
        raise ValueError(f"`margin` should be between 0 and 1, got {margin!r}.")
    if trainer.fast_dev_run:
        rank_zero_warn("Skipping batch size scaler since `fast_dev_run` is enabled.")
        return None
    fn = str(getattr(trainer.state.fn, "value", trainer.state.fn))
    with _Trials(trainer, fn, steps_per_trial) as trials:
        search = _Search(trainer, trials, batch_arg_name, max_val)
        size = search.adjust(value=init_val)[0]
        if mode == "power":
            size = search.power(size, max_trials)
        else:
            size = search.binsearch(size, max_trials)
            reduced = max(1, int(size * (1 - margin)))
            if margin > 0 and reduced != size:
                rank_zero_info(
                    f"Applying margin of {margin:.1%}, reducing batch size from {size} to {reduced}"
                )
                size = reduced
                _set(trainer.lightning_module, batch_arg_name, size)
        log.info(f"Finished batch size finder, will continue with full run using batch size {size}")
    return size


class _Search:
    def __init__(self, trainer: Any, trials: _Trials, name: str, max_val: int) -> None:
        self.model = trainer.lightning_module
        self.trials = trials
        self.name = name
        self.max_val = max_val

    def adjust(
        self, factor: float = 1.0, value: int | None = None, desc: str | None = None
    ) -> tuple[int, bool]:
        """Set the batch size to ``value`` (or the current one times ``factor``), capped at
        ``max_val``; unchanged once it reaches the dataset's length. Returns the size and
        whether it changed."""
        current = _get(self.model, self.name)
        length = self.trials.dataset_length()
        if length is not None and current >= length:
            rank_zero_info(
                f"The batch size {current} is greater or equal than the length of your "
                f"dataset: {length}."
            )
            return current, False
        new = value if value is not None else int(current * factor)
        if new > self.max_val:
            if desc:
                rank_zero_info(
                    f"Batch size {new} exceeds max_val limit {self.max_val}, capping at "
                    f"{self.max_val}"
                )
            new = self.max_val
        if desc:
            rank_zero_info(f"Batch size {current} {desc}, trying batch size {new}")
        _set(self.model, self.name, new)
        return new, new != current

    def _too_large(self, size: int) -> bool:
        if size >= self.max_val:
            rank_zero_info(
                f"Reached the maximum batch size limit of {self.max_val}. Stopping search."
            )
            return True
        return False

    def _fits(self) -> bool:
        """Runs one trial: True when it ran, False when it ran out of memory."""
        try:
            self.trials.run()
        except RuntimeError as error:
            if not is_oom_error(error):
                raise
            _free_memory(after_oom=True)
            return False
        return True

    def power(self, size: int, max_trials: int) -> int:
        """Double until a trial runs out of memory, then halve once."""
        any_success = False
        for trial in range(max_trials):
            if self._too_large(size):
                break
            if not self._fits():
                size = self.adjust(factor=0.5, desc="failed")[0]
                if any_success:
                    break
                continue
            if trial + 1 >= max_trials:
                break
            size, changed = self.adjust(factor=2.0, desc="succeeded")
            if not changed:
                break
            any_success = True
        return size

    def binsearch(self, size: int, max_trials: int) -> int:
        """Double until a trial runs out of memory, then bisect between the last size that
        fitted and the first that did not."""
        low, high, count = 1, None, 0
        while not self._too_large(size):
            if not self._fits():
                high = size
                size = self.adjust(value=(high + low) // 2, desc="failed")[0]
                if high - low <= 1:
                    break
                continue
            count += 1
            if count >= max_trials:
                break
            low = size
            if high:
                if high - low <= 1:
                    break
                size, changed = self.adjust(value=(high + low) // 2, desc="succeeded")
            else:
                size, changed = self.adjust(factor=2.0, desc="succeeded")
            if not changed:
                break
        return size


# ------------------------------------------------------------------------------ the callback
class BatchSizeFinder(Callback):
    """Finds the largest batch size that fits in memory when ``fit``, ``validate``, ``test``
    or ``predict`` starts, then runs the stage with it (see the module docstring). The module
    (or its datamodule) must read its loaders' batch size from ``batch_arg_name``, and the
    loaders must come from the dataloader hooks, not be passed to the Trainer call."""

    SUPPORTED_MODES = ("power", "binsearch")

    def __init__(
        self,
        mode: str = "power",
        steps_per_trial: int = 3,
        init_val: int = 2,
        max_trials: int = 25,
        batch_arg_name: str = "batch_size",
        margin: float = 0.05,
        max_val: int = 8192,
    ) -> None:
        mode = mode.lower()
        if mode not in self.SUPPORTED_MODES:
            raise ValueError(f"`mode` should be either of {self.SUPPORTED_MODES}, got {mode!r}.")
        if not 0.0 <= margin < 1.0:
            raise ValueError(f"`margin` should be between 0 and 1, got {margin!r}.")
        self.optimal_batch_size: int | None = init_val
        self._mode = mode
        self._steps_per_trial = steps_per_trial
        self._init_val = init_val
        self._max_trials = max_trials
        self._batch_arg_name = batch_arg_name
        self._margin = margin
        self._max_val = max_val
        self._early_exit = False

    def setup(self, trainer: Any, pl_module: Any, stage: str | None = None) -> None:
        from runtime.strategies.ddp import DDPStrategy

        if isinstance(trainer.strategy, DDPStrategy):
            raise MisconfigurationException(
                "The Batch size finder is not supported with distributed strategies."
            )
        given = trainer._data.given
        source = "train" if stage == "fit" else _EVAL_STAGE.get(str(stage), str(stage))
        if given.get(source) is not None:
            raise MisconfigurationException(
                "The Batch size finder cannot be used with dataloaders passed directly to "
                f"`.{'fit' if stage == 'fit' else stage}()`. Please disable the feature or "
                "incorporate the dataloader into your LightningModule or LightningDataModule."
            )
        if stage != "fit" and len(trainer._data.load_eval(source)) > 1:
            raise MisconfigurationException(
                f"The Batch size finder cannot be used with multiple {source} dataloaders."
            )
        if not _holders(pl_module, self._batch_arg_name):
            raise MisconfigurationException(
                f"Field {self._batch_arg_name} not found in `model`, `datamodule`, nor their "
                "`hparams` attributes."
            )
        hparams = getattr(pl_module, "hparams", None) or {}
        if hasattr(pl_module, self._batch_arg_name) and self._batch_arg_name in hparams:
            rank_zero_warn(
                f"Field `model.{self._batch_arg_name}` and `model.hparams.{self._batch_arg_name}`"
                f" are mutually exclusive! `model.{self._batch_arg_name}` will be used as the "
                "initial batch size for scaling. If this is not the intended behavior, please "
                "remove either one."
            )

    def scale_batch_size(self, trainer: Any, pl_module: Any) -> None:
        self.optimal_batch_size = _scale_batch_size(
            trainer,
            self._mode,
            self._steps_per_trial,
            self._init_val,
            self._max_trials,
            self._batch_arg_name,
            self._margin,
            self._max_val,
        )
        if self._early_exit:
            raise _TunerExitException()

    def on_fit_start(self, trainer: Any, pl_module: Any) -> None:
        self.scale_batch_size(trainer, pl_module)

    def on_validation_start(self, trainer: Any, pl_module: Any) -> None:
        fn = str(getattr(trainer.state.fn, "value", trainer.state.fn))
        if trainer.sanity_checking or fn != "validate":
            return
        self.scale_batch_size(trainer, pl_module)

    def on_test_start(self, trainer: Any, pl_module: Any) -> None:
        self.scale_batch_size(trainer, pl_module)

    def on_predict_start(self, trainer: Any, pl_module: Any) -> None:
        self.scale_batch_size(trainer, pl_module)
