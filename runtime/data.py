"""Where each stage's loaders come from, and how many batches each contributes.

Loaders are asked for lazily, in Lightning's order (val before train when a sanity check
runs). Counting never iterates a loader: ``len()`` when it has one, ``inf`` otherwise.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from runtime.errors import MisconfigurationException
from runtime.hooks import DataHooks
from runtime.rank_zero import rank_zero_warn


def overridden(obj: Any, name: str) -> bool:
    from runtime.utilities import is_overridden

    return is_overridden(name, obj, DataHooks)


def _length(loader: Any) -> float:
    try:
        return float(len(loader))
    except (TypeError, NotImplementedError):
        return math.inf


def limited(total: float, limit: int | float, name: str) -> float:
    if isinstance(limit, int):
        return float(min(total, limit))
    if total == math.inf:
        if limit in (0.0, 1.0):
            return 0.0 if limit == 0.0 else math.inf
        raise MisconfigurationException(
            f"`{name}={limit}` is a fraction, but the loader has no length (an IterableDataset?). "
            f"Pass an int number of batches instead."
        )
    n = float(int(total * limit))
    if limit > 0 and n == 0 and total > 0:
        raise MisconfigurationException(
            f"`{name}={limit}` of {int(total)} batches gives 0 batches. Raise it, or use an int."
        )
    return n


def _flatten_eval(loaders: Any, stage: str = "val") -> list[Any]:
    """The loaders of an evaluation stage, one per ``dataloader_idx``: a dict's values, a
    list, a sequential ``CombinedLoader``'s iterables, or one loader (another
    ``CombinedLoader`` mode gives one loader of combined batches)."""
    from runtime.combined_loader import CombinedLoader, _Batches

    if loaders is None:
        return []
    if isinstance(loaders, CombinedLoader):
        if loaders._mode == "sequential":
            return list(loaders.flattened)
        if stage == "predict":
            raise ValueError(
                '`trainer.predict()` only supports the `CombinedLoader(mode="sequential")` '
                f"mode, got {loaders._mode!r}."
            )
        return [_Batches(loaders)]
    if isinstance(loaders, Mapping):
        return list(loaders.values())
    if isinstance(loaders, (list, tuple)):
        return list(loaders)
    return [loaders]


class DataSource:
    """The loaders of one ``fit``/``validate``/``test``/``predict`` call."""

    def __init__(self, trainer: Any, module: Any, datamodule: Any, given: dict[str, Any]) -> None:
        self.trainer = trainer
        self.module = module
        self.datamodule = datamodule
        self.given = given
        self.train_loader: Any = None
        self.eval_loaders: dict[str, list[Any]] = {}
        self.eval_counts: dict[str, list[float]] = {}
        self.current_eval_counts: list[float] = []
        # set by a BatchSizeFinder that set up the loaders of this evaluation stage anew in its
        # on_*_start hook: the running loop takes them instead of those it started with
        self.resized: str | None = None
        self.has_val = self._has_source("val") and overridden_step(module, "validation_step")
        if (
            self._has_source("val")
            and not overridden_step(module, "validation_step")
            and trainer.state.fn == "fit"
            and given.get("val") is not None
        ):
            rank_zero_warn(
                "You passed in a `val_dataloader` but have no `validation_step`. Skipping val loop."
            )

    def _source_of(self, stage: str) -> Any:
        hook = f"{stage}_dataloader"
        if self.datamodule is not None:
            return self.datamodule if overridden(self.datamodule, hook) else None
        return self.module if overridden(self.module, hook) else None

    def _has_source(self, stage: str) -> bool:
        return self.given.get(stage) is not None or self._source_of(stage) is not None

    def _call_hook(self, stage: str) -> Any:
        if self.given.get(stage) is not None:
            return self.given[stage]
        source = self._source_of(stage)
        if source is None:
            where = "the DataModule" if self.datamodule is not None else type(self.module).__name__
            arg = "train_dataloaders" if stage == "train" else "dataloaders"
            raise MisconfigurationException(
                f"No `{stage}_dataloader()` method defined on {where}, and no loader was passed. "
                f"Define `{stage}_dataloader` or pass `{arg}=` to the Trainer call."
            )
        results = self.trainer._results
        if results is not None:
            results.fx = f"{stage}_dataloader"
        return getattr(source, f"{stage}_dataloader")()

    def _prepared(self, stage: str) -> Any:
        from runtime.seed import add_worker_seeding

        loaders = self._call_hook(stage)
        trainer = self.trainer
        if trainer.overfit_batches and (
            stage == "train" or (stage == "val" and trainer.state.fn == "fit")
        ):
            loaders = _map_loaders(loaders, lambda dl: _sequential(dl, stage))
        if trainer.world_size > 1 and trainer.use_distributed_sampler:
            loaders = _map_loaders(loaders, lambda dl: distribute(dl, trainer, stage))
        for dl in _flatten_eval(loaders):
            add_worker_seeding(dl)
        return loaders

    def load_train(self) -> Any:
        trainer = self.trainer
        if trainer.limit_train_batches == 0:  # as Lightning: the hook is not even called
            self.train_loader = None
            trainer.num_training_batches = 0
            return None
        loader = self._prepared("train")
        loader = _train_batches(loader)
        self.train_loader = loader
        total = _length(loader)
        trainer.num_training_batches = limited(
            total, trainer.limit_train_batches, "limit_train_batches"
        )
        return loader

    def load_eval(self, stage: str) -> list[Any]:
        trainer = self.trainer
        limit = {
            "val": trainer.limit_val_batches,
            "test": trainer.limit_test_batches,
            "predict": trainer.limit_predict_batches,
        }[stage]
        # as Lightning: a stage limited to 0 batches never calls its dataloader hook
        loaders = _flatten_eval(self._prepared(stage), stage) if limit != 0 else []
        counts = [limited(_length(dl), limit, f"limit_{stage}_batches") for dl in loaders]
        self.eval_loaders[stage] = loaders
        self.eval_counts[stage] = counts
        if stage == "val":
            trainer.num_val_batches = counts
        elif stage == "test":
            trainer.num_test_batches = counts
        else:
            trainer.num_predict_batches = counts
        return loaders

    def resized_loaders(self, stage: str) -> tuple[list[Any], list[float]] | None:
        """The loaders (and batch counts) a BatchSizeFinder set up anew for ``stage``, once."""
        if self.resized != stage:
            return None
        self.resized = None
        return self.eval_loaders[stage], self.eval_counts[stage]

    def eval_public(self, stage: str) -> Any:
        loaders = self.eval_loaders.get(stage)
        if not loaders:
            return None
        return loaders[0] if len(loaders) == 1 else loaders


class DataConnector:
    """``trainer._data_connector``: attaches a call's loaders or data module to the Trainer (as
    ``trainer._data``, the loaders' source for the loops' ``setup_data``) and runs
    ``prepare_data`` where it belongs. The method names are Lightning's."""

    def __init__(self, trainer: Any) -> None:
        self.trainer = trainer

    def attach_data(
        self,
        model: Any,
        train_dataloaders: Any = None,
        val_dataloaders: Any = None,
        test_dataloaders: Any = None,
        predict_dataloaders: Any = None,
        datamodule: Any = None,
    ) -> None:
        given = {
            "train": train_dataloaders,
            "val": val_dataloaders,
            "test": test_dataloaders,
            "predict": predict_dataloaders,
        }
        self._attach(model, datamodule, {k: v for k, v in given.items() if v is not None})

    def attach_dataloaders(
        self,
        model: Any,
        train_dataloaders: Any = None,
        val_dataloaders: Any = None,
        test_dataloaders: Any = None,
        predict_dataloaders: Any = None,
    ) -> None:
        self.attach_data(
            model, train_dataloaders, val_dataloaders, test_dataloaders, predict_dataloaders
        )

    def attach_datamodule(self, model: Any, datamodule: Any = None) -> None:
        self.attach_data(model, datamodule=datamodule)

    def _attach(self, model: Any, datamodule: Any, given: dict[str, Any]) -> None:
        t = self.trainer
        t.datamodule = datamodule
        if datamodule is not None:
            datamodule.trainer = t
        t._data = DataSource(t, model, datamodule, given)

    def prepare_data(self) -> None:
        """``prepare_data`` of the data module and of the module: once per node (local rank 0),
        or once in all (node 0, local rank 0) when ``prepare_data_per_node=False``."""
        from runtime.loops.dispatch import _dm_overrides, call_lm

        t = self.trainer
        model, dm = t.lightning_module, t.datamodule
        if dm is not None and _dm_overrides(dm, "prepare_data") and self._here(dm):
            dm.prepare_data()
        if model is not None and overridden_step(model, "prepare_data") and self._here(model):
            call_lm(t, "prepare_data")
        if t.world_size > 1:
            t.strategy.barrier("prepare_data")

    def _here(self, obj: Any) -> bool:
        t = self.trainer
        if getattr(obj, "prepare_data_per_node", True):
            return t.local_rank == 0
        return t.node_rank == 0 and t.local_rank == 0


