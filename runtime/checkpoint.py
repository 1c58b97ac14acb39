"""Checkpoint files: Lightning's key set, written atomically, safe to ``torch.load(weights_only=True)``.

Owns the file format: what a checkpoint holds (dump), checking a file (load), and putting
a run back in the state it holds (restore: which file ``ckpt_path`` names, module state,
training state, random state). The ``ModelCheckpoint`` callback owns when and where files
are written.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Mapping
from typing import Any

import torch

from runtime.errors import CheckpointError, MisconfigurationException
from runtime.hparams import rebuild_kwargs, safe_hparams
from runtime.rank_zero import rank_zero_warn, warn_once
from runtime.seed import collect_rng_states, set_rng_states
from runtime.utilities import is_overridden

FORMAT_VERSION = "2.6.6"  # the Lightning checkpoint format these files follow
RNG_KEY = "runtime_rng_states"  # a top-level key: the exact-resume random state
_TENSOR_TAG = "__tensor__"


def atomic_save(obj: Any, path: str | os.PathLike) -> None:
    """``torch.save`` to a temp file in the target folder, fsync, then ``os.replace`` and fsync
    of the folder: after a crash the file is the old one or the new one, never a torn one. The
    temp file's name does not end in ``.ckpt`` (a ``*.ckpt`` search never finds a partial
    save); the checkpoint gets the mode a new file gets under the umask (or the mode of the file
    it replaces)."""
    path = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    if os.path.exists(path):
        mode = os.stat(path).st_mode & 0o7777
    else:
        mask = os.umask(0)
        os.umask(mask)
        mode = 0o666 & ~mask
    fd, tmp = tempfile.mkstemp(prefix=f".{os.path.basename(path)}.", suffix=".tmp", dir=folder)
    try:
        with os.fdopen(fd, "wb") as f:
            torch.save(obj, f)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise
    try:
        dir_fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(dir_fd)
    except OSError:
        pass
    finally:
        os.close(dir_fd)


def load_file(path: Any, map_location: Any = None, weights_only: bool | None = None) -> dict:
    """Reads a checkpoint and checks it is one (a dict with a ``state_dict``)."""
    path_s = os.fspath(path)
    if not os.path.isfile(path_s):
        raise FileNotFoundError(
            f"Checkpoint file not found: {path_s}. Pass the path of a `.ckpt` file written by "
            "`Trainer.save_checkpoint` or `ModelCheckpoint` (see `trainer.checkpoint_callback."
            "best_model_path`)."
        )
    try:
        ckpt = torch.load(
            path_s,
            map_location=map_location,
            weights_only=True if weights_only is None else weights_only,
        )
    except Exception as e:  # noqa: BLE001 - unpickling errors come in many types
        hint = (
            "It holds objects other than tensors and plain values; if you trust the file, pass "
            "`weights_only=False`."
            if "weights_only" in str(e) or "Unsupported" in str(e)
            else "It is not a file written by `torch.save`."
        )
        raise CheckpointError(
            f"Could not read checkpoint {path_s!r}: {hint} ({type(e).__name__}: "
            f"{str(e).splitlines()[0] if str(e) else ''})"
        ) from e
    if not isinstance(ckpt, Mapping) or "state_dict" not in ckpt:
        keys = sorted(ckpt)[:10] if isinstance(ckpt, Mapping) else type(ckpt).__name__
        raise CheckpointError(
            f"{path_s!r} is not a Lightning/runtime checkpoint: it has no 'state_dict' key (found "
            f"{keys}). A bare `model.state_dict()` file loads with `model.load_state_dict("
            "torch.load(path))`, not with `load_from_checkpoint` / `ckpt_path`."
        )
    return dict(ckpt)


def loops_state(trainer: Any) -> dict[str, Any]:
    """The ``loops`` entry: the loop objects' progress in Lightning's layout, so either engine
    can resume the other's checkpoints."""
    predict = trainer.predict_loop
    return {
        "fit_loop": trainer.fit_loop.state_dict(),
        "validate_loop": trainer.validate_loop.state_dict(),
        "test_loop": trainer.test_loop.state_dict(),
        "predict_loop": {"state_dict": {}, "batch_progress": predict.batch_progress.state_dict()},
    }


