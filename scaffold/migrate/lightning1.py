"""Lightning 1.x -> 2.x: imports, removed Trainer arguments, and the removed ``*_epoch_end(outputs)``
hooks, so that code from older tutorials runs on Lightning 2.x or on the runtime.

What has an exact 2.x spelling is rewritten (status fixed); what has none is left as written
and reported (status manual) with the replacement to use.
"""

from __future__ import annotations

import libcst as cst
from libcst.metadata import MetadataWrapper, PositionProvider

import scaffold.migrate.match as m
from scaffold.migrate import rules as R
from scaffold.migrate.findings import FIXED, MANUAL, Finding
from scaffold.migrate.syntax import FunctionDepth

OLD = "pytorch_lightning"
RUNTIME_SUBMODULES = {"callbacks", "loggers", "utilities", "strategies", "cli"}
# 1.x module paths that moved in 2.x ("" = the package itself)
MOVED_MODULES = {
    "utilities.cli": "cli",
    "core.lightning": "",
    "core.datamodule": "",
    "callbacks.base": "callbacks",
    "loggers.base": "loggers",
    "utilities.seed": "",
}
REMOVED_HOOKS = {
    "training_epoch_end": ("on_train_epoch_end", "training_step", "training_step_outputs"),
    "validation_epoch_end": (
        "on_validation_epoch_end",
        "validation_step",
        "validation_step_outputs",
    ),
    "test_epoch_end": ("on_test_epoch_end", "test_step", "test_step_outputs"),
}
NO_REPLACEMENT = {
    "auto_lr_find": "use lightning.pytorch.tuner.Tuner(trainer).lr_find(model)",
    "auto_scale_batch_size": "use lightning.pytorch.tuner.Tuner(trainer).scale_batch_size(model)",
    "track_grad_norm": "log torch.nn.utils.get_total_norm of the gradients in on_before_optimizer_step",
    "stochastic_weight_avg": "add the StochasticWeightAveraging callback",
    "terminate_on_nan": "use detect_anomaly=True or a callback",
    "amp_backend": "remove it: precision='16-mixed' uses torch.amp",
    "amp_level": "remove it: apex is not supported in 2.x",
    "log_gpu_memory": "use the DeviceStatsMonitor callback",
    "process_position": "remove it",
    "flush_logs_every_n_steps": "pass it to the logger (CSVLogger(flush_logs_every_n_steps=...))",
    "move_metrics_to_cpu": "remove it",
    "multiple_trainloader_mode": "wrap the loaders in CombinedLoader(mode=...)",
    "prepare_data_per_node": "set self.prepare_data_per_node in the LightningDataModule",
}
REGRESSION_METRICS = {
    "MeanSquaredError", "MeanAbsoluteError", "MeanSquaredLogError", "ExplainedVariance",
    "R2Score", "PearsonCorrcoef", "SpearmanCorrcoef", "CosineSimilarity",
}  # fmt: skip


def uses_lightning1(module: cst.Module) -> bool:
    code = module.code
    return OLD in code or any(f"def {h}(" in code for h in [*REMOVED_HOOKS, *_RENAMED_HOOKS])


def _dotted(node) -> str:
    return cst.Module(body=[]).code_for_node(node)


def _attr_chain(dotted: str) -> cst.BaseExpression:
    parts = dotted.split(".")
    expr: cst.BaseExpression = cst.Name(parts[0])
    for part in parts[1:]:
        expr = cst.Attribute(expr, cst.Name(part))
    return expr