def overridden_step(module: Any, name: str) -> bool:
    from runtime.module import LightningModule
    from runtime.utilities import is_overridden

    return is_overridden(name, module, LightningModule)


def _sequential(loader: Any, stage: str = "train") -> Any:
    """The same DataLoader reading in order (``overfit_batches`` trains and validates on a fixed
    subset): a shuffling or custom sampler is replaced by a ``SequentialSampler``, as Lightning."""
    from torch.utils.data import BatchSampler, DataLoader, SequentialSampler

    if not isinstance(loader, DataLoader) or isinstance(loader.sampler, SequentialSampler):
        return loader
    if type(loader.batch_sampler) not in (BatchSampler, type(None)):
        return loader  # a custom batch sampler decides the order itself
    rank_zero_warn(
        f"You requested to overfit but enabled {stage} dataloader shuffling. We are turning off "
        f"the {stage} dataloader shuffling for you."
    )
    kwargs = loader_kwargs(loader, drop=("generator",))
    return DataLoader(loader.dataset, sampler=SequentialSampler(loader.dataset), **kwargs)


def _train_batches(loader: Any) -> Any:
    """What ``fit`` iterates: a dict/list/tuple of loaders as ``CombinedLoader(...,
    "max_size_cycle")`` (Lightning's default), a ``CombinedLoader`` in its own mode, each
    yielding the combined batches only; any other loader as it is."""
    from runtime.combined_loader import CombinedLoader, _Batches

    if isinstance(loader, (list, tuple, Mapping)):
        loader = CombinedLoader(loader, "max_size_cycle")
    if isinstance(loader, CombinedLoader):
        if loader._mode == "sequential":
            raise ValueError(
                '`trainer.fit()` does not support the `CombinedLoader(mode="sequential")` mode. '
                "The available modes are: ['min_size', 'max_size_cycle', 'max_size']"
            )
        return _Batches(loader)
    return loader


