"""Records the order in which an engine calls user hooks, for comparing ``runtime`` with the
installed Lightning live (``python -m tests.helpers.hook_order lightning|runtime OUT.json``).

Every hook of the module, the data module and a callback is overridden by a recorder that notes
``Owner.hook(key=value, ...)`` when the hook is entered (so a ``training_step`` that runs inside
``optimizer_step``'s closure comes after it) and then runs the engine's own implementation. Key
arguments are the ones that say where the loop is: stage, batch_idx, dataloader_idx. One script:
``fit`` (2 epochs of 2 batches, 1 validation batch, the sanity check and the default checkpoint),
then ``validate``, ``test`` and ``predict`` on the same Trainer.
"""

from __future__ import annotations

import enum
import importlib
import inspect
import json
import sys
import tempfile

import torch
from torch.utils.data import DataLoader, TensorDataset

KEY_ARGS = ("stage", "batch_idx", "dataloader_idx")

# hooks both the module and a callback have (order is irrelevant here: every listed hook is
# overridden, the run decides the order)
_STAGES = ("fit", "train", "validation", "test", "predict")
SHARED_HOOKS = [
    "setup",
    "teardown",
    *(f"on_{s}_{edge}" for s in _STAGES for edge in ("start", "end")),
    *(
        f"on_{s}_{unit}_{edge}"
        for s in _STAGES[1:]
        for unit in ("epoch", "batch")
        for edge in ("start", "end")
    ),
    "on_before_zero_grad",
    "on_before_backward",
    "on_after_backward",
    "on_before_optimizer_step",
    "on_save_checkpoint",
    "on_load_checkpoint",
]
MODULE_HOOKS = [
    *SHARED_HOOKS,
    "configure_callbacks",
    "prepare_data",
    "configure_model",
    *(f"on_{s}_model_{mode}" for s in ("validation", "test") for mode in ("eval", "train")),
    "on_predict_model_eval",
    "optimizer_zero_grad",
    "backward",
    "configure_gradient_clipping",
    "optimizer_step",
    "lr_scheduler_step",
    "on_before_batch_transfer",
    "transfer_batch_to_device",
    "on_after_batch_transfer",
]
CALLBACK_HOOKS = [
    *SHARED_HOOKS,
    "on_sanity_check_start",
    "on_sanity_check_end",
    "state_dict",
    "load_state_dict",
]

DATAMODULE_HOOKS = ["prepare_data", "setup", "teardown", "state_dict", "load_state_dict"]


def _recorded(base: type, owner: str, names: list[str], events: list[str], extra: dict) -> type:
    """A subclass of ``base`` whose hooks ``names`` note their call, then run ``base``'s."""
    namespace: dict = dict(extra)
    for name in names:
        if name in namespace or not callable(getattr(base, name, None)):
            continue
        namespace[name] = _recorder(base, owner, name, events)
    return type(f"Recorded{owner}", (base,), namespace)


def _recorder(base: type, owner: str, name: str, events: list[str]):
    parent = getattr(base, name)
    try:
        params = list(inspect.signature(parent).parameters)[1:]
    except (TypeError, ValueError):
        params = []

    def hook(self, *args, **kwargs):
        bound = dict(zip(params, args), **kwargs)
        shown = ", ".join(f"{k}={_shown(bound[k])}" for k in KEY_ARGS if k in bound)
        events.append(f"{owner}.{name}({shown})")
        return parent(self, *args, **kwargs)

    hook.__name__ = name
    return hook


def _shown(value) -> str:
    """Enums by class name and value (their reprs name the defining module)."""
    if isinstance(value, enum.Enum):
        return f"{type(value).__name__}.{value.name}"
    return repr(value)


def record(engine: str) -> dict[str, list[str]]:
    L = importlib.import_module(engine)
    events: list[str] = []

    def step(name):
        def method(self, batch, batch_idx, *rest):
            events.append(f"LightningModule.{name}(batch_idx={batch_idx!r})")
            (x,) = batch
            out = self.layer(x)
            if name == "predict_step":
                return out
            loss = out.pow(2).mean()
            if name != "training_step":
                self.log(f"{name[:-5]}_loss", loss)
            return loss

        return method

    def configure_optimizers(self):
        events.append("LightningModule.configure_optimizers()")
        optimizer = torch.optim.SGD(self.parameters(), lr=0.1)
        return [optimizer], [torch.optim.lr_scheduler.StepLR(optimizer, 1)]

    def module_init(self):
        L.LightningModule.__init__(self)
        self.layer = torch.nn.Linear(4, 2)

    Module = _recorded(
        L.LightningModule,
        "LightningModule",
        MODULE_HOOKS,
        events,
        {
            "__init__": module_init,
            "training_step": step("training_step"),
            "validation_step": step("validation_step"),
            "test_step": step("test_step"),
            "predict_step": step("predict_step"),
            "configure_optimizers": configure_optimizers,
        },
    )

    def loader(name):
        def method(self):
            events.append(f"LightningDataModule.{name}()")
            data = TensorDataset(torch.randn(8, 4, generator=torch.Generator().manual_seed(0)))
            return DataLoader(data, batch_size=4)

        return method

    DataModule = _recorded(
        L.LightningDataModule,
        "LightningDataModule",
        DATAMODULE_HOOKS,
        events,
        {f"{s}_dataloader": loader(f"{s}_dataloader") for s in ("train", "val", "test", "predict")},
    )
    Callback = _recorded(L.Callback, "Callback", CALLBACK_HOOKS, events, {})

    out: dict[str, list[str]] = {}
    with tempfile.TemporaryDirectory() as root:
        trainer = L.Trainer(
            default_root_dir=root,
            max_epochs=2,
            limit_train_batches=2,
            limit_val_batches=1,
            limit_test_batches=1,
            limit_predict_batches=1,
            accelerator="cpu",
            devices=1,
            logger=False,
            enable_progress_bar=False,
            enable_model_summary=False,
            callbacks=[Callback()],
        )
        model, data = Module(), DataModule()
        for stage in ("fit", "validate", "test", "predict"):
            events.clear()
            getattr(trainer, stage)(model, datamodule=data)
            out[stage] = list(events)
    return out


if __name__ == "__main__":
    engine, path = sys.argv[1], sys.argv[2]
    with open(path, "w") as handle:
        json.dump(record(engine), handle, indent=1)