class Lightning1To2(cst.CSTTransformer):
    METADATA_DEPENDENCIES = (PositionProvider,)

    def __init__(self, engine: str, positions) -> None:
        self.engine = engine
        self.positions = positions
        self.findings: list[Finding] = []
        self.fit_ckpt: dict[str, cst.BaseExpression] = {}
        self.needs_torchmetrics = False

    def _at(self, node) -> tuple[int, int]:
        pos = self.positions[node].start
        return pos.line, pos.column + 1

    def _note(self, node, code, status, message) -> None:
        self.findings.append(Finding(code, status, message, *self._at(node)))

    # ------------------------------------------------------------------------------ imports
    def _new_module(self, old: str, node) -> str | None:
        rest = old[len(OLD) :].lstrip(".")
        rest = MOVED_MODULES.get(rest, rest)
        if self.engine == "lightning":
            return "lightning.pytorch" + (f".{rest}" if rest else "")
        head = rest.split(".")[0]
        if not rest:
            return "runtime"
        if rest.startswith("metrics"):
            return None
        if head in RUNTIME_SUBMODULES:
            return f"runtime.{head}"
        self._note(
            node, R.L1_ENGINE, MANUAL, f"`{old}` has no runtime equivalent; use --engine lightning"
        )
        return None

    def leave_Import(self, original, updated):
        names = []
        for alias in updated.names:
            name = _dotted(alias.name)
            if name == OLD or name.startswith(OLD + "."):
                new = self._new_module(name, original)
                if new is None:
                    names.append(alias)
                    continue
                asname = alias.asname or cst.AsName(name=cst.Name(name.split(".")[0]))
                if alias.asname is None and name != OLD:
                    self._note(
                        original,
                        R.L1_ENGINE,
                        MANUAL,
                        f"`import {name}` without an alias: rewrite the references by hand",
                    )
                    names.append(alias)
                    continue
                names.append(alias.with_changes(name=_attr_chain(new), asname=asname))
                self._note(original, R.L1_IMPORTS, FIXED, f"`import {name}` -> `import {new}`")
            else:
                names.append(alias)
        return updated.with_changes(names=names)

    def leave_ImportFrom(self, original, updated):
        if updated.module is None:
            return updated
        name = _dotted(updated.module)
        if not (name == OLD or name.startswith(OLD + ".")):
            return updated
        if name.startswith(f"{OLD}.metrics"):
            self._note(
                original,
                R.L1_METRICS,
                MANUAL,
                "pytorch_lightning.metrics moved to torchmetrics "
                "(pip install torchmetrics); classification metrics need task=...",
            )
            return updated
        new = self._new_module(name, original)
        if new is None:
            return updated
        self._note(original, R.L1_IMPORTS, FIXED, f"`from {name}` -> `from {new}`")
        return updated.with_changes(module=_attr_chain(new))

    # ----------------------------------------------------------------------- pl.metrics.X()
    def leave_Attribute(self, original, updated):
        text = _dotted(updated)
        parts = text.split(".")
        if len(parts) == 3 and parts[1] == "metrics" and parts[0] in ("pl", OLD):
            if parts[2] in REGRESSION_METRICS:
                self.needs_torchmetrics = True
                self._note(original, R.L1_METRICS, FIXED, f"`{text}` -> `torchmetrics.{parts[2]}`")
                return cst.Attribute(cst.Name("torchmetrics"), cst.Name(parts[2]))
            self._note(
                original,
                R.L1_METRICS,
                MANUAL,
                f"`{text}` -> torchmetrics.{parts[2]}(task=..., "
                "num_classes=...): the task cannot be inferred",
            )
        return updated

    # -------------------------------------------------------------------------- Trainer(...)
    def leave_Call(self, original, updated):
        func = _dotted(updated.func)
        if func.split(".")[-1] == "Trainer":
            return self._trainer(original, updated)
        return updated

    def _trainer(self, original, updated):
        args = []
        for arg in updated.args:
            key = arg.keyword.value if arg.keyword is not None else None
            value = arg.value
            text = _dotted(value)
            if key == "gpus":
                if text in ("0", "None", "[]"):
                    args.append(
                        arg.with_changes(
                            keyword=cst.Name("accelerator"), value=cst.SimpleString('"cpu"')
                        )
                    )
                else:
                    args.append(
                        arg.with_changes(
                            keyword=cst.Name("accelerator"), value=cst.SimpleString('"gpu"')
                        )
                    )
                    args.append(arg.with_changes(keyword=cst.Name("devices")))
                self._note(
                    original, R.L1_GPUS, FIXED, f"Trainer(gpus={text}) -> accelerator/devices"
                )
            elif key == "tpu_cores":
                args.append(
                    arg.with_changes(
                        keyword=cst.Name("accelerator"), value=cst.SimpleString('"tpu"')
                    )
                )
                args.append(arg.with_changes(keyword=cst.Name("devices")))
                self._note(
                    original,
                    R.L1_GPUS,
                    FIXED,
                    f"Trainer(tpu_cores={text}) -> accelerator='tpu', devices",
                )
            elif key == "precision" and text in ("16", '"16"', "'16'", '"bf16"', "'bf16'"):
                new = '"bf16-mixed"' if "bf16" in text else '"16-mixed"'
                args.append(arg.with_changes(value=cst.SimpleString(new)))
                self._note(original, R.L1_PRECISION, FIXED, f"precision={text} -> precision={new}")
            elif key == "progress_bar_refresh_rate":
                enabled = "False" if text == "0" else "True"
                args.append(
                    arg.with_changes(
                        keyword=cst.Name("enable_progress_bar"), value=cst.Name(enabled)
                    )
                )
                status = FIXED if text == "0" else MANUAL
                self._note(
                    original,
                    R.L1_TRAINER_FLAGS,
                    status,
                    f"progress_bar_refresh_rate={text} -> "
                    f"enable_progress_bar={enabled}"
                    + (
                        ""
                        if text == "0"
                        else " (for the rate, add TQDMProgressBar(refresh_rate=...) to callbacks)"
                    ),
                )
            elif key == "weights_summary":
                enabled = "False" if text == "None" else "True"
                args.append(
                    arg.with_changes(
                        keyword=cst.Name("enable_model_summary"), value=cst.Name(enabled)
                    )
                )
                self._note(
                    original,
                    R.L1_TRAINER_FLAGS,
                    FIXED,
                    f"weights_summary={text} -> enable_model_summary={enabled}",
                )
            elif key == "checkpoint_callback":
                args.append(arg.with_changes(keyword=cst.Name("enable_checkpointing")))
                self._note(
                    original,
                    R.L1_TRAINER_FLAGS,
                    FIXED,
                    "checkpoint_callback -> enable_checkpointing",
                )
            elif key == "replace_sampler_ddp":
                args.append(arg.with_changes(keyword=cst.Name("use_distributed_sampler")))
                self._note(
                    original,
                    R.L1_TRAINER_FLAGS,
                    FIXED,
                    "replace_sampler_ddp -> use_distributed_sampler",
                )
            elif key in ("distributed_backend",) or (
                key == "accelerator" and text.strip("'\"") in ("ddp", "ddp_spawn", "dp", "ddp2")
            ):
                args.append(arg.with_changes(keyword=cst.Name("strategy")))
                self._note(original, R.L1_STRATEGY, FIXED, f"{key}={text} -> strategy={text}")
            elif key == "resume_from_checkpoint":
                self.fit_ckpt["*"] = value
                self._note(
                    original,
                    R.L1_RESUME,
                    FIXED,
                    "resume_from_checkpoint -> trainer.fit(..., ckpt_path=...)",
                )
            elif key in NO_REPLACEMENT:
                args.append(arg)
                self._note(
                    original,
                    R.L1_REMOVED_FLAG,
                    MANUAL,
                    f"Trainer({key}=...) was removed in 2.0: {NO_REPLACEMENT[key]}",
                )
            else:
                args.append(arg)
        return updated.with_changes(args=_fix_commas(args))


