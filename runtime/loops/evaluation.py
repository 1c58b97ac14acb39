"""Validation and test: the evaluation loop (hooks, batches, epoch metrics) used by
``validate``/``test`` and by validation inside ``fit``, and the printed results table.
"""

from __future__ import annotations

import time
from typing import Any

import torch

from runtime.errors import MisconfigurationException
from runtime.loops.dispatch import (
    _accepts,
    _send_to_loggers,
    call_both,
    call_lm,
    overridden,
    profiled_step,
    transfer,
)
from runtime.loops.progress import BatchProgress
from runtime.results import Results
from runtime.utilities import convert_tensors_to_scalars

_EVAL = {
    "val": ("validation", "on_validation_model_eval", "on_validation_model_train"),
    "test": ("test", "on_test_model_eval", "on_test_model_train"),
}


def run_eval_stage(t: Any, fn: str, verbose: bool) -> list[dict[str, float]]:
    stage = "val" if fn == "validate" else "test"
    if not overridden(t.lightning_module, "validation_step" if stage == "val" else "test_step"):
        raise MisconfigurationException(
            f"No `{'validation_step' if stage == 'val' else 'test_step'}()` method defined on "
            f"{type(t.lightning_module).__name__} to run `Trainer.{fn}`."
        )
    if (t.limit_val_batches if stage == "val" else t.limit_test_batches) == 0:
        return []  # as Lightning: no dataloader, no hooks
    loop = t.validate_loop if stage == "val" else t.test_loop
    loaders = loop.setup_data()
    setattr(t, "validating" if stage == "val" else "testing", True)
    logged, owners = loop.run(loaders, t._data.eval_counts[stage], in_fit=False)
    out = _results_per_loader(logged, owners, len(loaders))
    if verbose and t.is_global_zero:
        _print_results(out, "Validate" if stage == "val" else "Test")
    return out