def dump_checkpoint(trainer: Any, weights_only: bool = False) -> dict[str, Any]:
    module = trainer.lightning_module
    ckpt: dict[str, Any] = {
        "epoch": trainer.current_epoch,
        "global_step": trainer.global_step,
        "pytorch-lightning_version": FORMAT_VERSION,
        "state_dict": trainer.strategy.module_state_dict(module),
        "loops": loops_state(trainer),
    }
    if not weights_only:
        cb_states = {}
        for cb in trainer.callbacks:
            state = cb.state_dict()
            if state:
                cb_states[cb.state_key] = state
        ckpt["callbacks"] = cb_states
        ckpt["optimizer_states"] = [trainer.strategy.optimizer_state(o) for o in trainer.optimizers]
        ckpt["lr_schedulers"] = [c.scheduler.state_dict() for c in trainer.lr_scheduler_configs]
        precision_state = trainer.strategy.precision_plugin.state_dict()
        if precision_state:
            ckpt[trainer.strategy.precision_plugin.state_key] = precision_state
        dm = trainer.datamodule
        if dm is not None:
            state = dm.state_dict()
            if state:
                ckpt[type(dm).__qualname__] = state
    hp = getattr(module, "_hparams", None)
    if hp:
        ckpt["hparams_name"] = getattr(module, "_hparams_name", None) or "kwargs"
        ckpt["hyper_parameters"] = safe_hparams(hp, type(module).__name__)
    dm = trainer.datamodule
    if dm is not None and getattr(dm, "_hparams", None):
        ckpt["datamodule_hparams_name"] = getattr(dm, "_hparams_name", None) or "kwargs"
        ckpt["datamodule_hyper_parameters"] = safe_hparams(dm._hparams, type(dm).__name__)
    # the save hooks run as a hook of their own (self.log there raises, as Lightning), also
    # when the save happens inside another hook (ModelCheckpoint in on_validation_end)
    results = getattr(trainer, "_results", None)
    outer = results.fx if results is not None else None
    if results is not None:
        results.fx = "on_save_checkpoint"
    try:
        if not weights_only:
            for cb in trainer.callbacks:
                cb.on_save_checkpoint(trainer, module, ckpt)
        # a DataModule keeps its state through state_dict/load_state_dict; Lightning 2.x does
        # not call its on_save_checkpoint/on_load_checkpoint hooks, so neither does the runtime
        module.on_save_checkpoint(ckpt)
    finally:
        if results is not None:
            results.fx = outer
    rng = None if weights_only else trainer._rng_checkpoint_state()
    if rng is not None:
        # A key of its own, outside `loops` (whose state is then exactly Lightning's: its
        # restart tests compare a resumed run's `loops` with an uninterrupted run's, and the
        # random states of two runs differ unless they were seeded alike), added after the save
        # hooks and taken out before the load hooks (`take_rng_state`), so hooks see Lightning's
        # keys; Lightning ignores a top-level key it does not know. Bytes, for `weights_only`.
        # (a new dict: the one the hooks got stays as they saw it)
        ckpt = {**ckpt, RNG_KEY: _rng_to_plain(rng)}
    return ckpt


def take_rng_state(ckpt: dict[str, Any]) -> dict[str, Any] | None:
    """Removes the exact-resume random state from a loaded checkpoint and returns it (files
    written before it had a key of its own carry it in the fit loop's state_dict)."""
    fit_state = ((ckpt.get("loops") or {}).get("fit_loop") or {}).get("state_dict") or {}
    rng = ckpt.pop(RNG_KEY, None) or fit_state.pop(RNG_KEY, None)
    return _rng_from_plain(rng) if rng else None