def _fix_commas(args: list[cst.Arg]) -> list[cst.Arg]:
    if not args:
        return args
    out = [a if a.comma is not cst.MaybeSentinel.DEFAULT else a for a in args]
    last = out[-1]
    fixed = []
    for a in out[:-1]:
        fixed.append(
            a.with_changes(
                comma=a.comma
                if isinstance(a.comma, cst.Comma)
                else cst.Comma(whitespace_after=cst.SimpleWhitespace(" "))
            )
        )
    return [*fixed, last]


class _FitCkpt(cst.CSTTransformer):
    """Adds ``ckpt_path=`` to ``<x>.fit(...)`` calls (from a removed resume_from_checkpoint)."""

    def __init__(self, value: cst.BaseExpression) -> None:
        self.value = value
        self.count = 0

    def leave_Call(self, original, updated):
        if m.matches(updated.func, m.Attribute(attr=m.Name("fit"))) and not any(
            a.keyword is not None and a.keyword.value == "ckpt_path" for a in updated.args
        ):
            self.count += 1
            arg = cst.Arg(
                keyword=cst.Name("ckpt_path"),
                value=self.value,
                equal=cst.AssignEqual(cst.SimpleWhitespace(""), cst.SimpleWhitespace("")),
            )
            return updated.with_changes(args=_fix_commas([*updated.args, arg]))
        return updated


