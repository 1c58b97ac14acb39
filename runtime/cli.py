"""``LightningCLI``: ``python -m project fit --config cfg.yaml --trainer.max_epochs 3``.

Built on jsonargparse, as Lightning's is, so the same YAML configs work on both engines:
``trainer:``, ``model:``, ``data:``, ``seed_everything:`` and ``ckpt_path:`` sections, with
``class_path``/``init_args`` for subclasses and callbacks/loggers.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from typing import Any

from runtime.rank_zero import rank_zero_info

SUBCOMMANDS = {
    "fit": "Runs the full optimization routine.",
    "validate": "Perform one evaluation epoch over the validation set.",
    "test": "Perform one evaluation epoch over the test set.",
    "predict": "Run inference on your data.",
}


class SaveConfigCallback:
    """Writes the parsed config to ``<log_dir>/config.yaml`` at fit start (rank 0)."""

    def __init__(
        self,
        parser: Any,
        config: Any,
        config_filename: str = "config.yaml",
        overwrite: bool = False,
    ) -> None:
        self.parser, self.config = parser, config
        self.config_filename, self.overwrite = config_filename, overwrite

    def as_callback(self) -> Any:
        from runtime.callbacks.base import Callback

        outer = self

        class _Save(Callback):
            def setup(self, trainer: Any, pl_module: Any, stage: str) -> None:
                if not trainer.is_global_zero:
                    return
                folder = trainer.log_dir or trainer.default_root_dir
                path = os.path.join(folder, outer.config_filename)
                if os.path.exists(path) and not outer.overwrite:
                    raise RuntimeError(
                        f"{path} already exists; SaveConfigCallback will not overwrite it. Use a new "
                        "log folder, or LightningCLI(save_config_kwargs={'overwrite': True})."
                    )
                os.makedirs(folder, exist_ok=True)
                outer.parser.save(
                    outer.config, path, skip_none=False, overwrite=outer.overwrite, multifile=False
                )

        return _Save()


class LightningCLI:
    def __init__(
        self,
        model_class: type | Callable | None = None,
        datamodule_class: type | Callable | None = None,
        save_config_callback: type[SaveConfigCallback] | None = SaveConfigCallback,
        save_config_kwargs: dict[str, Any] | None = None,
        trainer_class: type | None = None,
        trainer_defaults: dict[str, Any] | None = None,
        seed_everything_default: bool | int = True,
        parser_kwargs: dict[str, Any] | None = None,
        subclass_mode_model: bool = False,
        subclass_mode_data: bool = False,
        args: list[str] | dict[str, Any] | None = None,
        run: bool = True,
        auto_configure_optimizers: bool = True,
    ) -> None:
        from runtime.module import LightningModule
        from runtime.trainer import Trainer

        self.model_class = model_class or LightningModule
        self.datamodule_class = datamodule_class
        self.trainer_class = trainer_class or Trainer
        self.trainer_defaults = trainer_defaults or {}
        self.seed_everything_default = seed_everything_default
        self.subclass_mode_model = subclass_mode_model or model_class is None
        self.subclass_mode_data = subclass_mode_data
        self.save_config_callback = save_config_callback
        self.save_config_kwargs = save_config_kwargs or {}
        self.parser = self._build_parser(parser_kwargs or {}, run)
        self.config = (
            self.parser.parse_args(args)
            if not isinstance(args, dict)
            else self.parser.parse_object(args)
        )
        self.subcommand = self.config["subcommand"] if run else None
        cfg = self.config[self.subcommand] if run else self.config
        self._seed(cfg)
        parser = (
            self.parser._subcommands_action._name_parser_map[self.subcommand]
            if run
            else self.parser
        )
        self.before_instantiate_classes()
        self.config_init = parser.instantiate_classes(cfg)
        self.model = self.config_init["model"]
        self.datamodule = self.config_init.get("data")
        self.trainer = self._trainer(parser, cfg)
        self.after_instantiate_classes()
        if run:
            self._run(cfg)

    # ------------------------------------------------------------------ extension points
    def add_arguments_to_parser(self, parser: Any) -> None:
        """Override to add arguments or links, e.g.
        ``parser.link_arguments("data.num_classes", "model.num_classes", apply_on="instantiate")``.
        Called once per subcommand parser, as Lightning does."""

    def before_instantiate_classes(self) -> None:
        """Called after parsing, before the model, data module and trainer are built."""

    def after_instantiate_classes(self) -> None:
        """Called after the model, data module and trainer are built, before the subcommand."""

    @staticmethod
    def subcommands() -> dict[str, set[str]]:
        """The subcommands and the trainer methods they run (Lightning's shape)."""
        return {name: {"model", "dataloaders", "datamodule"} for name in SUBCOMMANDS}

    # ------------------------------------------------------------------ parser
    def _common_args(self, parser: Any) -> None:
        from jsonargparse import ActionConfigFile

        # Imported so that short class names in configs (``class_path: ModelCheckpoint``,
        # ``class_path: CSVLogger``) resolve, as they do with Lightning's CLI.
        import runtime.callbacks  # noqa: F401
        import runtime.loggers  # noqa: F401
        from runtime.datamodule import LightningDataModule
        from runtime.module import LightningModule

        parser.add_argument(
            "-c",
            "--config",
            action=ActionConfigFile,
            help="Path to a configuration file in json or yaml format.",
        )
        parser.add_argument(
            "--seed_everything",
            type=bool | int,
            default=self.seed_everything_default,
            help="Set to an int to run seed_everything with this value before "
            "classes instantiation. Set to True to use a random seed.",
        )
        parser.add_class_arguments(
            self.trainer_class, "trainer", fail_untyped=False, sub_configs=True, default=None
        )
        parser.set_defaults({f"trainer.{k}": v for k, v in self.trainer_defaults.items()})
        if self.subclass_mode_model:
            parser.add_subclass_arguments(
                self.model_class if isinstance(self.model_class, type) else LightningModule,
                "model",
                required=True,
            )
        else:
            parser.add_class_arguments(
                self.model_class, "model", fail_untyped=False, sub_configs=True
            )
        if self.datamodule_class is not None:
            if self.subclass_mode_data:
                parser.add_subclass_arguments(self.datamodule_class, "data", required=True)
            else:
                parser.add_class_arguments(
                    self.datamodule_class, "data", fail_untyped=False, sub_configs=True
                )
        elif self.subclass_mode_data:
            parser.add_subclass_arguments(LightningDataModule, "data", required=False)
        parser.add_argument(
            "--ckpt_path",
            type=str | None,
            default=None,
            help="Path to a checkpoint to resume from or evaluate ('best', 'last' or a file).",
        )
        self.add_arguments_to_parser(parser)

    def _build_parser(self, parser_kwargs: dict[str, Any], run: bool) -> Any:
        from jsonargparse import ArgumentParser

        # As in Lightning, parser_kwargs is either one dict for every parser or a dict keyed by
        # subcommand ({"fit": {"default_config_files": [...]}}).
        per_sub = {k: v for k, v in parser_kwargs.items() if k in SUBCOMMANDS}
        common = {k: v for k, v in parser_kwargs.items() if k not in SUBCOMMANDS}
        kw = {
            "description": "Runs training, validation, testing or prediction.",
            "env_prefix": "PL",
            "default_env": False,
            **common,
        }
        parser = ArgumentParser(**kw)
        if not run:
            self._common_args(parser)
            return parser
        subcommands = parser.add_subcommands(required=True, dest="subcommand")
        for name, help_text in SUBCOMMANDS.items():
            sub_kw = {"description": help_text, **common, **per_sub.get(name, {})}
            sub = ArgumentParser(**sub_kw)
            self._common_args(sub)
            if name == "predict":
                sub.add_argument("--return_predictions", type=bool | None, default=None)
            if name in ("validate", "test"):
                sub.add_argument("--verbose", type=bool, default=True)
            subcommands.add_subcommand(name, sub, help=help_text)
        return parser

    # ------------------------------------------------------------------ running
    def _seed(self, cfg: Any) -> None:
        from runtime.seed import seed_everything

        value = cfg.get("seed_everything")
        if value is True:
            cfg["seed_everything"] = seed_everything(None, verbose=False)
        elif value is not False and value is not None:
            seed_everything(int(value), verbose=False)

    def _trainer(self, parser: Any, cfg: Any) -> Any:
        from runtime.connector import reorder_callbacks

        trainer = self.config_init["trainer"]
        if not hasattr(trainer, "fit"):
            trainer = self.trainer_class(**dict(trainer or {}))
        if self.save_config_callback is not None and self.subcommand == "fit":
            cb = self.save_config_callback(parser, cfg, **self.save_config_kwargs).as_callback()
            trainer.callbacks = reorder_callbacks([*trainer.callbacks, cb])
        return trainer

    def _run(self, cfg: Any) -> None:
        fn = getattr(self.trainer, self.subcommand)
        kwargs: dict[str, Any] = {"ckpt_path": cfg.get("ckpt_path")}
        if self.datamodule is not None:
            kwargs["datamodule"] = self.datamodule
        if self.subcommand in ("validate", "test"):
            kwargs["verbose"] = cfg.get("verbose", True)
        if self.subcommand == "predict" and cfg.get("return_predictions") is not None:
            kwargs["return_predictions"] = cfg.get("return_predictions")
        rank_zero_info(f"LightningCLI: running `{self.subcommand}`")
        self.result = fn(self.model, **kwargs)


def __getattr__(name: str) -> Any:
    if name == "LightningArgumentParser":
        from jsonargparse import ArgumentParser

        return ArgumentParser
    raise AttributeError(f"module 'runtime.cli' has no attribute {name!r}")


def cli_main(**kwargs: Any) -> LightningCLI:  # pragma: no cover - convenience entry point
    return LightningCLI(**kwargs, args=sys.argv[1:])
