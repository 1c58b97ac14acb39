"""``self.log``: per-hook defaults, step/epoch forking, batch-size-weighted epoch reduction.

One ``Results`` object per running stage collects what the hooks log. It keeps only
references on the per-step path (no ``.item()``, no host sync); values are turned into
floats when a logger or the progress bar actually reads them.
"""

from __future__ import annotations

import sys
from typing import Any

import torch

from runtime.errors import MisconfigurationException
from runtime.rank_zero import warn_once
from runtime.utilities import extract_batch_size

_STEP_HOOKS = [
    "training_step",
    "on_train_batch_start",
    "on_train_batch_end",
    "on_before_backward",
    "backward",
    "on_after_backward",
    "on_before_optimizer_step",
    "optimizer_step",
    "configure_gradient_clipping",
    "clip_gradients",
    "on_before_zero_grad",
    "optimizer_zero_grad",
]
_EVAL_STEP_HOOKS = [
    "validation_step",
    "test_step",
    "on_validation_batch_start",
    "on_validation_batch_end",
    "on_test_batch_start",
    "on_test_batch_end",
]
_EPOCH_HOOKS = [
    "on_train_start",
    "on_train_epoch_start",
    "on_train_epoch_end",
    "on_validation_start",
    "on_validation_epoch_start",
    "on_validation_epoch_end",
    "on_test_start",
    "on_test_epoch_start",
    "on_test_epoch_end",
]

# hook -> (default on_step, default on_epoch, on_step allowed values, on_epoch allowed values)
FX_RULES: dict[str, tuple[bool, bool, tuple[bool, ...], tuple[bool, ...]]] = {}
for _fx in _STEP_HOOKS:
    FX_RULES[_fx] = (True, False, (False, True), (False, True))
for _fx in _EVAL_STEP_HOOKS:
    FX_RULES[_fx] = (False, True, (False, True), (False, True))
for _fx in _EPOCH_HOOKS:
    FX_RULES[_fx] = (False, True, (False,), (True,))

_REDUCE = {"mean": "mean", "avg": "mean", "sum": "sum", "max": "max", "min": "min"}


def _reduce_name(reduce_fx: Any) -> str:
    if isinstance(reduce_fx, str) and reduce_fx.lower() in _REDUCE:
        return _REDUCE[reduce_fx.lower()]
    for fn, name in (
        (torch.mean, "mean"),
        (torch.sum, "sum"),
        (torch.max, "max"),
        (torch.min, "min"),
        (sum, "sum"),
        (max, "max"),
        (min, "min"),
    ):
        if reduce_fx is fn:
            return name
    raise MisconfigurationException(
        "Only `self.log(..., reduce_fx={min,max,mean,sum})` are supported (as a string or the "
        "torch function). If you need a custom reduction, please log a `torchmetrics.Metric` "
        f"instance instead. Found: {reduce_fx!r}"
    )


def _is_metric(value: Any) -> bool:
    tm = sys.modules.get("torchmetrics")
    return tm is not None and isinstance(value, tm.Metric)