def load_module_from_checkpoint(
    cls: type,
    path: Any,
    map_location: Any,
    hparams_file: Any,
    strict: bool | None,
    weights_only: bool | None,
    overrides: dict[str, Any],
) -> Any:
    from runtime.datamodule import LightningDataModule

    ckpt = load_file(path, map_location=map_location or "cpu", weights_only=weights_only)
    prefix = "datamodule_" if issubclass(cls, LightningDataModule) else ""
    hparams = dict(ckpt.get(f"{prefix}hyper_parameters") or {})
    if hparams_file is not None and not os.path.exists(hparams_file):
        # as Lightning: the checkpoint's own hyper-parameters are used
        rank_zero_warn(f"Missing Tags: {hparams_file}.", category=RuntimeWarning)
    elif hparams_file is not None:
        import yaml

        with open(hparams_file) as f:
            hparams.update(yaml.safe_load(f) or {})
    kwargs = rebuild_kwargs(cls, hparams, ckpt.get(f"{prefix}hparams_name"), overrides)
    # as Lightning: the hooks see the hyper-parameters the object was built with
    ckpt[f"{prefix}hyper_parameters"] = {**hparams, **overrides}
    try:
        obj = cls(**kwargs)
    except TypeError as e:
        raise TypeError(
            f"Could not rebuild {cls.__name__} from the checkpoint's hyper-parameters "
            f"{sorted(hparams)}: {e}. Pass the missing arguments as keyword arguments to "
            f"`{cls.__name__}.load_from_checkpoint(path, name=value)`."
        ) from e
    from runtime.module import LightningModule

    if isinstance(obj, LightningDataModule):
        state = ckpt.get(type(obj).__qualname__)
        if state:
            obj.load_state_dict(state)
        return obj
    if is_overridden("configure_model", obj, LightningModule):
        obj.configure_model()
    obj.on_load_checkpoint(ckpt)
    strict = obj.strict_loading if strict is None else strict
    result = obj.load_state_dict(ckpt["state_dict"], strict=strict)
    if not strict and (result.missing_keys or result.unexpected_keys):
        warn_once(
            f"Loaded with strict=False: missing keys {result.missing_keys}, unexpected keys "
            f"{result.unexpected_keys}."
        )
    first = next(iter(ckpt["state_dict"].values()), None)
    if isinstance(first, torch.Tensor):
        obj.to(first.device)
    return obj


# ---------------------------------------------------------------------- restore
def resolve_ckpt_path(t: Any, ckpt_path: Any, fn: str) -> str | None:
    """The file that ``ckpt_path`` (a path, ``"best"``, ``"last"``) names, or None.

    ``"last"`` is the newest of ``ModelCheckpoint``'s last file(s) and the files of
    ``OnExceptionCheckpoint`` callbacks, so a run that crashed resumes from where it stopped."""
    if ckpt_path == "best":
        if len(t.checkpoint_callbacks) > 1:
            rank_zero_warn(
                f'`.{fn}(ckpt_path="best")` is called with Trainer configured with multiple '
                "`ModelCheckpoint` callbacks. It will use the best checkpoint path from first "
                "checkpoint callback."
            )
        cb = t.checkpoint_callback
        if cb is None:
            raise ValueError(
                f'`.{fn}(ckpt_path="best")` is set but `ModelCheckpoint` is not configured. Add one, '
                "or pass a path."
            )
        if not getattr(cb, "best_model_path", ""):
            if t.fast_dev_run:
                raise ValueError(
                    f'You cannot execute `.{fn}(ckpt_path="best")` with `fast_dev_run=True`. '
                    f"Please pass an exact checkpoint path to `.{fn}(ckpt_path=...)`"
                )
            raise ValueError(
                f'`.{fn}(ckpt_path="best")` is set but `ModelCheckpoint` is not configured to save '
                "the best model (it has not saved any checkpoint yet). Fit first, or pass a path."
            )
        return cb.best_model_path
    if ckpt_path == "last":
        candidates = {cb.ckpt_path for cb in _on_exception_callbacks(t)}
        for cb in t.checkpoint_callbacks:
            if hasattr(cb, "_find_last_checkpoints"):
                candidates |= cb._find_last_checkpoints(t)
        existing = {p: os.path.getmtime(p) for p in candidates if p and os.path.isfile(p)}
        if not existing:
            rank_zero_warn(
                f'.{fn}(ckpt_path="last") is set, but there is no last checkpoint available. No '
                "checkpoint will be loaded. HINT: Set `ModelCheckpoint(..., save_last=True)`."
            )
            return None
        return max(existing, key=existing.__getitem__)
    if ckpt_path == "hpc":
        raise ValueError("ckpt_path='hpc' (SLURM auto-requeue) is not supported; pass a path.")
    return os.fspath(ckpt_path)


