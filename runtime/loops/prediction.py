"""``trainer.predict``: the prediction loop and what it keeps for ``BasePredictionWriter``."""

from __future__ import annotations

from typing import Any

import torch

from runtime.loops.progress import Progress
from runtime.rank_zero import warn_once
from runtime.utilities import move_data_to_device

_CPU = torch.device("cpu")


class _IndexRecorder:
    """Wraps a loader's batch sampler and remembers the dataset indices of every batch it
    yields, so a prediction writer can say which samples a prediction belongs to."""

    def __init__(self, batch_sampler: Any) -> None:
        self.batch_sampler = batch_sampler
        self.seen: list[list[int]] = []

    def __iter__(self) -> Any:
        self.seen = []
        for indices in self.batch_sampler:
            self.seen.append(list(indices))
            yield indices

    def __len__(self) -> int:
        return len(self.batch_sampler)

    def __getattr__(self, name: str) -> Any:  # batch_size, drop_last, sampler ...
        return getattr(self.__dict__["batch_sampler"], name)


def _recording(loader: Any) -> Any:
    """The same loader, reading the same batches, with its batch indices recorded; loaders
    that cannot be rebuilt are returned as they are (their indices are then unknown)."""
    from torch.utils.data import DataLoader

    if type(loader) is not DataLoader or loader.batch_sampler is None:
        warn_once(
            f"Couldn't infer the batch indices fetched from your dataloader: "
            f"`{type(loader).__name__}` (prediction writers get `batch_indices=None`)."
        )
        return loader
    from runtime.data import loader_kwargs

    # a batch sampler replaces batch_size/drop_last; everything else is kept
    kwargs = loader_kwargs(loader, drop=("batch_size", "drop_last"))
    return DataLoader(loader.dataset, batch_sampler=_IndexRecorder(loader.batch_sampler), **kwargs)


def _batch_indices(loader: Any, batch_idx: int) -> list[int] | None:
    recorder = getattr(loader, "batch_sampler", None)
    if isinstance(recorder, _IndexRecorder) and batch_idx < len(recorder.seen):
        return recorder.seen[batch_idx]
    return None


class PredictionLoop:
    """``trainer.predict_loop``: runs prediction and keeps, per dataloader, the predictions and
    the batch indices that ``BasePredictionWriter`` callbacks read."""

    def __init__(self) -> None:
        self._predictions: list[list[Any]] = []
        self.epoch_batch_indices: list[list[list[int] | None]] = []
        self.current_batch_indices: list[int] | None = None
        self.return_predictions = True
        self.batch_progress = Progress()
        self.trainer: Any = None  # set by the Trainer that owns this loop

    def setup_data(self) -> list[Any]:
        """Ask for the prediction loaders, apply ``limit_predict_batches`` and set
        ``trainer.num_predict_batches``."""
        return self.trainer._data.load_eval("predict")

    @property
    def num_dataloaders(self) -> int:
        return len(self._predictions)

    @property
    def predictions(self) -> list[Any]:
        """One list per dataloader, or the list itself with a single dataloader."""
        if not self._predictions:
            return []
        return self._predictions[0] if len(self._predictions) == 1 else self._predictions

    def run(self, t: Any, return_predictions: bool) -> Any:
        """Prediction, hooks included, under ``inference_mode`` (``no_grad`` with
        ``Trainer(inference_mode=False)``); ``limit_predict_batches=0`` runs nothing."""
        if t.limit_predict_batches == 0:
            return None
        self.return_predictions = return_predictions
        grad_ctx = torch.inference_mode if t.inference_mode else torch.no_grad
        with grad_ctx():
            return self._run(t)

    def _writers(self, t: Any) -> tuple[bool, bool]:
        from runtime.callbacks.prediction_writer import BasePredictionWriter

        intervals = [cb.interval for cb in t.callbacks if isinstance(cb, BasePredictionWriter)]
        on_batch = any(i in ("batch", "batch_and_epoch") for i in intervals)
        on_epoch = any(i in ("epoch", "batch_and_epoch") for i in intervals)
        return on_batch, on_epoch

    def _run(self, t: Any) -> Any:
        from runtime.loops.dispatch import _accepts, call_both, call_lm, profiled_step, transfer

        data = t._data
        model = t.lightning_module
        t._results = None
        on_batch, on_epoch = self._writers(t)
        loaders = self.setup_data()
        if on_batch or on_epoch:
            loaders = [_recording(dl) for dl in loaders]
        counts = data.eval_counts["predict"]
        data.current_eval_counts = counts
        t.predicting = True
        multi = len(loaders) > 1
        keep = self.return_predictions or on_epoch
        self._predictions = [[] for _ in loaders]
        self.epoch_batch_indices = [[] for _ in loaders]
        self.current_batch_indices = None
        modes = {m: m.training for m in model.modules()}
        call_lm(t, "on_predict_model_eval")
        call_both(t, "on_predict_start")
        resized = data.resized_loaders("predict")
        if resized is not None:
            loaders, counts = resized
            if on_batch or on_epoch:
                loaders = [_recording(dl) for dl in loaders]
            data.current_eval_counts = counts
            self._predictions = [[] for _ in loaders]
            self.epoch_batch_indices = [[] for _ in loaders]
        call_both(t, "on_predict_epoch_start")
        takes_idx = _accepts(model.predict_step, "batch_idx", 2)
        if multi and not _accepts(model.predict_step, "dataloader_idx", 3):
            raise RuntimeError(
                "You provided multiple `predict_dataloader`, but no `dataloader_idx` argument in "
                f"`{type(model).__name__}.predict_step()`. Try adding `dataloader_idx=0` to its "
                "signature."
            )
        progress = self.batch_progress
        progress.reset_on_run()
        for dl_idx, (loader, count) in enumerate(zip(loaders, counts)):
            extra = (dl_idx,) if multi else ()
            if not count:
                continue
            for batch_idx, batch in enumerate(loader):
                progress.increment_ready()
                batch = transfer(t, batch, dl_idx)
                if on_batch or on_epoch:
                    indices = _batch_indices(loader, batch_idx)
                    self.current_batch_indices = indices
                    if on_epoch:
                        self.epoch_batch_indices[dl_idx].append(indices)
                progress.increment_started()
                call_both(t, "on_predict_batch_start", batch, batch_idx, *extra)
                with t.strategy.precision_plugin.step_context():
                    args = (batch, batch_idx) if takes_idx else (batch,)
                    with profiled_step(t, "predict_step"):
                        out = t.strategy.run_step(model, "predict_step", *args, *extra)
                if out is None:
                    warn_once("predict returned None if it was on purpose, ignore this warning...")
                progress.increment_processed()
                call_both(t, "on_predict_batch_end", out, batch, batch_idx, *extra)
                progress.increment_completed()
                if keep:  # on the CPU, as Lightning, so a long run does not fill the GPU
                    self._predictions[dl_idx].append(move_data_to_device(out, _CPU))
                if batch_idx + 1 >= count:
                    break
        call_both(t, "on_predict_epoch_end")
        call_both(t, "on_predict_end")
        for m, mode in modes.items():
            m.training = mode
        out = self.predictions if self.return_predictions else None
        if not self.return_predictions:
            self._predictions = []
        self.epoch_batch_indices = []
        return out