class _Entry:
    """One logged key in one hook."""

    __slots__ = (
        "name",
        "fx",
        "on_step",
        "on_epoch",
        "prog_bar",
        "logger",
        "reduce",
        "args",
        "value",
        "vals",
        "sizes",
        "total",
        "count",
        "metric",
        "sync",
        "dl_idx",
        "step_name",
        "epoch_name",
        "computed",
        "loader",
    )

    def __init__(self, name, fx, on_step, on_epoch, prog_bar, logger, reduce, args, sync, dl_idx):
        self.name, self.fx = name, fx
        self.on_step, self.on_epoch = on_step, on_epoch
        self.prog_bar, self.logger, self.reduce, self.args = prog_bar, logger, reduce, args
        self.sync, self.dl_idx = sync, dl_idx
        # `name` holds the dataloader suffix; the _step/_epoch fork goes before it, as Lightning
        # names them: "loss_epoch/dataloader_idx_0"
        suffix = f"/dataloader_idx_{dl_idx}" if dl_idx is not None else ""
        base = name[: len(name) - len(suffix)] if suffix else name
        forked = on_step and on_epoch
        self.step_name = f"{base}_step{suffix}" if forked else name
        self.epoch_name = f"{base}_epoch{suffix}" if forked else name
        self.value: Any = None
        self.metric: Any = None
        self.loader: int | None = None  # the eval dataloader it was logged for (None: epoch hooks)
        self.reset()

    def reset(self) -> None:
        self.vals: list = []
        self.sizes: list = []
        self.total: Any = None
        self.count = 0
        self.computed: Any = None

    def add(self, value: Any, batch_size: int) -> None:
        vals = self.vals
        vals.append(value)
        self.sizes.append(batch_size)
        if len(vals) >= 512:
            self._fold()

    def _fold(self) -> None:
        if not self.vals:
            return
        stacked = torch.stack([torch.as_tensor(v, dtype=torch.float64) for v in self.vals])
        if self.reduce == "mean":
            w = torch.tensor(self.sizes, dtype=torch.float64, device=stacked.device)
            part, self.count = (stacked * w).sum(), self.count + sum(self.sizes)
        elif self.reduce == "sum":
            part = stacked.sum()
        elif self.reduce == "max":
            part = stacked.max()
        else:
            part = stacked.min()
        if self.total is None:
            self.total = part
        elif self.reduce in ("mean", "sum"):
            self.total = self.total + part
        elif self.reduce == "max":
            self.total = torch.maximum(self.total, part)
        else:
            self.total = torch.minimum(self.total, part)
        self.vals, self.sizes = [], []

    def compute(self, sync: Any = None) -> Any:
        """The epoch value; with ``sync`` (distributed ``sync_dist=True``) reduced over ranks, the
        mean as synced sum over synced count so it equals the single-process weighted mean.

        Kept until the next value is added: a later read (a callback on rank 0 only) then needs
        no collective call, which would wait forever for the other ranks."""
        if self.computed is None:
            self.computed = self._compute(sync)
        return self.computed

    def _compute(self, sync: Any) -> Any:
        if self.metric is not None:
            return self.metric.compute()
        self._fold()
        if self.total is None:
            return None
        total, count = self.total, self.count
        if sync is not None:
            if self.reduce == "mean":
                total = sync(total, "sum")
                count = sync(
                    torch.tensor(float(count), dtype=torch.float64, device=total.device), "sum"
                )
            else:
                total = sync(total, self.reduce)
        out = total / count if self.reduce == "mean" else total
        return out.to(torch.get_default_dtype())


def _lightning_key(e: _Entry) -> str:
    suffix = f"/dataloader_idx_{e.dl_idx}" if e.dl_idx is not None else ""
    name = e.name[: len(e.name) - len(suffix)] if suffix else e.name
    return f"{e.fx}.{name}" if e.dl_idx is None else f"{e.fx}.{name}.{e.dl_idx}"


class _Accumulated:
    """A read-only view of one logged value's accumulation, with Lightning's field names:
    ``value`` (the running sum of value x batch size for a mean, the running sum / max / min
    otherwise; the latest value when logged on step only) and ``cumulated_batch_size``."""

    def __init__(self, entry: _Entry) -> None:
        self._entry = entry

    @property
    def value(self) -> Any:
        e = self._entry
        if e.metric is not None or not e.on_epoch:
            return e.value
        e._fold()
        return None if e.total is None else e.total.to(torch.get_default_dtype())

    @property
    def cumulated_batch_size(self) -> int:
        e = self._entry
        e._fold()
        return e.count if e.reduce == "mean" else 0