class EvaluationLoop:
    """A validation or test loop: ``trainer.fit_loop.epoch_loop.val_loop`` (validation inside
    ``fit`` and its sanity check), ``trainer.validate_loop`` or ``trainer.test_loop``.

    ``run`` is one evaluation epoch: mode switch, start hooks, one ``_evaluation_step`` per
    batch, epoch-end hooks and metrics. ``batch_progress`` counts the batches of the current run
    and in total (it is saved in checkpoints)."""

    def __init__(self, stage: str = "val") -> None:
        self.stage = stage  # "val" or "test": which hooks and loaders
        self.trainer: Any = None  # set by the Trainer that owns this loop
        self.batch_progress = BatchProgress()
        self._results: Any = None
        self._step_fn: Any = None
        self._takes_idx = True
        self._multi = False

    def state_dict(self) -> dict[str, Any]:
        return {"state_dict": {}, "batch_progress": self.batch_progress.state_dict()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.batch_progress.load_state_dict(state.get("batch_progress") or {})

    def setup_data(self) -> list[Any]:
        """Ask for this loop's loaders (the dataloader hook or what was passed), apply
        ``limit_*_batches`` and set ``trainer.num_{val,test}_batches``."""
        return self.trainer._data.load_eval(self.stage)

    def run(
        self, loaders: list, counts: list, in_fit: bool, resume_from: int = 0
    ) -> tuple[dict[str, Any], dict[str, int | None]]:
        """All of it (hooks included, as Lightning) runs without autograd: ``no_grad`` inside
        ``fit``, ``inference_mode`` for ``validate``/``test`` unless ``inference_mode=False``.
        ``resume_from``: a run interrupted after that many batches (counted over the loaders in
        order) goes on with the next one; its counters go on from the restored ones."""
        t = self.trainer
        grad_ctx = torch.no_grad if in_fit or not t.inference_mode else torch.inference_mode
        with grad_ctx():
            return self._run(loaders, counts, resume_from)

    def _run(
        self, loaders: list, counts: list, resume_from: int = 0
    ) -> tuple[dict[str, Any], dict[str, int | None]]:
        t = self.trainer
        prefix, eval_hook, train_hook = _EVAL[self.stage]
        model = t.lightning_module
        results = Results(self.stage, sync=t._sync_fn()) if not t.barebones else None
        self._multi = len(loaders) > 1
        if results is not None:
            results.multi_dataloader = self._multi
        t._results = self._results = results
        t._data.current_eval_counts = counts
        progress = self.batch_progress
        if not resume_from:
            progress.reset_on_run()
        modes = {m: m.training for m in model.modules()}
        call_lm(t, eval_hook)
        call_both(t, f"on_{prefix}_start")
        resized = t._data.resized_loaders(self.stage)
        if resized is not None:
            loaders, counts = resized
            t._data.current_eval_counts = counts
        call_both(t, f"on_{prefix}_epoch_start")
        self._step_fn = getattr(model, f"{prefix}_step")
        self._takes_idx = _accepts(self._step_fn, "batch_idx", 2)
        if self._multi and not _accepts(self._step_fn, "dataloader_idx", 3):
            raise RuntimeError(
                f"You provided multiple `{self.stage}_dataloader`, but no `dataloader_idx` "
                f"argument in `{type(model).__name__}.{prefix}_step()`. Try adding "
                "`dataloader_idx=0` to its signature."
            )
        done_before = resume_from
        for dl_idx, (loader, count) in enumerate(zip(loaders, counts)):
            if count == 0:
                continue
            if done_before >= count:  # finished before the interruption
                done_before -= count
                continue
            for batch_idx, batch in enumerate(loader):
                if batch_idx < done_before:
                    continue
                progress.is_last_batch = batch_idx + 1 >= count
                self._evaluation_step(batch, batch_idx, dl_idx, None)
                if batch_idx + 1 >= count:
                    break
            done_before = 0
        return self._end(results, modes, train_hook)

    def _evaluation_step(
        self, batch: Any, batch_idx: int, dataloader_idx: int, dataloader_iter: Any = None
    ) -> None:
        """One batch: transfer, ``on_*_batch_start``, the step, ``on_*_batch_end``, its logging."""
        t = self.trainer
        prefix = _EVAL[self.stage][0]
        progress, results = self.batch_progress, self._results
        extra = (dataloader_idx,) if self._multi else ()
        progress.increment_ready()
        batch = transfer(t, batch, dataloader_idx)
        if results is not None:
            results.batch, results.batch_size, results.dataloader_idx = batch, None, dataloader_idx
        progress.increment_started()
        call_both(t, f"on_{prefix}_batch_start", batch, batch_idx, *extra)
        if results is not None:
            results.fx = f"{prefix}_step"
        with t.strategy.precision_plugin.step_context():
            args = (batch, batch_idx) if self._takes_idx else (batch,)
            with profiled_step(t, f"{prefix}_step"):
                out = t.strategy.run_step(t.lightning_module, f"{prefix}_step", *args, *extra)
        progress.increment_processed()
        call_both(t, f"on_{prefix}_batch_end", out, batch, batch_idx, *extra)
        progress.increment_completed()
        if results is not None and not t.sanity_checking:
            _, step_logged, step_bar = results.step_metrics(dataloader_idx if self._multi else None)
            t._pbar_metrics.update(step_bar)  # as Lightning: the progress bar shows them
            # as Lightning: each dataloader has its own step axis in the logger
            counter = (self.stage, dataloader_idx)
            if step_logged:
                t._logged_metrics.update(step_logged)
                step = t._eval_steps.get(counter, 0)
                _send_to_loggers(t, step_logged, step=step, epoch=False)
            t._eval_steps[counter] = t._eval_steps.get(counter, 0) + 1

    def _end(
        self, results: Any, modes: dict, train_hook: str
    ) -> tuple[dict[str, Any], dict[str, int | None]]:
        t = self.trainer
        prefix = _EVAL[self.stage][0]
        model = t.lightning_module
        if results is not None:
            results.dataloader_idx = None  # the epoch hooks log for every dataloader (Lightning)
            results.end_epoch()
        call_both(t, f"on_{prefix}_epoch_end")
        logged: dict[str, Any] = {}
        if results is not None and not t.sanity_checking:
            cb, logged, pb = results.epoch_metrics()
            t._callback_metrics.update(cb)
            t._logged_metrics.update(logged)
            t._pbar_metrics.update(pb)
        call_both(t, f"on_{prefix}_end")
        if overridden(model, train_hook):
            call_lm(t, train_hook)
        else:
            for m, mode in modes.items():
                m.training = mode
        if logged:
            _send_to_loggers(t, logged, step=t._batches_that_stepped)
        owners = results.loaders() if results is not None else {}
        if results is not None:
            results.reset()  # logged torchmetrics start the next epoch empty (reset_results)
        self._results = None
        t._last_val_time = time.monotonic()
        return logged, owners


def _results_per_loader(
    logged: dict[str, Any], owners: dict[str, int | None], n: int
) -> list[dict[str, float]]:
    """One dict per dataloader: what was logged for it, plus what the epoch hooks logged."""
    scalars = convert_tensors_to_scalars(logged)
    if n <= 1:
        return [scalars]
    return [
        {k: v for k, v in scalars.items() if owners.get(k) is None or owners[k] == i}
        for i in range(n)
    ]


def _print_results(results: list[dict[str, float]], title: str) -> None:
    rows = [(k, v) for d in results for k, v in d.items()]
    if not rows:
        return
    w1 = max(len(f"{title} metric"), *(len(k) for k, _ in rows))
    w2 = max(len("DataLoader 0"), *(len(f"{v:.6g}") for _, v in rows))
    line = "─" * (w1 + w2 + 7)
    print(line)
    print(f"  {title + ' metric':<{w1}}   {'DataLoader 0':>{w2}}")
    print(line)
    for k, v in rows:
        print(f"  {k:<{w1}}   {v:>{w2}.6g}")
    print(line, flush=True)