class _CheckpointConnector:
    """``trainer._checkpoint_connector``: the checkpoint steps of a run, by Lightning's names
    (what the file holds, which file ``ckpt_path`` names, restoring from it)."""

    def __init__(self, trainer: Any) -> None:
        self.trainer = trainer
        self._loaded_checkpoint: dict[str, Any] = {}
        self._loaded_rng: dict[str, Any] | None = None

    def dump_checkpoint(self, weights_only: bool | None = None) -> dict[str, Any]:
        return dump_checkpoint(self.trainer, bool(weights_only))

    def resume_start(self, checkpoint_path: Any = None, weights_only: bool | None = None) -> None:
        """Reads ``checkpoint_path`` (nothing without one) for the restore steps."""
        if not checkpoint_path:
            return
        device = self.trainer.strategy.root_device
        self._loaded_checkpoint = load_file(
            checkpoint_path, map_location=device, weights_only=weights_only
        )
        self._loaded_rng = take_rng_state(self._loaded_checkpoint)

    def resume_end(self) -> None:
        self._loaded_checkpoint, self._loaded_rng = {}, None

    # the restore steps by Lightning's names, each on the file read by resume_start
    def restore_model(self) -> None:
        if self._loaded_checkpoint:
            restore_model(self.trainer, self._loaded_checkpoint)

    def restore_datamodule(self) -> None:
        if self._loaded_checkpoint:
            restore_datamodule(self.trainer, self._loaded_checkpoint)

    def restore_callbacks(self) -> None:
        if self._loaded_checkpoint:
            t = self.trainer
            _restore_callbacks(t, t.lightning_module, self._loaded_checkpoint)

    def restore_loops(self) -> None:
        if self._loaded_checkpoint:
            restore_loops(self.trainer, self._loaded_checkpoint)

    def restore_training_state(self) -> None:
        """When fitting: optimizers, schedulers, precision state, loop progress and the
        exact-resume random state; otherwise the running stage's loop progress."""
        ckpt = self._loaded_checkpoint
        if not ckpt:
            return
        if self.trainer.state.fn == "fit":
            restore_training_state(self.trainer, ckpt, self._loaded_rng)
        else:
            self.restore_loops()

    def _restore_modules_and_callbacks(
        self, checkpoint_path: Any = None, weights_only: bool | None = None
    ) -> None:
        """Module weights, data module state and callback states."""
        self.resume_start(checkpoint_path, weights_only)
        if self._loaded_checkpoint:
            restore_module_state(self.trainer, self._loaded_checkpoint)

    def restore(self, checkpoint_path: Any = None, weights_only: bool | None = None) -> None:
        """Everything the file holds: modules and callbacks, then (when fitting) optimizers,
        schedulers and loop progress. A weights-only file cannot restore a training state:
        ``KeyError``, as Lightning."""
        self._restore_modules_and_callbacks(checkpoint_path, weights_only)
        ckpt = self._loaded_checkpoint
        if ckpt and self.trainer.state.fn == "fit":
            restore_training_state(self.trainer, ckpt, self._loaded_rng)
        self.resume_end()

    def _parse_ckpt_path(
        self, state_fn: Any, ckpt_path: Any, model_provided: bool, model_connected: bool
    ) -> str | None:
        """The file ``ckpt_path`` names for ``trainer.<fn>(...)``: none given means the model
        passed as it is, the last file with an ``OnExceptionCheckpoint`` when fitting, or the
        best one of the previous ``fit`` when no model was passed (each with Lightning's
        warning); ``"best"``/``"last"`` as ``resolve_ckpt_path``."""
        t = self.trainer
        fn = getattr(state_fn, "value", state_fn)
        on_exception = _on_exception_callbacks(t)
        hint = (
            f" You can pass `.{fn}(ckpt_path='best')` to use the best model or "
            f"`.{fn}(ckpt_path='last')` to use the last model. If you pass a value, this warning "
            "will be silenced."
        )
        if ckpt_path is None and on_exception and t.state.fn == "fit":
            ckpt_path = "last"
            rank_zero_warn(
                f"`.{fn}(ckpt_path=None)` was called without a model. The last model of the "
                f"previous `fit` call will be used.{hint}"
            )
        if model_provided and ckpt_path is None:
            return None
        if model_connected and ckpt_path is None:
            ckpt_path = "best"
            tip = (
                " There is also an on-exception checkpoint available, however it is used by "
                "default only when fitting."
                if on_exception
                else ""
            )
            rank_zero_warn(
                f"`.{fn}(ckpt_path=None)` was called without a model. The best model of the "
                f"previous `fit` call will be used.{tip}{hint}"
            )
        if ckpt_path in ("best", "last", "hpc"):
            path = resolve_ckpt_path(t, ckpt_path, fn)
            if ckpt_path == "last":
                return path
            ckpt_path = path
        if not ckpt_path:
            raise ValueError(
                f"`.{fn}()` found no path for the best weights: {ckpt_path!r}. Please specify a "
                f"path for a checkpoint `.{fn}(ckpt_path=PATH)`"
            )
        return os.fspath(ckpt_path)


