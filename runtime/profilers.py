"""Profilers: ``Trainer(profiler="simple" | "advanced" | Profiler())``, as Lightning 2.x.

The Trainer times every hook it calls (``[LightningModule]Model.training_step``,
``[Callback]ModelCheckpoint{...}.on_train_epoch_end``, ``[LightningDataModule]DM.setup``),
each training epoch (``run_training_epoch``) and batch (``run_training_batch``), and
``save_checkpoint``; when the stage ends, ``describe()`` writes the report to
``{dirpath}/{stage}-{filename}.txt`` (``dirpath`` defaults to the trainer's log dir) or, without
a ``filename``, through the ``runtime.profilers`` logger (printed where logging shows no INFO).

* ``SimpleProfiler``: wall-clock time per action (mean, calls, total, share of the run).
* ``AdvancedProfiler``: ``cProfile`` statistics per action (``pstats``, cumulative time).
* ``PyTorchProfiler`` (``"pytorch"``): ``torch.profiler`` over the stage, each action a
  ``record_function`` (``[pl][profile]<action>``) and each submodule's forward one too
  (``[pl][module]<Class>: <name>``); the report is the operator table (``key_averages``) and a
  Chrome trace is written beside it (``{stage}-{filename}.pt.trace.json``).
* ``PassThroughProfiler``: the default; records nothing and costs one attribute check a hook.

A profiler of your own subclasses ``Profiler`` and implements ``start``/``stop``/``summary``.
"""

from __future__ import annotations

import contextlib
import io
import logging
import os
import time
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path
from typing import Any

log = logging.getLogger("runtime.profilers")

__all__ = [
    "AdvancedProfiler",
    "PassThroughProfiler",
    "Profiler",
    "PyTorchProfiler",
    "SimpleProfiler",
]


class Profiler:
    """Base class: records actions between ``start(name)`` and ``stop(name)``.

    ``dirpath``/``filename``: where ``describe()`` writes the report (``{stage}-{filename}.txt``,
    with ``{local_rank}-`` in front on ranks other than 0); without a filename the report goes
    to the ``runtime.profilers`` logger at INFO level, or to stdout where logging shows no INFO
    records.
    """

    def __init__(self, dirpath: str | Path | None = None, filename: str | None = None) -> None:
        self.dirpath = dirpath
        self.filename = filename
        self._local_rank: int | None = None
        self._stage: str | None = None
        self._lightning_module: Any = None  # the module of the running stage (set by the Trainer)

    # -------------------------------------------------------------- what a profiler implements
    def start(self, action_name: str) -> None:
        """Start recording ``action_name``."""

    def stop(self, action_name: str) -> None:
        """Stop recording ``action_name`` (started before)."""

    def summary(self) -> str:
        """The report of what was recorded."""
        return ""

    # ----------------------------------------------------------------------------- the rest
    @contextlib.contextmanager
    def profile(self, action_name: str) -> Iterator[str]:
        """``with profiler.profile("load_batch"): ...`` records the block as one call."""
        try:
            self.start(action_name)
            yield action_name
        finally:
            self.stop(action_name)

    @property
    def local_rank(self) -> int:
        return 0 if self._local_rank is None else self._local_rank

    def setup(self, stage: str, local_rank: int | None = None, log_dir: str | None = None) -> None:
        """Called by the Trainer when a stage (``fit``, ``validate``, ...) starts."""
        self._stage = stage
        self._local_rank = local_rank
        self.dirpath = self.dirpath or log_dir

    def teardown(self, stage: str | None) -> None:
        """Called once the stage's report is written (a profiler releases what it held)."""

    def describe(self) -> None:
        """Writes the report (see the class docstring); called when the stage ends."""
        summary = self.summary()
        if summary and self.filename and self.dirpath:
            path = Path(self.dirpath) / self._prepare_filename()
            path.parent.mkdir(parents=True, exist_ok=True)
            with open(path, "a", encoding="utf-8") as out:
                out.write(summary)
        elif summary:
            self._log_report(summary)
        self.teardown(stage=self._stage)

    def _prepare_filename(self, extension: str = ".txt") -> str:
        parts = []
        if self._stage is not None:
            parts.append(self._stage)
        if self.filename:
            parts.append(self.filename)
        name = "-".join(parts) + extension
        if self.local_rank:
            name = f"{self.local_rank}-{name}"
        return name

    def _log_report(self, text: str) -> None:
        """Through the ``runtime.profilers`` logger where logging is set up to show INFO
        records; printed otherwise (a report asked for is never swallowed)."""
        if self.local_rank != 0:
            return
        if log.isEnabledFor(logging.INFO) and log.hasHandlers():
            log.info(text)
        else:
            print(text)

    def _title(self) -> str:
        return (f"{self._stage.upper()} " if self._stage else "") + "Profiler Report"


