"""``WandbLogger``: metrics, hyperparameters, media and (optionally) checkpoints in a Weights &
Biases run.

Lightning's constructor and properties: ``experiment`` is the ``wandb`` run (made on first use
with ``wandb.init(**kwargs)``, or the run a script already started), ``name`` the project,
``version`` the run id. Metrics are logged with a ``trainer/global_step`` key that W&B uses as
their x axis; ``offline=True`` keeps the run on disk (``wandb sync`` uploads it later). wandb is
imported only when the run is first used, and is not a dependency: ``pip install wandb``.
"""

from __future__ import annotations

import json
import os
from argparse import Namespace
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from runtime.errors import MisconfigurationException
from runtime.loggers.base import Logger
from runtime.rank_zero import rank_zero_only, rank_zero_warn

_STEP_KEY = "trainer/global_step"


def _wandb() -> Any:
    try:
        import wandb
    except ImportError:
        raise ModuleNotFoundError(
            "WandbLogger needs wandb: `pip install wandb` (use `offline=True` or "
            "WANDB_MODE=offline to log without an account)."
        ) from None
    return wandb


def _config_value(value: Any) -> Any:
    """What W&B's config can hold: JSON values as they are, nested mappings kept nested, a
    callable by its name, anything else as its ``str``."""
    if isinstance(value, Namespace):
        value = vars(value)
    if isinstance(value, Mapping):
        return {str(k): _config_value(v) for k, v in value.items()}
    if callable(value) and not isinstance(value, type):
        return getattr(value, "__name__", str(value))
    try:
        json.dumps(value)
    except (TypeError, ValueError):
        return str(value)
    return value


