"""The hook surface shared by LightningModule and LightningDataModule (defaults only).

The trainer decides when each hook runs (``runtime.loops``); this module owns what a hook does
when the user does not override it.
"""

from __future__ import annotations

from typing import Any

import torch

from runtime.utilities import move_data_to_device


class ModelHooks:
    """Hooks the trainer calls on a LightningModule; every default does nothing."""

    def on_fit_start(self) -> None: ...
    def on_fit_end(self) -> None: ...
    def on_train_start(self) -> None: ...
    def on_train_end(self) -> None: ...
    def on_validation_start(self) -> None: ...
    def on_validation_end(self) -> None: ...
    def on_test_start(self) -> None: ...
    def on_test_end(self) -> None: ...
    def on_predict_start(self) -> None: ...
    def on_predict_end(self) -> None: ...

    def on_train_batch_start(self, batch: Any, batch_idx: int) -> int | None: ...
    def on_train_batch_end(self, outputs: Any, batch: Any, batch_idx: int) -> None: ...

    def on_validation_batch_start(
        self, batch: Any, batch_idx: int, dataloader_idx: int = 0
    ) -> None: ...
    def on_validation_batch_end(
        self, outputs: Any, batch: Any, batch_idx: int, dataloader_idx: int = 0
    ) -> None: ...
    def on_test_batch_start(self, batch: Any, batch_idx: int, dataloader_idx: int = 0) -> None: ...
    def on_test_batch_end(
        self, outputs: Any, batch: Any, batch_idx: int, dataloader_idx: int = 0
    ) -> None: ...
    def on_predict_batch_start(
        self, batch: Any, batch_idx: int, dataloader_idx: int = 0
    ) -> None: ...
    def on_predict_batch_end(
        self, outputs: Any, batch: Any, batch_idx: int, dataloader_idx: int = 0
    ) -> None: ...

    def on_validation_model_zero_grad(self) -> None:
        self.zero_grad()  # type: ignore[attr-defined]  # torch >= 2.0: set_to_none by default

    def on_validation_model_eval(self) -> None:
        self.trainer.model.eval()  # type: ignore[attr-defined]

    def on_validation_model_train(self) -> None:
        self.trainer.model.train()  # type: ignore[attr-defined]

    def on_test_model_eval(self) -> None:
        self.trainer.model.eval()  # type: ignore[attr-defined]

    def on_test_model_train(self) -> None:
        self.trainer.model.train()  # type: ignore[attr-defined]

    def on_predict_model_eval(self) -> None:
        self.trainer.model.eval()  # type: ignore[attr-defined]

    def on_train_epoch_start(self) -> None: ...
    def on_train_epoch_end(self) -> None: ...
    def on_validation_epoch_start(self) -> None: ...
    def on_validation_epoch_end(self) -> None: ...
    def on_test_epoch_start(self) -> None: ...
    def on_test_epoch_end(self) -> None: ...
    def on_predict_epoch_start(self) -> None: ...
    def on_predict_epoch_end(self) -> None: ...

    def on_before_zero_grad(self, optimizer: torch.optim.Optimizer) -> None: ...
    def on_before_backward(self, loss: torch.Tensor) -> None: ...
    def on_after_backward(self) -> None: ...
    def on_before_optimizer_step(self, optimizer: torch.optim.Optimizer) -> None: ...

    def configure_model(self) -> None: ...
    def configure_sharded_model(self) -> None: ...


class DataHooks:
    """Data hooks shared by LightningModule and LightningDataModule."""

    prepare_data_per_node: bool = True
    allow_zero_length_dataloader_with_multiple_devices: bool = False

    def prepare_data(self) -> None: ...
    def setup(self, stage: str) -> None: ...
    def teardown(self, stage: str) -> None: ...

    def train_dataloader(self) -> Any:
        raise NotImplementedError(
            f"`train_dataloader` is not implemented on {type(self).__name__}. Define it, or pass "
            "`train_dataloaders=` to `Trainer.fit`."
        )

    def val_dataloader(self) -> Any:
        raise NotImplementedError(f"`val_dataloader` is not implemented on {type(self).__name__}.")

    def test_dataloader(self) -> Any:
        raise NotImplementedError(f"`test_dataloader` is not implemented on {type(self).__name__}.")

    def predict_dataloader(self) -> Any:
        raise NotImplementedError(
            f"`predict_dataloader` is not implemented on {type(self).__name__}."
        )

    def transfer_batch_to_device(
        self, batch: Any, device: torch.device, dataloader_idx: int
    ) -> Any:
        return move_data_to_device(batch, device)

    def on_before_batch_transfer(self, batch: Any, dataloader_idx: int) -> Any:
        return batch

    def on_after_batch_transfer(self, batch: Any, dataloader_idx: int) -> Any:
        return batch


class CheckpointHooks:
    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None: ...
    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None: ...