class PassThroughProfiler(Profiler):
    """Records nothing (the Trainer's default)."""


class SimpleProfiler(Profiler):
    """Wall-clock duration of each action: mean, number of calls, total and share of the time
    from ``setup`` to the report. ``extended=False`` gives mean and total only."""

    def __init__(
        self,
        dirpath: str | Path | None = None,
        filename: str | None = None,
        extended: bool = True,
    ) -> None:
        super().__init__(dirpath=dirpath, filename=filename)
        self.current_actions: dict[str, float] = {}
        self.recorded_durations: dict[str, list[float]] = defaultdict(list)
        self.extended = extended
        self.start_time = time.monotonic()

    def setup(self, stage: str, local_rank: int | None = None, log_dir: str | None = None) -> None:
        super().setup(stage, local_rank, log_dir)
        self.start_time = time.monotonic()

    def start(self, action_name: str) -> None:
        if action_name in self.current_actions:
            raise ValueError(f"Attempted to start {action_name} which has already started.")
        self.current_actions[action_name] = time.monotonic()

    def stop(self, action_name: str) -> None:
        end = time.monotonic()
        if action_name not in self.current_actions:
            raise ValueError(
                f"Attempting to stop recording an action ({action_name}) which was never started."
            )
        self.recorded_durations[action_name].append(end - self.current_actions.pop(action_name))

    def summary(self) -> str:
        if not self.recorded_durations:
            return ""
        total = max(time.monotonic() - self.start_time, 1e-12)
        rows = sorted(
            ((name, sum(d), len(d)) for name, d in self.recorded_durations.items()),
            key=lambda r: r[1],
            reverse=True,
        )
        if self.extended:
            header = ("Action", "Mean duration (s)", "Num calls", "Total time (s)", "Percentage %")
            body = [("Total", "-", str(sum(r[2] for r in rows)), f"{total:.5}", "100 %")]
            body += [
                (name, f"{t / n:.5}", str(n), f"{t:.5}", f"{100 * t / total:.5}")
                for name, t, n in rows
            ]
        else:
            header = ("Action", "Mean duration (s)", "Total time (s)")
            body = [(name, f"{t / n:.5}", f"{t:.5}") for name, t, n in rows]
        widths = [max(len(row[i]) for row in [header, *body]) for i in range(len(header))]

        def line(row: tuple) -> str:
            return (
                "|  " + "\t|  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)) + "\t|"
            )

        rule = "-" * (sum(widths) + 4 * len(widths) + 2)
        return "\n".join([self._title(), "", rule, line(header), rule, *map(line, body), rule, ""])


class AdvancedProfiler(Profiler):
    """``cProfile`` statistics of each action (functions called, time inside them), sorted by
    cumulative time; ``line_count_restriction`` limits each action's listing (a count, or a
    fraction of its lines as ``pstats`` takes it)."""

    def __init__(
        self,
        dirpath: str | Path | None = None,
        filename: str | None = None,
        line_count_restriction: float = 1.0,
        dump_stats: bool = False,
    ) -> None:
        super().__init__(dirpath=dirpath, filename=filename)
        self.profiled_actions: dict[str, Any] = {}
        self.line_count_restriction = line_count_restriction
        self.dump_stats = dump_stats

    def start(self, action_name: str) -> None:
        import cProfile

        if action_name not in self.profiled_actions:
            self.profiled_actions[action_name] = cProfile.Profile()
        profiler = self.profiled_actions[action_name]
        # the same action nested in itself (a hook calling a hook of the same name) or
        # another profiler already active: count it in the enclosing one
        with contextlib.suppress(ValueError):
            profiler.enable()

    def stop(self, action_name: str) -> None:
        profiler = self.profiled_actions.get(action_name)
        if profiler is None:
            raise ValueError(
                f"Attempting to stop recording an action ({action_name}) which was never started."
            )
        profiler.disable()

    def summary(self) -> str:
        import pstats

        parts = []
        for name, profiler in self.profiled_actions.items():
            stream = io.StringIO()
            try:
                stats = pstats.Stats(profiler, stream=stream).strip_dirs()
            except TypeError:  # nothing was recorded for this action
                continue
            stats.sort_stats("cumulative").print_stats(self.line_count_restriction)
            if self.dump_stats and self.dirpath:
                dump = Path(self.dirpath) / f"{self._prepare_filename('')}-{_safe(name)}.prof"
                dump.parent.mkdir(parents=True, exist_ok=True)
                stats.dump_stats(os.fspath(dump))
            parts.append(f"Profile stats for: {name}\n{stream.getvalue()}")
        if not parts:
            return ""
        return "\n".join([self._title(), "", *parts])

    def teardown(self, stage: str | None) -> None:
        self.profiled_actions = {}