class WandbLogger(Logger):
    """Logs to Weights & Biases (needs ``wandb``; ``offline=True`` for a run kept on disk).

    ``log_model``: ``"all"`` logs every checkpoint ``ModelCheckpoint`` writes as a ``model``
    artifact when it is written; ``True`` logs them when training ends successfully (or as they
    are written under ``save_top_k=-1``); the best checkpoint gets the ``best`` alias. Other
    keyword arguments go to ``wandb.init`` (``entity``, ``group``, ``tags``, ``config`` ...)."""

    LOGGER_JOIN_CHAR = "-"

    def __init__(
        self,
        name: str | None = None,
        save_dir: str | os.PathLike = ".",
        version: str | None = None,
        offline: bool = False,
        dir: str | os.PathLike | None = None,  # noqa: A002 (Lightning's and wandb's name)
        id: str | None = None,  # noqa: A002
        anonymous: bool | None = None,
        project: str | None = None,
        log_model: bool | str = False,
        experiment: Any = None,
        prefix: str = "",
        checkpoint_name: str | None = None,
        add_file_policy: str = "mutable",
        **kwargs: Any,
    ) -> None:
        if offline and log_model:
            raise MisconfigurationException(
                f"Providing log_model={log_model} and offline={offline} is an invalid "
                "configuration since model checkpoints cannot be uploaded in offline mode.\n"
                "Hint: Set `offline=False` to log your model."
            )
        if log_model not in (True, False, "all"):
            raise ValueError(f"`log_model` should be True, False or 'all', got {log_model!r}.")
        self._offline = offline
        self._log_model = log_model
        self._prefix = prefix
        self._experiment = experiment
        self._checkpoint_name = checkpoint_name
        self.add_file_policy = add_file_policy
        self._logged_model_time: dict[str, float] = {}
        self._checkpoint_callbacks: dict[int, Any] = {}
        folder = save_dir if save_dir is not None else dir
        self._wandb_init: dict[str, Any] = {
            "name": name,
            "project": project or os.environ.get("WANDB_PROJECT", "lightning_logs"),
            "dir": os.fspath(folder) if folder is not None else None,
            "id": version or id,
            "resume": "allow",
            "anonymous": "allow" if anonymous else None,
            **kwargs,
        }

    # ------------------------------------------------------------------ the run
    @property
    @rank_zero_only
    def experiment(self) -> Any:
        """The W&B run: the one given to the constructor, the one the script started with
        ``wandb.init``, or a new one (``offline`` sets ``WANDB_MODE=dryrun`` as Lightning)."""
        if self._experiment is not None:
            return self._experiment
        wandb = _wandb()
        if self._offline:
            os.environ["WANDB_MODE"] = "dryrun"
        if wandb.run is not None:
            rank_zero_warn(
                "There is a wandb run already in progress and newly created instances of "
                "`WandbLogger` will reuse this run. If this is not desired, call "
                "`wandb.finish()` before instantiating `WandbLogger`."
            )
            self._experiment = wandb.run
        else:
            self._experiment = wandb.init(**self._wandb_init)
        define = getattr(self._experiment, "define_metric", None)
        if define is not None:
            if self._wandb_init.get("sync_tensorboard"):
                define("*", step_metric="global_step")
            else:
                define(_STEP_KEY)
                define("*", step_metric=_STEP_KEY, step_sync=True)
        return self._experiment

    @property
    def name(self) -> str | None:
        """The project (W&B's own run name is ``logger.experiment.name``)."""
        return self._wandb_init.get("project")

    @property
    def version(self) -> str | None:
        """The run id (without making the run when it does not exist yet)."""
        if self._experiment is not None:
            return self._experiment.id
        return self._wandb_init.get("id")

    @property
    def save_dir(self) -> str | None:
        return self._wandb_init.get("dir")

    def __getstate__(self) -> dict[str, Any]:
        # a spawned process attaches to the same run by id instead of pickling the run
        state = self.__dict__.copy()
        if self._experiment is not None:
            state["_wandb_init"] = dict(self._wandb_init, id=getattr(self._experiment, "id", None))
        state["_experiment"] = None
        return state

    # ------------------------------------------------------------------ logging
    @rank_zero_only
    def log_hyperparams(self, params: Any, *args: Any, **kwargs: Any) -> None:
        self.experiment.config.update(_config_value(params or {}), allow_val_change=True)

    @rank_zero_only
    def log_metrics(self, metrics: Mapping[str, Any], step: int | None = None) -> None:
        if self._prefix:
            metrics = {f"{self._prefix}{self.LOGGER_JOIN_CHAR}{k}": v for k, v in metrics.items()}
        if step is not None and not self._wandb_init.get("sync_tensorboard"):
            self.experiment.log({**metrics, _STEP_KEY: step})
        else:
            self.experiment.log(dict(metrics))

    @rank_zero_only
    def watch(
        self, model: Any, log: str | None = "gradients", log_freq: int = 100, log_graph: bool = True
    ) -> None:
        """Let W&B follow the model's gradients and/or parameters (``wandb.watch``)."""
        self.experiment.watch(model, log=log, log_freq=log_freq, log_graph=log_graph)

    @rank_zero_only
    def log_table(
        self,
        key: str,
        columns: list[str] | None = None,
        data: list[list[Any]] | None = None,
        dataframe: Any = None,
        step: int | None = None,
    ) -> None:
        """A ``wandb.Table`` from ``columns`` and ``data`` rows, or from a dataframe."""
        table = _wandb().Table(columns=columns, data=data, dataframe=dataframe)
        self.log_metrics({key: table}, step)

    @rank_zero_only
    def log_text(
        self,
        key: str,
        columns: list[str] | None = None,
        data: list[list[str]] | None = None,
        dataframe: Any = None,
        step: int | None = None,
    ) -> None:
        """A table of text (``log_table`` for strings)."""
        self.log_table(key, columns, data, dataframe, step)

    def _log_media(
        self, kind: str, key: str, items: list[Any], step: int | None, **kw: Any
    ) -> None:
        if not isinstance(items, list):
            raise TypeError(f'Expected a list as "{kind.lower()}s", found {type(items).__name__}')
        for name, values in kw.items():
            if len(values) != len(items):
                raise ValueError(
                    f"Expected {len(items)} items but only found {len(values)} for {name}"
                )
        per_item = [{k: kw[k][i] for k in kw} for i in range(len(items))]
        cls = getattr(_wandb(), kind)
        self.log_metrics({key: [cls(x, **extra) for x, extra in zip(items, per_item)]}, step)

    @rank_zero_only
    def log_image(
        self, key: str, images: list[Any], step: int | None = None, **kwargs: Any
    ) -> None:
        """Images (tensors, arrays, PIL images or paths); per-image ``caption=[...]`` etc."""
        self._log_media("Image", key, images, step, **kwargs)

    @rank_zero_only
    def log_audio(
        self, key: str, audios: list[Any], step: int | None = None, **kwargs: Any
    ) -> None:
        self._log_media("Audio", key, audios, step, **kwargs)

    @rank_zero_only
    def log_video(
        self, key: str, videos: list[Any], step: int | None = None, **kwargs: Any
    ) -> None:
        self._log_media("Video", key, videos, step, **kwargs)

    # ------------------------------------------------------------------ checkpoints
    def after_save_checkpoint(self, checkpoint_callback: Any) -> None:
        if self._log_model == "all" or (
            self._log_model is True and getattr(checkpoint_callback, "save_top_k", None) == -1
        ):
            self._log_checkpoints(checkpoint_callback)
        elif self._log_model is True:
            self._checkpoint_callbacks[id(checkpoint_callback)] = checkpoint_callback

    @rank_zero_only
    def finalize(self, status: str = "success") -> None:
        if status != "success" or self._experiment is None:
            return  # as Lightning: checkpoints are logged only after a successful run
        for checkpoint_callback in self._checkpoint_callbacks.values():
            self._log_checkpoints(checkpoint_callback)

    def _log_checkpoints(self, callback: Any) -> None:
        """Log each checkpoint file of ``callback`` that is new or rewritten since last time, as
        a version of one ``model`` artifact (aliases ``latest``, and ``best`` for the best)."""
        wandb = _wandb()
        scores: dict[str, Any] = {}
        last = getattr(callback, "last_model_path", "") or ""
        if last:
            scores[last] = getattr(callback, "current_score", None)
        best = getattr(callback, "best_model_path", "") or ""
        if best:
            scores[best] = getattr(callback, "best_model_score", None)
        scores.update(getattr(callback, "best_k_models", {}) or {})
        found = sorted(
            (Path(p).stat().st_mtime, p, s) for p, s in scores.items() if p and Path(p).is_file()
        )
        settings = ("monitor", "mode", "save_last", "save_top_k", "save_weights_only")
        for mtime, path, score in found:
            if self._logged_model_time.get(path, -1.0) >= mtime:
                continue
            metadata = {
                "score": score.item() if hasattr(score, "item") else score,
                "original_filename": Path(path).name,
                type(callback).__name__: {
                    k: getattr(callback, k) for k in settings if hasattr(callback, k)
                },
            }
            if not self._checkpoint_name:
                self._checkpoint_name = f"model-{self.experiment.id}"
            artifact = wandb.Artifact(name=self._checkpoint_name, type="model", metadata=metadata)
            artifact.add_file(path, name="model.ckpt", policy=self.add_file_policy)
            aliases = ["latest", "best"] if path == best else ["latest"]
            self.experiment.log_artifact(artifact, aliases=aliases)
            self._logged_model_time[path] = mtime

    def use_artifact(self, artifact: str, artifact_type: str | None = None) -> Any:
        """Mark ``artifact`` as an input of this run (``run.use_artifact``)."""
        return self.experiment.use_artifact(artifact, type=artifact_type)

    @staticmethod
    def download_artifact(
        artifact: str,
        save_dir: str | os.PathLike | None = None,
        artifact_type: str | None = None,
        use_artifact: bool | None = True,
    ) -> str:
        """Download ``artifact`` (through the running run when there is one) and return the
        folder it was written to."""
        wandb = _wandb()
        if wandb.run is not None and use_artifact:
            found = wandb.run.use_artifact(artifact)
        else:
            found = wandb.Api().artifact(artifact, type=artifact_type)
        return found.download(root=os.fspath(save_dir) if save_dir is not None else None)
