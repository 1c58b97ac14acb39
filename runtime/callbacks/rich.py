"""``RichProgressBar`` and ``RichModelSummary``: the progress bar and summary drawn with ``rich``
(``pip install rich``), as Lightning's of the same names.

The bar shows one task per training epoch (``Epoch N``) with the batches done, the time spent
and left, the speed and the ``prog_bar`` metrics; validation, test and prediction get a task of
their own while they run. Where the output is not a terminal, rich prints the final state of
each task instead of redrawing it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from runtime.callbacks.model_summary import ModelSummary, _count, summarize
from runtime.callbacks.progress import ProgressBar, _fmt, _Switchable

_MISSING = "`{}` requires `rich` >= 10.2.2. Install it by running `pip install -U rich`."


def _require_rich(name: str) -> None:
    try:
        import rich  # noqa: F401
    except ModuleNotFoundError as err:
        raise ModuleNotFoundError(_MISSING.format(name)) from err


@dataclass
class RichProgressBarTheme:
    """Styles of the bar's parts (any rich style string: ``"bold magenta"``, ``"#6206E0"``)."""

    description: str = ""
    progress_bar: str = "#6206E0"
    progress_bar_finished: str = "#6206E0"
    progress_bar_pulse: str = "#6206E0"
    batch_progress: str = ""
    time: str = "dim"
    processing_speed: str = "dim underline"
    metrics: str = "italic"
    metrics_text_delimiter: str = " "
    metrics_format: str = ".3f"


class RichProgressBar(_Switchable, ProgressBar):
    """``Trainer(callbacks=[RichProgressBar()])``: progress drawn with rich.

    Args:
        refresh_rate: redraw every that many batches (0 disables the bar).
        leave: keep each finished epoch's line on screen.
        theme: the styles (``RichProgressBarTheme``).
        console_kwargs: passed to ``rich.console.Console``.
    """

    def __init__(
        self,
        refresh_rate: int = 1,
        leave: bool = False,
        theme: RichProgressBarTheme | None = None,
        console_kwargs: dict[str, Any] | None = None,
    ) -> None:
        _require_rich("RichProgressBar")
        super().__init__()
        if refresh_rate < 0:
            raise ValueError(f"RichProgressBar(refresh_rate={refresh_rate}) must be >= 0.")
        self._refresh_rate = refresh_rate
        self._leave = leave
        self.theme = theme or RichProgressBarTheme()
        self._console_kwargs = console_kwargs or {}
        self._enabled = True
        self.progress: Any = None
        self._console: Any = None
        self.train_progress_bar_id: Any = None
        self.val_progress_bar_id: Any = None
        self._eval_task: Any = None
        self._count = 0
        self._eval_count = 0

    def print(self, *args: Any, **kwargs: Any) -> None:
        if self._console is not None:
            self._console.print(*args, **kwargs)
        else:
            print(*args, **kwargs)

    # ------------------------------------------------------------------------- drawing
    def _start(self, trainer: Any) -> None:
        if self.progress is not None or not self.is_enabled or not trainer.is_global_zero:
            return
        from rich.console import Console
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeElapsedColumn,
            TimeRemainingColumn,
        )

        theme = self.theme
        self._console = Console(**self._console_kwargs)
        self.progress = Progress(
            TextColumn("[progress.description]{task.description}", style=theme.description),
            BarColumn(
                complete_style=theme.progress_bar,
                finished_style=theme.progress_bar_finished,
                pulse_style=theme.progress_bar_pulse,
            ),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            TextColumn("•", style=theme.time),
            TimeRemainingColumn(),
            TextColumn("{task.fields[speed]}", style=theme.processing_speed),
            TextColumn("{task.fields[metrics]}", style=theme.metrics),
            console=self._console,
            auto_refresh=False,
            transient=False,
        )
        self.progress.start()

    def _stop(self) -> None:
        if self.progress is not None:
            self.progress.stop()
            self.progress = None
        self.train_progress_bar_id = None
        self.val_progress_bar_id = None
        self._eval_task = None

    def _add(self, description: str, total: Any) -> Any:
        total = total if isinstance(total, int) else None
        return self.progress.add_task(description, total=total, speed="", metrics="")

    def _metrics_text(self, trainer: Any, pl_module: Any) -> str:
        theme = self.theme
        parts = []
        for key, value in self.get_metrics(trainer, pl_module).items():
            if isinstance(value, float):
                value = format(value, theme.metrics_format)
            else:
                value = _fmt(value)
            parts.append(f"{key}: {value}")
        return theme.metrics_text_delimiter.join(parts)

    def _update(self, task: Any, completed: int, trainer: Any, pl_module: Any) -> None:
        progress = self.progress
        speed = next((t.speed for t in progress.tasks if t.id == task), None)
        progress.update(
            task,
            completed=completed,
            speed=f"{speed:.2f}it/s" if speed else "",
            metrics=self._metrics_text(trainer, pl_module),
        )
        progress.refresh()

    # ------------------------------------------------------------------------- training
    def on_train_start(self, trainer: Any, pl_module: Any) -> None:
        self._start(trainer)

    def on_train_epoch_start(self, trainer: Any, pl_module: Any) -> None:
        self._count = 0
        self._start(trainer)
        if self.progress is None:
            return
        if self.train_progress_bar_id is not None and not self._leave:
            self.progress.remove_task(self.train_progress_bar_id)
        self.train_progress_bar_id = self._add(
            f"Epoch {trainer.current_epoch}", trainer._num_training_batches_int()
        )
        self.progress.refresh()

    def on_train_batch_end(
        self, trainer: Any, pl_module: Any, outputs: Any, batch: Any, batch_idx: int
    ) -> None:
        self._count += 1
        if self.progress is None or self.train_progress_bar_id is None:
            return
        if self._count % self._refresh_rate == 0:
            self._update(self.train_progress_bar_id, self._count, trainer, pl_module)

    def on_train_epoch_end(self, trainer: Any, pl_module: Any) -> None:
        if self.progress is not None and self.train_progress_bar_id is not None:
            self._update(self.train_progress_bar_id, self._count, trainer, pl_module)

    def on_train_end(self, trainer: Any, pl_module: Any) -> None:
        self._stop()

    # ------------------------------------------------------------------------- evaluation
    def _eval_start(self, trainer: Any, description: str) -> None:
        self._eval_count = 0
        self._start(trainer)
        if self.progress is not None:
            self._eval_task = self._add(description, trainer._num_eval_batches_int())
            if description in ("Validation", "Sanity Checking"):
                self.val_progress_bar_id = self._eval_task

    def _eval_step(self, trainer: Any, pl_module: Any) -> None:
        self._eval_count += 1
        if self.progress is None or self._eval_task is None:
            return
        if self._eval_count % self._refresh_rate == 0:
            self._update(self._eval_task, self._eval_count, trainer, pl_module)

    def _eval_end(self, keep_running: bool) -> None:
        if self.progress is not None and self._eval_task is not None:
            self.progress.remove_task(self._eval_task)
            self.progress.refresh()
        self._eval_task = None
        self.val_progress_bar_id = None
        if not keep_running:
            self._stop()

    def on_sanity_check_start(self, trainer: Any, pl_module: Any) -> None:
        self._eval_start(trainer, "Sanity Checking")

    def on_sanity_check_end(self, trainer: Any, pl_module: Any) -> None:
        self._eval_end(keep_running=True)

    def on_validation_start(self, trainer: Any, pl_module: Any) -> None:
        if not trainer.sanity_checking:
            self._eval_start(trainer, "Validation")

    def on_validation_batch_end(self, trainer: Any, pl_module: Any, *args: Any, **kw: Any) -> None:
        self._eval_step(trainer, pl_module)

    def on_validation_end(self, trainer: Any, pl_module: Any) -> None:
        if trainer.sanity_checking:
            return
        in_fit = trainer.state.fn == "fit"
        self._eval_end(keep_running=in_fit)
        if in_fit and self.progress is not None and self.train_progress_bar_id is not None:
            self._update(self.train_progress_bar_id, self._count, trainer, pl_module)

    def on_test_start(self, trainer: Any, pl_module: Any) -> None:
        self._eval_start(trainer, "Testing")

    def on_test_batch_end(self, trainer: Any, pl_module: Any, *args: Any, **kw: Any) -> None:
        self._eval_step(trainer, pl_module)

    def on_test_end(self, trainer: Any, pl_module: Any) -> None:
        self._eval_end(keep_running=False)

    def on_predict_start(self, trainer: Any, pl_module: Any) -> None:
        self._eval_start(trainer, "Predicting")

    def on_predict_batch_end(self, trainer: Any, pl_module: Any, *args: Any, **kw: Any) -> None:
        self._eval_step(trainer, pl_module)

    def on_predict_end(self, trainer: Any, pl_module: Any) -> None:
        self._eval_end(keep_running=False)

    def on_exception(self, trainer: Any, pl_module: Any, exception: BaseException) -> None:
        self._stop()

    def teardown(self, trainer: Any, pl_module: Any, stage: str) -> None:
        self._stop()