def parts(loader: Any) -> list[Any]:
    """The loaders behind what a stage iterates (those of combined batches, or itself)."""
    from runtime.combined_loader import _Batches

    return list(loader.combined.flattened) if isinstance(loader, _Batches) else [loader]


def _map_loaders(loaders: Any, fn: Any) -> Any:
    from runtime.combined_loader import CombinedLoader

    if isinstance(loaders, CombinedLoader):
        loaders.flattened = [fn(v) for v in loaders.flattened]
        return loaders
    if isinstance(loaders, Mapping):
        return {k: fn(v) for k, v in loaders.items()}
    if isinstance(loaders, (list, tuple)):
        return type(loaders)(fn(v) for v in loaders)
    return fn(loaders)


_LOADER_ARGS = (
    "batch_size",
    "num_workers",
    "collate_fn",
    "pin_memory",
    "drop_last",
    "timeout",
    "worker_init_fn",
    "multiprocessing_context",
    "generator",
    "persistent_workers",
    "pin_memory_device",
)


def loader_kwargs(loader: Any, drop: tuple[str, ...] = ()) -> dict[str, Any]:
    """The settings to build the same DataLoader again with another sampler (less ``drop``)."""
    kwargs = {k: getattr(loader, k) for k in _LOADER_ARGS if k not in drop and hasattr(loader, k)}
    if loader.num_workers > 0:
        kwargs["prefetch_factor"] = loader.prefetch_factor
    return kwargs


def distribute(loader: Any, trainer: Any, stage: str) -> Any:
    """The same DataLoader reading only this rank's share, through a ``DistributedSampler``.

    Unlike Lightning, the user's shuffle choice is kept (``shuffle=False`` stays ordered).
    Every rank gets the same number of samples: the sampler pads by repeating a few samples
    when the dataset does not split evenly (``drop_last=True`` on the loader drops instead).
    """
    from torch.utils.data import (
        DataLoader,
        DistributedSampler,
        IterableDataset,
        RandomSampler,
        SequentialSampler,
    )

    if not isinstance(loader, DataLoader) or isinstance(loader.dataset, IterableDataset):
        return loader
    sampler = loader.sampler
    if isinstance(sampler, DistributedSampler) or isinstance(
        getattr(loader.batch_sampler, "sampler", None), DistributedSampler
    ):
        return loader
    if loader.batch_size is None or not isinstance(sampler, (RandomSampler, SequentialSampler)):
        rank_zero_warn(
            f"The {stage} loader uses a custom sampler or batch sampler "
            f"({type(sampler).__name__}); it is left as it is, so every rank reads the whole "
            "dataset. Give it a DistributedSampler yourself, or set use_distributed_sampler=False "
            "to silence this."
        )
        return loader
    import os

    shuffle = isinstance(sampler, RandomSampler)
    if stage != "train" and shuffle:
        rank_zero_warn(
            f"Your `{stage}_dataloader` has `shuffle=True`; evaluation usually reads "
            "in order. The shuffle is kept."
        )
    dist_sampler = DistributedSampler(
        loader.dataset,
        num_replicas=trainer.world_size,
        rank=trainer.global_rank,
        shuffle=shuffle,
        seed=int(os.environ.get("PL_GLOBAL_SEED", 0)),
        drop_last=loader.drop_last and stage == "train",
    )
    kwargs = loader_kwargs(loader)
    try:
        return type(loader)(loader.dataset, sampler=dist_sampler, **kwargs)
    except TypeError:
        rank_zero_warn(
            f"{type(loader).__name__} cannot be re-created from its arguments; a plain "
            "DataLoader with the same settings is used for the distributed sampler."
        )
        return DataLoader(loader.dataset, sampler=dist_sampler, **kwargs)