# --------------------------------------------------------------------- *_epoch_end(outputs)
class _EpochEndHooks(cst.CSTTransformer):
    def __init__(self, positions) -> None:
        self.positions = positions
        self.findings: list[Finding] = []

    def leave_ClassDef(self, original, updated):
        methods = {s.name.value: s for s in updated.body.body if isinstance(s, cst.FunctionDef)}
        todo = [h for h in REMOVED_HOOKS if h in methods]
        if not todo:
            return updated
        body = list(updated.body.body)
        buffers = []
        for hook in todo:
            new_name, step_name, buffer = REMOVED_HOOKS[hook]
            fn = methods[hook]
            pos = self.positions[_original_method(original, hook)].start
            where = (pos.line, pos.column + 1)
            params = fn.params.params
            if len(params) != 2 or step_name not in methods:
                self.findings.append(
                    Finding(
                        R.L1_EPOCH_END_MANUAL,
                        MANUAL,
                        f"`{hook}` has no `{step_name}` "
                        f"or unusual parameters: move its code to `{new_name}` by hand",
                        *where,
                    )
                )
                continue
            step = methods[step_name]
            if any(p.name.value == "dataloader_idx" for p in step.params.params):
                self.findings.append(
                    Finding(
                        R.L1_EPOCH_END_MANUAL,
                        MANUAL,
                        f"`{hook}` with several dataloaders: "
                        f"collect outputs per dataloader in `{new_name}` by hand",
                        *where,
                    )
                )
                continue
            outputs = params[1].name.value
            swap = cst.parse_statement(f"{outputs}, self.{buffer} = self.{buffer}, []\n")
            new_fn = fn.with_changes(
                name=cst.Name(new_name),
                params=fn.params.with_changes(
                    params=[params[0].with_changes(comma=cst.MaybeSentinel.DEFAULT)]
                ),
                body=fn.body.with_changes(body=[swap, *fn.body.body]),
            )
            keep = "training" in step_name
            new_step = step.visit(_CollectReturns(buffer, keep))
            body = [new_fn if s is fn else new_step if s is step else s for s in body]
            methods[step_name] = new_step
            buffers.append(buffer)
            self.findings.append(
                Finding(
                    R.L1_EPOCH_END,
                    FIXED,
                    f"`{hook}(outputs)` -> `{new_name}()` with "
                    f"`{step_name}` outputs collected in self.{buffer}",
                    *where,
                )
            )
        if buffers:
            body = _init_buffers(body, buffers)
        return updated.with_changes(body=updated.body.with_changes(body=body))


def _original_method(cls: cst.ClassDef, name: str):
    for s in cls.body.body:
        if isinstance(s, cst.FunctionDef) and s.name.value == name:
            return s
    return cls


class _CollectReturns(FunctionDepth):
    """``return X`` -> keep X in the buffer, then return it (Lightning 1.x's outputs)."""

    def __init__(self, buffer: str, training: bool) -> None:
        self.buffer, self.training = buffer, training

    def leave_SimpleStatementLine(self, original, updated):
        if self.depth != 1 or len(updated.body) != 1 or not isinstance(updated.body[0], cst.Return):
            return updated
        ret = updated.body[0]
        if ret.value is None:
            return updated
        value = _dotted(ret.value)
        kept = (
            "step_output if isinstance(step_output, dict) else {'loss': step_output.detach()}"
            if self.training
            else "step_output"
        )
        lines = [
            cst.parse_statement(f"step_output = {value}\n").with_changes(
                leading_lines=updated.leading_lines
            ),
            cst.parse_statement(f"self.{self.buffer}.append({kept})\n"),
            cst.parse_statement("return step_output\n").with_changes(
                trailing_whitespace=updated.trailing_whitespace
            ),
        ]
        return cst.FlattenSentinel(lines)