def _on_exception_callbacks(t: Any) -> list[Any]:
    from runtime.callbacks.on_exception_checkpoint import OnExceptionCheckpoint

    return [cb for cb in t.callbacks if isinstance(cb, OnExceptionCheckpoint)]


def _restore_callbacks(t: Any, model: Any, ckpt: dict[str, Any]) -> None:
    """Each callback's ``on_load_checkpoint`` and saved state; a warning names the saved
    states no callback of this Trainer claims (Lightning's)."""
    from runtime.loops.dispatch import calls

    states = ckpt.get("callbacks") or {}
    keys = {cb.state_key for cb in t.callbacks} | {type(cb).__qualname__ for cb in t.callbacks}
    missing = [k for k in states if k not in keys]
    if missing:
        rank_zero_warn(
            "Be aware that when using `ckpt_path`, callbacks used to create the checkpoint "
            "need to be provided during `Trainer` instantiation. Please add the following "
            f"callbacks: {missing}."
        )
    for cb in t.callbacks:
        if calls(cb, "on_load_checkpoint"):
            cb.on_load_checkpoint(t, model, ckpt)
    for cb in t.callbacks:
        state = states.get(cb.state_key)
        if state is None and type(cb).__qualname__ in states:
            state = states[type(cb).__qualname__]
        if state:
            cb.load_state_dict(dict(state))


def restore_model(t: Any, ckpt: dict[str, Any]) -> None:
    """The module's ``on_load_checkpoint`` hook, then its weights."""
    from runtime.loops.dispatch import call_lm

    model = t.lightning_module
    call_lm(t, "on_load_checkpoint", ckpt)
    result = model.load_state_dict(ckpt["state_dict"], strict=model.strict_loading)
    if result is not None and (result.missing_keys or result.unexpected_keys):
        warn_once(
            f"Checkpoint loaded with missing keys {result.missing_keys} and unexpected keys "
            f"{result.unexpected_keys}."
        )


def restore_datamodule(t: Any, ckpt: dict[str, Any]) -> None:
    dm = t.datamodule
    if dm is not None:
        state = ckpt.get(type(dm).__qualname__)
        if state:
            dm.load_state_dict(state)


def restore_module_state(t: Any, ckpt: dict[str, Any]) -> None:
    """Lightning 2.6's order, in every stage: the module (hook, weights), the data module, the
    callbacks (their ``on_load_checkpoint`` hooks and saved states)."""
    restore_model(t, ckpt)
    restore_datamodule(t, ckpt)
    _restore_callbacks(t, t.lightning_module, ckpt)


def restore_loops(t: Any, ckpt: dict[str, Any]) -> None:
    """The progress of the running stage's loop (for ``fit`` also where training goes on)."""
    loops = ckpt.get("loops")
    if loops is None:
        return
    fn = str(getattr(t.state.fn, "value", t.state.fn))
    if fn == "fit":
        _restore_progress(t, ckpt, loops.get("fit_loop") or {})
        return
    loop = {"validate": t.validate_loop, "test": t.test_loop, "predict": t.predict_loop}.get(fn)
    state = loops.get(f"{fn}_loop")
    if loop is not None and state is not None:
        loop.load_state_dict(state)


