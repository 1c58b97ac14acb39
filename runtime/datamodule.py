"""``LightningDataModule``: the data side of a project (download, split, loaders)."""

from __future__ import annotations

import inspect
import os
from collections.abc import Mapping
from typing import Any

from runtime.hooks import CheckpointHooks, DataHooks
from runtime.hparams import HyperparametersMixin
from runtime.module import _ClassOnly


class LightningDataModule(HyperparametersMixin, DataHooks, CheckpointHooks):
    """The data side of a run: ``prepare_data``/``setup`` and the four dataloader hooks, kept
    apart from the model so one module trains on several datasets and the reverse."""

    name: str | None = None
    CHECKPOINT_HYPER_PARAMS_KEY = "datamodule_hyper_parameters"
    CHECKPOINT_HYPER_PARAMS_NAME = "datamodule_hparams_name"
    CHECKPOINT_HYPER_PARAMS_TYPE = "datamodule_hparams_type"

    def __init__(self) -> None:
        super().__init__()
        self.trainer: Any = None

    def __str__(self) -> str:
        """One line per stage with the size of each loader's dataset, ``None`` where the hook
        gives no loader yet (e.g. before ``setup``); Lightning's format."""
        from collections.abc import Sized

        from torch.utils.data import DataLoader

        def size(loader: Any) -> str:
            data = loader.dataset
            return str(len(data)) if isinstance(data, Sized) else "NA"

        lines = []
        for label, hook in (
            ("Train dataloader", "train_dataloader"),
            ("Validation dataloader", "val_dataloader"),
            ("Test dataloader", "test_dataloader"),
            ("Predict dataloader", "predict_dataloader"),
        ):
            try:
                loaders = getattr(self, hook)()
            except Exception:
                loaders = None
            if isinstance(loaders, DataLoader):
                text = f"size={size(loaders)}"
            elif isinstance(loaders, (list, tuple, dict)) and loaders:
                items = loaders.values() if isinstance(loaders, dict) else loaders
                text = " ; ".join(
                    f"{i}. size={size(dl)}" if isinstance(dl, DataLoader) else "None"
                    for i, dl in enumerate(items, start=1)
                )
            else:
                text = "None"
            lines.append(f"{{{label}: {text}}}")
        return os.linesep.join(lines)

    def state_dict(self) -> dict[str, Any]:
        return {}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None: ...

    def on_exception(self, exception: BaseException) -> None: ...

    @classmethod
    def from_datasets(
        cls,
        train_dataset: Any = None,
        val_dataset: Any = None,
        test_dataset: Any = None,
        predict_dataset: Any = None,
        batch_size: int = 1,
        num_workers: int = 0,
        **datamodule_kwargs: Any,
    ) -> LightningDataModule:
        """A DataModule whose loaders wrap the given datasets (lists/dicts of datasets allowed)."""
        from torch.utils.data import DataLoader, IterableDataset

        def loaders(ds: Any, shuffle: bool) -> Any:
            if isinstance(ds, Mapping):
                return {k: loaders(v, shuffle) for k, v in ds.items()}
            if isinstance(ds, (list, tuple)):
                return [loaders(d, shuffle) for d in ds]
            return DataLoader(
                ds,
                batch_size=batch_size,
                num_workers=num_workers,
                shuffle=shuffle and not isinstance(ds, IterableDataset),
            )

        # batch_size / num_workers also reach __init__ when it names them (or takes **kwargs)
        params = inspect.signature(cls.__init__).parameters.values()
        special = {"batch_size": batch_size, "num_workers": num_workers}
        if not any(p.kind is p.VAR_KEYWORD for p in params):
            names = {p.name for p in params}
            special = {k: v for k, v in special.items() if k in names}
        dm = cls(**datamodule_kwargs, **special)
        for stage, ds, shuffle in (
            ("train", train_dataset, True),
            ("val", val_dataset, False),
            ("test", test_dataset, False),
            ("predict", predict_dataset, False),
        ):
            if ds is not None:
                setattr(
                    dm, f"{stage}_dataloader", lambda ds=ds, shuffle=shuffle: loaders(ds, shuffle)
                )
        return dm

    @_ClassOnly
    def load_from_checkpoint(
        cls,
        checkpoint_path: Any,
        map_location: Any = None,
        hparams_file: Any = None,
        weights_only: bool | None = None,
        **kwargs: Any,
    ) -> Any:
        from runtime.checkpoint import load_file
        from runtime.hparams import rebuild_kwargs

        ckpt = load_file(checkpoint_path, map_location or "cpu", weights_only)
        hp = dict(ckpt.get("datamodule_hyper_parameters") or {})
        if hparams_file is not None:
            import yaml

            with open(hparams_file) as f:
                hp.update(yaml.safe_load(f) or {})
        dm = cls(**rebuild_kwargs(cls, hp, ckpt.get("datamodule_hparams_name"), kwargs))
        state = ckpt.get(cls.__qualname__)
        if state:
            dm.load_state_dict(state)
        return dm