def _init_buffers(body: list, buffers: list[str]) -> list:
    lines = [cst.parse_statement(f"self.{b} = []\n") for b in buffers]
    for i, s in enumerate(body):
        if isinstance(s, cst.FunctionDef) and s.name.value == "__init__":
            inner = list(s.body.body)
            at = next((j + 1 for j, x in enumerate(inner) if "super()" in _dotted(x)), len(inner))
            inner[at:at] = lines
            body[i] = s.with_changes(body=s.body.with_changes(body=inner))
            return body
    init = cst.parse_statement(
        "def __init__(self, *args, **kwargs):\n    super().__init__(*args, **kwargs)\n"
    )
    init = init.with_changes(body=init.body.with_changes(body=[*init.body.body, *lines]))
    first_def = next((j for j, s in enumerate(body) if isinstance(s, cst.FunctionDef)), len(body))
    return [*body[:first_def], init, *body[first_def:]]


_RENAMED_KWARGS = {
    "fit": {"train_dataloader": "train_dataloaders"},
    "test": {"test_dataloaders": "dataloaders"},
    "validate": {"val_dataloaders": "dataloaders"},
    "predict": {"predict_dataloaders": "dataloaders"},
}
_RENAMED_HOOKS = {
    "on_epoch_start": "on_train_epoch_start",
    "on_epoch_end": "on_train_epoch_end",
    "on_pretrain_routine_start": "on_fit_start",
    "on_pretrain_routine_end": "on_fit_start",
}


