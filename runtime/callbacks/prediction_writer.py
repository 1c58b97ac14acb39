"""``BasePredictionWriter``: write predictions out as they are made (per batch or per epoch)
instead of keeping them all in memory."""

from __future__ import annotations

from typing import Any

from runtime.callbacks.base import Callback

_INTERVALS = ("batch", "epoch", "batch_and_epoch")


class BasePredictionWriter(Callback):
    """Subclass it and implement ``write_on_batch_end`` and/or ``write_on_epoch_end``.

    ``batch_indices`` are the dataset indices of each batch, as the loader's sampler gave them
    (``None`` where the loader has no batch sampler, e.g. an ``IterableDataset``).

    Args:
        write_interval: ``"batch"``, ``"epoch"`` or ``"batch_and_epoch"``.
    """

    def __init__(self, write_interval: str = "batch") -> None:
        if write_interval not in _INTERVALS:
            raise ValueError(
                f"BasePredictionWriter(write_interval={write_interval!r}): allowed are "
                f"{', '.join(map(repr, _INTERVALS))}."
            )
        self.interval = write_interval

    def write_on_batch_end(
        self,
        trainer: Any,
        pl_module: Any,
        prediction: Any,
        batch_indices: Any,
        batch: Any,
        batch_idx: int,
        dataloader_idx: int,
    ) -> None:
        raise NotImplementedError(
            f"{type(self).__name__} writes per batch but does not implement `write_on_batch_end`."
        )

    def write_on_epoch_end(
        self, trainer: Any, pl_module: Any, predictions: Any, batch_indices: Any
    ) -> None:
        raise NotImplementedError(
            f"{type(self).__name__} writes per epoch but does not implement `write_on_epoch_end`."
        )

    def on_predict_batch_end(
        self,
        trainer: Any,
        pl_module: Any,
        outputs: Any,
        batch: Any,
        batch_idx: int,
        dataloader_idx: int = 0,
    ) -> None:
        if self.interval in ("batch", "batch_and_epoch"):
            indices = trainer.predict_loop.current_batch_indices
            self.write_on_batch_end(
                trainer, pl_module, outputs, indices, batch, batch_idx, dataloader_idx
            )

    def on_predict_epoch_end(self, trainer: Any, pl_module: Any) -> None:
        if self.interval in ("epoch", "batch_and_epoch"):
            predictions = trainer.predict_loop.predictions
            indices = trainer.predict_loop.epoch_batch_indices
            self.write_on_epoch_end(trainer, pl_module, predictions, indices)
