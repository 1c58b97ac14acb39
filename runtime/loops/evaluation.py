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
    transfer,
)
from runtime.results import Results
from runtime.utilities import convert_tensors_to_scalars

_EVAL = {
    "val": ("validation", "on_validation_model_eval", "on_validation_model_train"),
    "test": ("test", "on_test_model_eval", "on_test_model_train"),
}


def run_eval_stage(t: Any, fn: str, verbose: bool) -> list[dict[str, float]]:
    stage = "val" if fn == "validate" else "test"
    data = t._data
    if not overridden(t.lightning_module, "validation_step" if stage == "val" else "test_step"):
        raise MisconfigurationException(
            f"No `{'validation_step' if stage == 'val' else 'test_step'}()` method defined on "
            f"{type(t.lightning_module).__name__} to run `Trainer.{fn}`."
        )
    if (t.limit_val_batches if stage == "val" else t.limit_test_batches) == 0:
        return []  # as Lightning: no dataloader, no hooks
    loaders = data.load_eval(stage)
    setattr(t, "validating" if stage == "val" else "testing", True)
    logged, owners = run_eval(t, stage, loaders, data.eval_counts[stage], in_fit=False)
    out = _results_per_loader(logged, owners, len(loaders))
    if verbose and t.is_global_zero:
        _print_results(out, "Validate" if stage == "val" else "Test")
    return out


def run_eval(
    t: Any, stage: str, loaders: list, counts: list, in_fit: bool
) -> tuple[dict[str, Any], dict[str, int | None]]:
    """The validation/test block: mode switch, start hooks, batches, epoch-end hooks, metrics.

    All of it (hooks included, as Lightning) runs without autograd: ``no_grad`` inside ``fit``,
    ``inference_mode`` for ``validate``/``test`` unless ``Trainer(inference_mode=False)``."""
    grad_ctx = torch.no_grad if in_fit or not t.inference_mode else torch.inference_mode
    with grad_ctx():
        return _run_eval(t, stage, loaders, counts)


def _loop_state(t: Any, stage: str) -> Any:
    """The loop object whose progress this run counts: fit's ``epoch_loop.val_loop`` (also for
    the sanity check), ``validate_loop`` or ``test_loop``."""
    if stage == "test":
        return t.test_loop
    return t.fit_loop.epoch_loop.val_loop if t.state.fn == "fit" else t.validate_loop


def _run_eval(
    t: Any, stage: str, loaders: list, counts: list
) -> tuple[dict[str, Any], dict[str, int | None]]:
    prefix, eval_hook, train_hook = _EVAL[stage]
    model = t.lightning_module
    sanity = t.sanity_checking
    results = Results(stage, sync=t._sync_fn()) if not t.barebones else None
    results_multi = len(loaders) > 1
    if results is not None:
        results.multi_dataloader = results_multi
    t._results = results
    t._data.current_eval_counts = counts
    loop = _loop_state(t, stage)
    progress = loop.batch_progress
    progress.reset_on_run()
    modes = {m: m.training for m in model.modules()}
    call_lm(t, eval_hook)
    call_both(t, f"on_{prefix}_start")
    call_both(t, f"on_{prefix}_epoch_start")
    step_fn = getattr(model, f"{prefix}_step")
    takes_idx = _accepts(step_fn, "batch_idx", 2)
    if results_multi and not _accepts(step_fn, "dataloader_idx", 3):
        raise RuntimeError(
            f"You provided multiple `{stage}_dataloader`, but no `dataloader_idx` argument in "
            f"`{type(model).__name__}.{prefix}_step()`. Try adding `dataloader_idx=0` to its "
            "signature."
        )
    for dl_idx, (loader, count) in enumerate(zip(loaders, counts)):
        if count == 0:
            continue
        extra = (dl_idx,) if results_multi else ()
        for batch_idx, batch in enumerate(loader):
            progress.increment_ready()
            progress.is_last_batch = batch_idx + 1 >= count
            batch = transfer(t, batch, dl_idx)
            if results is not None:
                results.batch, results.batch_size, results.dataloader_idx = batch, None, dl_idx
            progress.increment_started()
            call_both(t, f"on_{prefix}_batch_start", batch, batch_idx, *extra)
            if results is not None:
                results.fx = f"{prefix}_step"
            with t._precision.step_context():
                args = (batch, batch_idx) if takes_idx else (batch,)
                out = t.strategy.run_step(model, f"{prefix}_step", *args, *extra)
            progress.increment_processed()
            call_both(t, f"on_{prefix}_batch_end", out, batch, batch_idx, *extra)
            progress.increment_completed()
            if results is not None and not sanity:
                _, step_logged, _ = results.step_metrics(dl_idx if results_multi else None)
                # as Lightning: each dataloader has its own step axis in the logger
                counter = (stage, dl_idx)
                if step_logged:
                    t._logged_metrics.update(step_logged)
                    step = t._eval_steps.get(counter, 0)
                    _send_to_loggers(t, step_logged, step=step, epoch=False)
                t._eval_steps[counter] = t._eval_steps.get(counter, 0) + 1
            if batch_idx + 1 >= count:
                break
    if results is not None:
        results.dataloader_idx = None  # the epoch hooks log for every dataloader (as Lightning)
        results.end_epoch()
    call_both(t, f"on_{prefix}_epoch_end")
    logged: dict[str, Any] = {}
    if results is not None and not sanity:
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
        results.reset()  # logged torchmetrics start the next epoch empty (Lightning: reset_results)
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