class Results:
    """What the hooks of one stage logged. ``fx`` is the hook that is running now."""

    def __init__(self, stage: str, sync: Any = None) -> None:
        self.stage = stage
        self.entries: dict[tuple[str, str], _Entry] = {}
        self.fx: str | None = None
        self.batch: Any = None
        self.batch_size: int | None = None
        self.dataloader_idx: int | None = None
        self.multi_dataloader = False
        self.sync = sync  # callable(tensor, reduce_name) -> tensor, set by distributed strategies
        # True from the end of the batch loop until ``reset``: reading ``callback_metrics`` then
        # gives the epoch values (Lightning computes them live in ``on_*_epoch_end``)
        self.epoch_ended = False

    # ------------------------------------------------------------------ logging
    def log(
        self,
        name: str,
        value: Any,
        prog_bar: bool,
        logger: bool | None,
        on_step: bool | None,
        on_epoch: bool | None,
        reduce_fx: Any,
        enable_graph: bool,
        sync_dist: bool,
        add_dataloader_idx: bool,
        batch_size: int | None,
        device: Any = None,
    ) -> None:
        fx = self.fx
        dl_idx = self.dataloader_idx if self.multi_dataloader and add_dataloader_idx else None
        key = (fx, name) if dl_idx is None else (fx, f"{name}/dataloader_idx_{dl_idx}")
        args = (prog_bar, logger, on_step, on_epoch, reduce_fx, sync_dist)
        entry = self.entries.get(key)
        if entry is not None and entry.args != args:
            raise MisconfigurationException(
                f"You called `self.log({name}, ...)` twice in `{fx}` with different arguments. "
                "This is not allowed"
            )
        if entry is None:
            entry = self._new_entry(key, name, args, dl_idx)
        entry.computed = None
        entry.loader = self.dataloader_idx if self.multi_dataloader else None
        if isinstance(value, torch.Tensor):
            if not enable_graph:
                value = value.detach()
            if value.numel() != 1:
                raise ValueError(
                    f"`self.log({name}, {value})` was called, but the tensor must have a single "
                    f"element (its shape is {tuple(value.shape)}). Reduce it first, e.g. "
                    "`value.mean()`."
                )
            if not value.is_floating_point():
                warn_once(f"self.log({name!r}) got a {value.dtype} tensor; it is cast to float.")
                value = value.to(torch.get_default_dtype())
        elif _is_metric(value):
            entry.metric = value
            value = getattr(value, "_forward_cache", None)
        else:  # a Python number (``LightningModule.log`` has refused anything else)
            # as Lightning: it becomes a tensor of the default dtype on the module's device, so
            # callbacks and `callback_metrics` always see tensors
            value = torch.tensor(float(value), dtype=torch.get_default_dtype(), device=device)
        # the step value shown/logged is reduced over ranks now; the epoch accumulator keeps the
        # local value and is reduced once, at epoch end (synced sum / synced count)
        if (
            sync_dist
            and self.sync is not None
            and entry.on_step
            and isinstance(value, torch.Tensor)
        ):
            entry.value = self.sync(value, entry.reduce)
        else:
            entry.value = value
        if entry.on_epoch and entry.metric is None and value is not None:
            if entry.reduce == "mean":
                if batch_size is None:
                    batch_size = self.batch_size
                    if batch_size is None:
                        batch_size = (
                            self._infer_batch_size() if isinstance(value, torch.Tensor) else 1
                        )
                entry.add(value, batch_size)
            else:
                entry.add(value, 1)

    def _infer_batch_size(self) -> int:
        self.batch_size = 1 if self.batch is None else extract_batch_size(self.batch)
        return self.batch_size

    def _new_entry(
        self, key: tuple[str, str], name: str, args: tuple, dl_idx: int | None
    ) -> _Entry:
        prog_bar, logger, on_step, on_epoch, reduce_fx, sync_dist = args
        fx = key[0]
        rules = FX_RULES.get(fx)
        if rules is None:
            raise MisconfigurationException(
                f"You can't `self.log()` inside `{fx}`. Log from a step or epoch hook (e.g. "
                "`training_step`, `validation_step`, `on_train_epoch_end`)."
            )
        d_step, d_epoch, ok_step, ok_epoch = rules
        on_step = d_step if on_step is None else bool(on_step)
        on_epoch = d_epoch if on_epoch is None else bool(on_epoch)
        # the wording is Lightning's (tests and users match on it); the key is added after it
        if on_step not in ok_step:
            raise MisconfigurationException(
                f"You can't `self.log(on_step={on_step})` inside `{fx}`, must be one of "
                f"{ok_step}. (key {name!r})"
            )
        if on_epoch not in ok_epoch:
            raise MisconfigurationException(
                f"You can't `self.log(on_epoch={on_epoch})` inside `{fx}`, must be one of "
                f"{ok_epoch}. (key {name!r})"
            )
        if not on_step and not on_epoch:
            raise MisconfigurationException(
                f"`self.log({name!r}, on_step=False, on_epoch=False)` is not useful: the value would "
                "never be recorded. Set one of them to True."
            )
        if "/dataloader_idx_" in name and dl_idx is not None:
            raise MisconfigurationException(
                f"self.log({name!r}): the name already holds a dataloader suffix; use "
                "`add_dataloader_idx=False` to keep your own."
            )
        entry = _Entry(
            key[1],
            fx,
            on_step,
            on_epoch,
            bool(prog_bar),
            True if logger is None else bool(logger),
            _reduce_name(reduce_fx),
            args,
            sync_dist,
            dl_idx,
        )
        self.entries[key] = entry
        return entry

    # ------------------------------------------------------------------ views
    def __getitem__(self, key: str) -> _Accumulated:
        """``trainer._results["<hook>.<name>[.<dataloader_idx>]"]``, Lightning's key: the
        accumulated state of one logged value (``value``, ``cumulated_batch_size``)."""
        for e in self.entries.values():
            if _lightning_key(e) == key:
                return _Accumulated(e)
        raise KeyError(key)

    def __contains__(self, key: object) -> bool:
        return any(_lightning_key(e) == key for e in self.entries.values())

    def keys(self) -> list[str]:
        return [_lightning_key(e) for e in self.entries.values()]

    def step_metrics(self, loader: int | None = None) -> tuple[dict, dict, dict]:
        """(callback, logged, progress bar) values of on_step entries, latest value each; with
        ``loader``, only those logged for that eval dataloader."""
        cb, lg, pb = {}, {}, {}
        for e in self.entries.values():
            if not e.on_step or e.value is None:
                continue
            if loader is not None and e.loader not in (None, loader):
                continue
            v = e.value
            if self.stage == "train":
                cb[e.name] = v
                cb[e.step_name] = v
            if e.logger:
                lg[e.step_name] = v
            if e.prog_bar:
                pb[e.step_name] = v
        return cb, lg, pb

    def loaders(self) -> dict[str, int | None]:
        """For each epoch value's name, the eval dataloader it was logged for (None: logged in an
        epoch hook, so it belongs to every dataloader's results)."""
        return {e.epoch_name: e.loader for e in self.entries.values() if e.on_epoch}

    def end_epoch(self) -> None:
        """The batch loop is over: computes every epoch value now, on every rank at the same
        point (the only place where distributed reductions run), so reading them later is local.

        The epoch hooks log with no batch (a mean weighs their values by 1), as Lightning."""
        self.epoch_ended = True
        self.batch, self.batch_size = None, None
        for e in list(self.entries.values()):
            if e.on_epoch:
                e.compute(self.sync if e.sync else None)

    def epoch_metrics(self, live: bool = False) -> tuple[dict, dict, dict]:
        """(callback, logged, progress bar) epoch values. ``live`` (a read from user code or a
        callback, maybe on one rank only) leaves out values that would need the other ranks
        and are not computed yet (logged after ``end_epoch``); the loop's own read has them."""
        cb, lg, pb = {}, {}, {}
        distributed = self.sync is not None
        for e in self.entries.values():
            if not e.on_epoch:
                continue
            if live and distributed and e.computed is None and (e.sync or e.metric is not None):
                continue
            v = e.compute(self.sync if e.sync else None)
            if v is None:
                continue
            cb[e.name] = v
            cb[e.epoch_name] = v
            if e.logger:
                lg[e.epoch_name] = v
            if e.prog_bar:
                pb[e.epoch_name] = v
        return cb, lg, pb

    def reset(self) -> None:
        """End of an epoch (or of the sanity check): accumulators and every logged torchmetrics
        ``Metric`` start again, as Lightning's ``reset_results``."""
        for e in self.entries.values():
            if e.metric is not None:
                e.metric.reset()
            e.reset()
            e.value = None
        self.epoch_ended = False