class _Removed2x(cst.CSTTransformer):
    """Other 1.x spellings 2.x removed: ``fit(train_dataloader=)``, ``test(test_dataloaders=)``,
    ``ModelCheckpoint(filepath=, period=)``, ``self.hparams = ...``, ``on_epoch_end`` and
    friends, ``Trainer.from_argparse_args`` / ``add_argparse_args`` (reported)."""

    def __init__(self, positions) -> None:
        self.positions = positions
        self.findings: list[Finding] = []
        self.class_depth = 0

    def _note(self, node, code, status, message) -> None:
        pos = self.positions.get(node)
        line, col = (pos.start.line, pos.start.column + 1) if pos is not None else (1, 1)
        self.findings.append(Finding(code, status, message, line, col))

    def leave_Call(self, original, updated):
        func = updated.func
        name = func.attr.value if isinstance(func, cst.Attribute) else _dotted(func)
        if isinstance(func, cst.Attribute) and name in _RENAMED_KWARGS:
            renames = _RENAMED_KWARGS[name]
            args = []
            for a in updated.args:
                if a.keyword is not None and a.keyword.value in renames:
                    new = renames[a.keyword.value]
                    self._note(
                        original,
                        R.L1_RENAMED_ARGUMENT,
                        FIXED,
                        f"{name}({a.keyword.value}=) -> {new}=",
                    )
                    a = a.with_changes(keyword=cst.Name(new))
                args.append(a)
            return updated.with_changes(args=args)
        if name.split(".")[-1] == "ModelCheckpoint":
            return self._checkpoint(original, updated)
        if _dotted(func).endswith(("Trainer.from_argparse_args", "Trainer.add_argparse_args")):
            self._note(
                original,
                R.L1_ARGPARSE,
                MANUAL,
                f"`{_dotted(func)}` was removed in 2.0: build the Trainer from your own arguments or use "
                "LightningCLI",
            )
        return updated

    def _checkpoint(self, original, updated):
        args = []
        for a in updated.args:
            key = a.keyword.value if a.keyword is not None else None
            if key == "period":
                self._note(
                    original, R.L1_CHECKPOINT, FIXED, "ModelCheckpoint(period=) -> every_n_epochs="
                )
                a = a.with_changes(keyword=cst.Name("every_n_epochs"))
            elif key == "filepath":
                value = a.value
                if isinstance(value, cst.SimpleString) and value.quote in ('"', "'"):
                    text = value.evaluated_value
                    head, _, tail = text.rpartition("/")
                    q = value.quote
                    self._note(
                        original,
                        R.L1_CHECKPOINT,
                        FIXED,
                        "ModelCheckpoint(filepath=) -> dirpath= + filename=",
                    )
                    if head:
                        args.append(
                            a.with_changes(
                                keyword=cst.Name("dirpath"),
                                value=cst.SimpleString(f"{q}{head}{q}"),
                            )
                        )
                    a = a.with_changes(
                        keyword=cst.Name("filename"), value=cst.SimpleString(f"{q}{tail}{q}")
                    )
                else:
                    self._note(
                        original,
                        R.L1_CHECKPOINT,
                        MANUAL,
                        "ModelCheckpoint(filepath=) was removed: pass dirpath= and filename=",
                    )
            elif key == "prefix":
                self._note(
                    original,
                    R.L1_CHECKPOINT,
                    MANUAL,
                    "ModelCheckpoint(prefix=) was removed: put it in filename=",
                )
            args.append(a)
        return updated.with_changes(args=_fix_commas(args))

    def leave_SimpleStatementLine(self, original, updated):
        if len(updated.body) == 1 and m.matches(
            updated.body[0],
            m.Assign(
                targets=[
                    m.AssignTarget(target=m.Attribute(value=m.Name("self"), attr=m.Name("hparams")))
                ]
            ),
        ):
            value = updated.body[0].value
            self._note(
                original,
                R.L1_HPARAMS,
                FIXED,
                "`self.hparams = ...` -> self.save_hyperparameters(...)",
            )
            call = cst.parse_expression("self.save_hyperparameters()").with_changes(
                args=[cst.Arg(value=value)]
            )
            return updated.with_changes(body=[cst.Expr(call)])
        return updated

    def leave_ClassDef(self, original, updated):
        bases = " ".join(_dotted(b.value) for b in updated.bases)
        if not any(k in bases for k in ("LightningModule", "Callback", "LightningDataModule")):
            return updated
        names = {s.name.value for s in updated.body.body if isinstance(s, cst.FunctionDef)}
        body = []
        for orig, s in zip(original.body.body, updated.body.body, strict=True):
            if isinstance(s, cst.FunctionDef) and s.name.value in _RENAMED_HOOKS:
                new = _RENAMED_HOOKS[s.name.value]
                if new not in names:
                    self._note(
                        orig,
                        R.L1_REMOVED_HOOK,
                        FIXED,
                        f"hook `{s.name.value}` was removed in 2.0 -> `{new}`",
                    )
                    names.add(new)
                    s = s.with_changes(name=cst.Name(new))
                else:
                    self._note(
                        orig,
                        R.L1_REMOVED_HOOK,
                        MANUAL,
                        f"hook `{s.name.value}` was removed in 2.0; merge it into `{new}`",
                    )
            body.append(s)
        return updated.with_changes(body=updated.body.with_changes(body=body))


def upgrade(module: cst.Module, engine: str) -> tuple[cst.Module, list[Finding]]:
    wrapper = MetadataWrapper(module)
    positions = wrapper.resolve(PositionProvider)
    hooks = _EpochEndHooks(positions)
    module = wrapper.module.visit(hooks)
    wrapper = MetadataWrapper(module)
    positions = wrapper.resolve(PositionProvider)
    main = Lightning1To2(engine, positions)
    module = wrapper.module.visit(main)
    findings = hooks.findings + main.findings
    wrapper = MetadataWrapper(module)
    removed = _Removed2x(wrapper.resolve(PositionProvider))
    module = wrapper.module.visit(removed)
    findings += removed.findings
    if "*" in main.fit_ckpt:
        fit = _FitCkpt(main.fit_ckpt["*"])
        module = module.visit(fit)
        if fit.count != 1:
            findings.append(
                Finding(
                    R.L1_RESUME,
                    MANUAL,
                    "resume_from_checkpoint: pass ckpt_path= to trainer.fit(...) by hand",
                )
            )
    if main.needs_torchmetrics:
        from scaffold.migrate.imports import add_import

        module = add_import(module, "import torchmetrics\n")  # in isort's place
    return module, findings