class RichModelSummary(ModelSummary):
    """``ModelSummary`` drawn as a rich table (``pip install rich``)."""

    def __init__(self, max_depth: int = 1, **console_kwargs: Any) -> None:
        _require_rich("RichModelSummary")
        super().__init__(max_depth=max_depth)
        self._console_kwargs = console_kwargs

    def on_fit_start(self, trainer: Any, pl_module: Any) -> None:
        if self._max_depth == 0 or not trainer.is_global_zero:
            return
        from rich import get_console
        from rich.table import Table

        rows, totals = summarize(pl_module, self._max_depth)
        table = Table(header_style="bold magenta")
        for column, justify in (
            ("", "right"),
            ("Name", "left"),
            ("Type", "left"),
            ("Params", "right"),
            ("Mode", "left"),
        ):
            table.add_column(column, justify=justify)
        for i, (name, kind, params, mode) in enumerate(rows):
            table.add_row(str(i), name, kind, _count(params), mode)
        console = get_console() if not self._console_kwargs else None
        if console is None:
            from rich.console import Console

            console = Console(**self._console_kwargs)
        console.print(table)
        console.print(
            f"[bold]Trainable params[/]: {_count(totals['trainable'])}\n"
            f"[bold]Non-trainable params[/]: {_count(totals['non_trainable'])}\n"
            f"[bold]Total params[/]: {_count(totals['total'])}\n"
            f"[bold]Total estimated model params size (MB)[/]: {totals['size_mb']:.3f}\n"
            f"[bold]Modules in train mode[/]: {totals['train_modules']}\n"
            f"[bold]Modules in eval mode[/]: {totals['eval_modules']}"
        )