class PyTorchProfiler(Profiler):
    """``torch.profiler`` over the stage (see the module docstring).

    ``sort_by_key`` orders the table (default ``cuda_time_total`` where CUDA is profiled, else
    ``cpu_time_total``); ``row_limit`` rows (-1: all); ``group_by_input_shapes`` splits rows by
    input shapes (records shapes); ``record_module_names`` adds the submodules' forwards;
    ``export_to_chrome`` writes the trace; ``emit_nvtx`` marks ranges for Nsight instead of
    profiling (CUDA only). Other keyword arguments go to ``torch.profiler.profile``
    (``schedule``, ``profile_memory``, ``with_stack``, ``activities``, ...); with a
    ``schedule`` the profiler steps after each ``training_step``/``validation_step``/... .
    """

    AVAILABLE_SORT_KEYS = frozenset(
        {
            "cpu_time",
            "cuda_time",
            "cpu_time_total",
            "cuda_time_total",
            "cpu_memory_usage",
            "cuda_memory_usage",
            "self_cpu_memory_usage",
            "self_cuda_memory_usage",
            "count",
        }
    )
    _STEPS = ("training_step", "validation_step", "test_step", "predict_step")

    def __init__(
        self,
        dirpath: str | Path | None = None,
        filename: str | None = None,
        group_by_input_shapes: bool = False,
        emit_nvtx: bool = False,
        export_to_chrome: bool = True,
        row_limit: int = 20,
        sort_by_key: str | None = None,
        record_module_names: bool = True,
        table_kwargs: dict[str, Any] | None = None,
        **profiler_kwargs: Any,
    ) -> None:
        super().__init__(dirpath=dirpath, filename=filename)
        import torch

        self._cuda = torch.cuda.is_available()
        self._group_by_input_shapes = group_by_input_shapes
        self._emit_nvtx = emit_nvtx
        self._export_to_chrome = export_to_chrome
        self._row_limit = row_limit
        self._record_module_names = record_module_names
        self._table_kwargs = dict(table_kwargs or {})
        self._profiler_kwargs = dict(profiler_kwargs)
        if group_by_input_shapes:
            self._profiler_kwargs.setdefault("record_shapes", True)
        default_key = "cuda_time_total" if self._cuda else "cpu_time_total"
        self._sort_by_key = sort_by_key or default_key
        if self._sort_by_key not in self.AVAILABLE_SORT_KEYS:
            raise ValueError(
                f"PyTorchProfiler(sort_by_key={self._sort_by_key!r}) is not a sort key; use one "
                f"of {sorted(self.AVAILABLE_SORT_KEYS)}."
            )
        allowed_table = {"max_src_column_width", "max_name_column_width", "max_shapes_column_width",
                         "header", "top_level_events_only", "time_unit"}  # fmt: skip
        unknown = set(self._table_kwargs) - allowed_table
        if unknown:
            raise KeyError(
                f"Found invalid table_kwargs key(s): {sorted(unknown)}. Should be within "
                f"{sorted(allowed_table)}."
            )
        schedule = self._profiler_kwargs.get("schedule")
        if schedule is not None and not callable(schedule):
            raise ValueError(f"`schedule` should be a callable, got {schedule!r}.")
        if emit_nvtx and not self._cuda:
            raise ValueError(
                "PyTorchProfiler(emit_nvtx=True) marks CUDA ranges for Nsight and needs a CUDA "
                "device; this machine has none."
            )
        self._profiler: Any = None
        self._ranges: dict[str, list[Any]] = defaultdict(list)
        self._hooks: list[Any] = []
        self._events: Any = None

    def setup(self, stage: str, local_rank: int | None = None, log_dir: str | None = None) -> None:
        super().setup(stage, local_rank, log_dir)
        self._events = None

    def _start_profiler(self) -> None:
        import torch

        if self._emit_nvtx:
            self._profiler = torch.autograd.profiler.emit_nvtx(
                record_shapes=self._group_by_input_shapes
            )
        else:
            kwargs = dict(self._profiler_kwargs)
            if "activities" not in kwargs:
                activities = [torch.profiler.ProfilerActivity.CPU]
                if self._cuda:
                    activities.append(torch.profiler.ProfilerActivity.CUDA)
                kwargs["activities"] = activities
            self._profiler = torch.profiler.profile(**kwargs)
        self._profiler.__enter__()
        if self._record_module_names and self._lightning_module is not None:
            self._name_modules(self._lightning_module)

    def _name_modules(self, model: Any) -> None:
        from torch.autograd.profiler import record_function

        def hooks(label: str) -> tuple[Any, Any]:
            open_scopes: list[Any] = []

            def enter(_module: Any, _inputs: Any) -> None:
                scope = record_function(label)
                scope.__enter__()
                open_scopes.append(scope)

            def leave(_module: Any, _inputs: Any, _output: Any) -> None:
                if open_scopes:
                    open_scopes.pop().__exit__(None, None, None)

            return enter, leave

        for name, module in model.named_modules():
            if name:
                cls = type(module)
                enter, leave = hooks(f"[pl][module]{cls.__module__}.{cls.__name__}: {name}")
                self._hooks.append(module.register_forward_pre_hook(enter))
                self._hooks.append(module.register_forward_hook(leave))

    def start(self, action_name: str) -> None:
        if self._profiler is None:
            self._start_profiler()
        from torch.autograd.profiler import record_function

        scope = record_function(f"[pl][profile]{action_name}")
        scope.__enter__()
        self._ranges[action_name].append(scope)

    def stop(self, action_name: str) -> None:
        scopes = self._ranges.get(action_name)
        if scopes:
            scopes.pop().__exit__(None, None, None)
        if (
            self._profiler is not None
            and "schedule" in self._profiler_kwargs
            and action_name.endswith(self._STEPS)
        ):
            self._profiler.step()

    def _finish(self) -> None:
        """Close open ranges, remove the module hooks and stop the profiler (keeps its events)."""
        for scopes in self._ranges.values():
            while scopes:
                scopes.pop().__exit__(None, None, None)
        for hook in self._hooks:
            hook.remove()
        self._hooks = []
        if self._profiler is None:
            return
        self._profiler.__exit__(None, None, None)
        if not self._emit_nvtx:
            self._events = self._profiler
        self._profiler = None

    def summary(self) -> str:
        self._finish()
        if self._events is None:
            return ""
        if self._export_to_chrome and self.dirpath:
            path = Path(self.dirpath) / self._trace_name()
            path.parent.mkdir(parents=True, exist_ok=True)
            self._events.export_chrome_trace(str(path))
        averages = self._events.key_averages(group_by_input_shape=self._group_by_input_shapes)
        table = averages.table(
            sort_by=self._sort_by_key, row_limit=self._row_limit, **self._table_kwargs
        )
        return "\n".join([self._title(), "", table])

    def _trace_name(self) -> str:
        """``{stage}-{filename}.pt.trace.json`` (``trace`` for a printed report's filename)."""
        if self.filename:
            return self._prepare_filename(extension=".pt.trace.json")
        name = f"{self._stage}-trace.pt.trace.json" if self._stage else "trace.pt.trace.json"
        return f"{self.local_rank}-{name}" if self.local_rank else name

    def teardown(self, stage: str | None) -> None:
        self._finish()
        self._events = None
        self._ranges = defaultdict(list)


def _safe(name: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in name)


def resolve_profiler(value: Any) -> Profiler:
    """``Trainer(profiler=...)``: None, ``"simple"``, ``"advanced"`` or a ``Profiler``."""
    if value is None:
        return PassThroughProfiler()
    if isinstance(value, Profiler):
        return value
    if isinstance(value, str):
        kinds = {"simple": SimpleProfiler, "advanced": AdvancedProfiler, "pytorch": PyTorchProfiler}
        kind = kinds.get(value.lower())
        if kind is not None:
            return kind()
        if value.lower() == "xla":
            raise ValueError(
                "Trainer(profiler='xla') needs TPUs, which this runtime does not run on; use "
                "'simple', 'advanced' or 'pytorch'."
            )
    raise ValueError(
        f"When passing string value for the `profiler` parameter of `Trainer`, it can only be one "
        f"of ['simple', 'advanced', 'pytorch'] (or a `runtime.profilers.Profiler`); got {value!r}."
    )