def restore_training_state(t: Any, ckpt: dict[str, Any], rng: dict[str, Any] | None) -> None:
    """Optimizer, scheduler and precision states, the loop progress, and the exact-resume
    random state ``rng`` (from ``take_rng_state``) when it was saved with this world size."""
    for key, what in (
        ("optimizer_states", "optimizer"),
        ("lr_schedulers", "learning rate scheduler"),
    ):
        if key not in ckpt:
            # as Lightning: a training state cannot be restored from a weights-only file
            raise KeyError(
                f"Trying to restore {what} state but checkpoint contains only the model. This is "
                "probably due to `ModelCheckpoint.save_weights_only` being set to `True`."
            )
    states = ckpt["optimizer_states"]
    if len(states) != len(t.optimizers):
        raise MisconfigurationException(
            f"The checkpoint holds {len(states)} optimizer state(s) but `configure_optimizers` "
            f"returned {len(t.optimizers)} optimizer(s). Resume with the same optimizer setup."
        )
    for opt, state in zip(t.optimizers, states):
        t.strategy.load_optimizer_state(opt, state)
    for cfg, state in zip(t.lr_scheduler_configs, ckpt["lr_schedulers"]):
        cfg.scheduler.load_state_dict(state)
    precision_state = ckpt.get(t.strategy.precision_plugin.state_key)
    if precision_state:
        t.strategy.precision_plugin.load_state_dict(precision_state)
    fit = (ckpt.get("loops") or {}).get("fit_loop") or {}
    _restore_progress(t, ckpt, fit)
    t._resume_rng = rng if rng and rng.get("world_size", 1) == t.world_size else None


def _restore_progress(t: Any, ckpt: dict[str, Any], fit: dict[str, Any]) -> None:
    """Loads the fit loop's progress and decides where training goes on: the next epoch, or
    the batch after the last processed one of the saved epoch (``t._resume_skip``)."""
    loop = t.fit_loop
    epoch = int(ckpt.get("epoch", 0))
    batch_state = fit.get("epoch_loop.batch_progress")
    if fit.get("epoch_progress"):
        loop.load_state_dict(fit)
        epochs = loop.epoch_progress.current
        batches = loop.epoch_loop.batch_progress.current
        is_last = bool((batch_state or {}).get("is_last_batch", True))
        inside = epochs.started > epochs.processed
        after_batch = batches.ready == batches.processed > 0
        # saved while a validation inside the epoch ran (an exception checkpoint): one of its
        # batches started and was not processed (Lightning's "restarted mid-evaluation")
        val = loop.epoch_loop.val_loop.batch_progress
        val_mid = (
            inside
            and after_batch
            and val.total.started == val.total.ready > 0
            and val.total.processed == val.total.started - 1
            and val.total.completed == val.total.processed
        )
        if epochs.ready == epochs.completed:
            # saved between epochs (e.g. after fit returned): all of them are done
            new_epoch, mid = epochs.completed, False
        elif epochs.processed > epochs.completed and (t.max_steps == -1 or is_last):
            # saved at an epoch's end (its hooks): an epoch-based run goes on with the next
            new_epoch, mid = epochs.processed, False
        elif is_last and not val_mid:
            new_epoch, mid = epochs.completed + 1, False
        else:
            # mid-epoch, or an epoch that max_steps cut short and a run with more steps resumes
            new_epoch, mid = epochs.completed, True
        b_processed = batches.processed
        on_batch_end = batches.processed > batches.completed
        # saved inside an epoch's batch loop after a batch (its on_train_batch_end or the
        # validation that follows it), before that batch's step was counted: the count
        # Lightning adds when it restarts there (its loop counts the batch after validation)
        # (resumed mid-validation, the resumed run counts it after finishing the validation)
        from runtime.loops.progress import steps_optimizer

        stepped_there = steps_optimizer(b_processed - 1, t.accumulate_grad_batches, is_last)
        pending = inside and after_batch and stepped_there and not val_mid
        if val_mid:  # the batch that failed is run again
            val.current.reset_on_restart()
    else:  # no loop state (an old file): the epoch it was saved in is done
        new_epoch, mid, b_processed, pending, on_batch_end = epoch + 1, False, 0, False, False
        val_mid = False
    stepped = loop.epoch_loop._batches_that_stepped + (1 if pending else 0)
    for tracker in (loop.epoch_progress.current, loop.epoch_progress.total):
        tracker.ready = tracker.started = new_epoch + (1 if mid else 0)
        tracker.processed = tracker.completed = new_epoch
    # the batches counted are those whose work is done; a resumed epoch re-reads the rest
    bp = loop.epoch_loop.batch_progress
    for tracker in (bp.current, bp.total):
        tracker.ready = tracker.started = tracker.completed = tracker.processed
    # saved in on_train_batch_end mid-epoch: a validation due after that batch did not run
    # before the save; as Lightning, the resumed run does not run it either but counts it
    loop.epoch_loop._val_due_on_resume = mid and on_batch_end
    loop.epoch_loop._val_resume_from = (
        loop.epoch_loop.val_loop.batch_progress.current.completed if val_mid else None
    )
    if mid:
        t._resume_skip = b_processed
    else:
        t._resume_skip = 0
        bp.is_last_batch = False
    loop.epoch_loop._batches_that_stepped = stepped
    t.global_step = int(ckpt.get("global_step", t.global_step))
    # the counters above are where this run goes on: the restart is consumed
    for owner in (loop, loop.epoch_loop, loop.epoch_loop.automatic_optimization):
        owner.restarting = False
    loop.epoch_loop.manual_optimization.restarting = False
    loop._loaded_state = {}
    if t.max_epochs not in (-1, None) and new_epoch > t.max_epochs:
        raise MisconfigurationException(
            f"You restored a checkpoint with current_epoch={new_epoch}, but you have set "
            f"Trainer(max_epochs={t.max_epochs}). Raise max_epochs to train on from it."
        )


def rng_checkpoint_state(t: Any) -> Any:
    if t.state.fn != "fit" or t._data is None or t._data.train_loader is None:
        return None
    now = {"global": collect_rng_states(), "loader": _loader_gen_states(t._data.train_loader)}
    # inside an epoch's batch loop (also at its last batch, before the epoch ends) or in an
    # epoch cut short (max_steps): a run resumed inside that epoch replays its start (the
    # loader's shuffle) from this state
    epochs = t.fit_loop.epoch_progress.current
    batches = t.fit_loop.epoch_loop.batch_progress
    in_epoch = epochs.started > epochs.processed or not batches.is_last_batch
    in_epoch = in_epoch and batches.current.ready > 0
    return {
        "now": now,
        "epoch_start": t._epoch_start_rng if in_epoch else None,
        "world_size": t.world_size,
    }


def _rng_to_plain(obj: Any) -> Any:
    """RNG states with every (1-D) tensor as ``(tag, dtype, bytes)``: plain values that
    ``torch.load(weights_only=True)`` reads and ``==`` compares."""
    if isinstance(obj, torch.Tensor):
        flat = obj.detach().cpu().contiguous().view(-1)
        dtype = str(flat.dtype).rpartition(".")[2]
        return (_TENSOR_TAG, dtype, flat.view(torch.uint8).numpy().tobytes())
    if isinstance(obj, dict):
        return {k: _rng_to_plain(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return type(obj)(_rng_to_plain(v) for v in obj)
    return obj


def _rng_from_plain(obj: Any) -> Any:
    """The inverse of ``_rng_to_plain`` (tensors of an older layout pass through)."""
    if isinstance(obj, tuple) and len(obj) == 3 and obj[0] == _TENSOR_TAG:
        dtype = getattr(torch, obj[1])
        if not obj[2]:
            return torch.empty(0, dtype=dtype)
        return torch.frombuffer(bytearray(obj[2]), dtype=torch.uint8).view(dtype).clone()
    if isinstance(obj, dict):
        return {k: _rng_from_plain(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return type(obj)(_rng_from_plain(v) for v in obj)
    return obj


def _loader_generators(loader: Any) -> list[torch.Generator]:
    from runtime.data import parts

    gens: list[torch.Generator] = []
    for part in parts(loader):
        for obj in (
            part,
            getattr(part, "sampler", None),
            getattr(getattr(part, "batch_sampler", None), "sampler", None),
        ):
            g = getattr(obj, "generator", None)
            if isinstance(g, torch.Generator) and all(g is not x for x in gens):
                gens.append(g)
    return gens


def _loader_gen_states(loader: Any) -> list[torch.Tensor]:
    return [g.get_state() for g in _loader_generators(loader)]


def _set_rng(state: dict[str, Any], loader: Any) -> None:
    set_rng_states(state["global"])
    gens = _loader_generators(loader)
    if len(gens) == len(state["loader"]):
        for g, s in zip(gens, state["loader"]):
            g.set_state(s)
