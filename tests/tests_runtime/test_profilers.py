"""Trainer(profiler=...): the simple and advanced profilers record what Lightning's record, write
their report where Lightning writes it, and change no computed number."""

from __future__ import annotations

import logging

import pytest
import torch

import runtime as L
from runtime.profilers import (
    AdvancedProfiler,
    PassThroughProfiler,
    Profiler,
    PyTorchProfiler,
    SimpleProfiler,
)
from tests.helpers.models import RegModel, loader, params_of, quiet


class DM(L.LightningDataModule):
    def setup(self, stage):
        self.ready = True

    def train_dataloader(self):
        return loader(n=32)

    def val_dataloader(self):
        return loader(n=16)


def _fit(profiler, **kw):
    torch.manual_seed(0)
    model = RegModel()
    trainer = L.Trainer(**quiet(max_epochs=2, profiler=profiler, **kw))
    trainer.fit(model, datamodule=DM())
    return trainer, model


def test_simple_profiler_records_hooks_steps_epochs_and_batches():
    profiler = SimpleProfiler()
    trainer, _ = _fit(profiler)
    assert trainer.profiler is profiler
    calls = {name: len(d) for name, d in profiler.recorded_durations.items()}
    assert calls["run_training_epoch"] == 2
    assert calls["run_training_batch"] == 8  # 32 samples / 8 per batch, 2 epochs
    assert calls["[Strategy]SingleDeviceStrategy.training_step"] == 8
    assert calls["[Strategy]SingleDeviceStrategy.validation_step"] == 4
    assert calls["[LightningModule]RegModel.on_train_epoch_end"] == 2
    assert calls["[LightningModule]RegModel.configure_optimizers"] == 1
    assert calls["[LightningDataModule]DM.setup"] == 1
    assert any(k.startswith("[Callback]") for k in calls) is False  # no callbacks were on
    assert not profiler.current_actions  # every action that started also stopped


def test_callback_hooks_are_recorded_under_their_state_key():
    class Counter(L.Callback):
        def on_train_batch_end(self, *args):
            pass

    profiler, counter = SimpleProfiler(), Counter()
    _fit(profiler, callbacks=[counter])
    key = f"[Callback]{counter.state_key}.on_train_batch_end"
    assert counter.state_key.endswith("Counter")
    assert len(profiler.recorded_durations[key]) == 8


def test_the_report_goes_to_a_file_per_stage(tmp_path):
    profiler = SimpleProfiler(dirpath=tmp_path, filename="perf")
    trainer, model = _fit(profiler)
    trainer.validate(model, datamodule=DM(), verbose=False)
    fit_report = (tmp_path / "fit-perf.txt").read_text()
    assert fit_report.startswith("FIT Profiler Report")
    for column in ("Action", "Mean duration (s)", "Num calls", "Total time (s)", "Percentage %"):
        assert column in fit_report
    assert "run_training_batch" in fit_report
    validate_report = (tmp_path / "validate-perf.txt").read_text()
    assert validate_report.startswith("VALIDATE Profiler Report")
    assert "[Strategy]SingleDeviceStrategy.validation_step" in validate_report


def test_without_a_filename_the_report_is_printed_or_logged(capsys, caplog):
    _fit("simple")
    assert "FIT Profiler Report" in capsys.readouterr().out
    logger = logging.getLogger("runtime.profilers")
    with caplog.at_level(logging.INFO, logger="runtime.profilers"):
        logger.addHandler(caplog.handler)
        try:
            _fit("simple")
        finally:
            logger.removeHandler(caplog.handler)
    assert any("FIT Profiler Report" in r.getMessage() for r in caplog.records)


def test_advanced_profiler_reports_cprofile_statistics(tmp_path):
    profiler = AdvancedProfiler(dirpath=tmp_path, filename="adv", line_count_restriction=5)
    _fit(profiler)
    report = (tmp_path / "fit-adv.txt").read_text()
    assert "Profile stats for: run_training_epoch" in report
    assert "Profile stats for: [Strategy]SingleDeviceStrategy.training_step" in report
    assert "cumulative" in report and "ncalls" in report


def test_profiling_changes_no_number():
    _, plain = _fit(None)
    _, simple = _fit("simple")
    _, advanced = _fit("advanced")
    _, pytorch = _fit(PyTorchProfiler(export_to_chrome=False))
    for a, b, c, d in zip(
        params_of(plain), params_of(simple), params_of(advanced), params_of(pytorch), strict=True
    ):
        assert torch.equal(a, b) and torch.equal(a, c) and torch.equal(a, d)


def test_pytorch_profiler_reports_operators_actions_and_modules(tmp_path):
    import json

    profiler = PyTorchProfiler(
        dirpath=tmp_path, filename="perf", row_limit=-1, table_kwargs={"max_name_column_width": 99}
    )
    _, model = _fit(profiler)
    report = (tmp_path / "fit-perf.txt").read_text()
    assert report.startswith("FIT Profiler Report")
    for name in (
        "[pl][profile]run_training_batch",
        "[pl][profile][Strategy]SingleDeviceStrategy.training_step",
        "[pl][module]torch.nn.modules.linear.Linear: net.0",
        "aten::addmm",
    ):
        assert name in report
    trace = json.loads((tmp_path / "fit-perf.pt.trace.json").read_text())
    names = {e.get("name") for e in trace["traceEvents"]}
    assert "[pl][profile]run_training_epoch" in names and "aten::mm" in names
    # the module hooks are gone once the stage ends
    assert not any(m._forward_hooks or m._forward_pre_hooks for m in model.modules())


def test_pytorch_profiler_options():
    assert isinstance(L.Trainer(**quiet(profiler="pytorch")).profiler, PyTorchProfiler)
    with pytest.raises(ValueError, match="sort_by_key='time'.*'cpu_time_total'"):
        PyTorchProfiler(sort_by_key="time")
    with pytest.raises(KeyError, match="invalid table_kwargs key.*'width'"):
        PyTorchProfiler(table_kwargs={"width": 3})
    with pytest.raises(ValueError, match="`schedule` should be a callable"):
        PyTorchProfiler(schedule=3)
    steps = []
    schedule = torch.profiler.schedule(wait=1, warmup=1, active=2, repeat=1)
    profiler = PyTorchProfiler(
        schedule=schedule, on_trace_ready=lambda p: steps.append(p.step_num), export_to_chrome=False
    )
    _fit(profiler)
    assert steps == [4]  # one window of 2 active steps after 1 waiting and 1 warming up


def test_a_profiler_of_ones_own_gets_start_and_stop_in_pairs():
    class Recording(Profiler):
        def __init__(self):
            super().__init__()
            self.events: list[tuple[str, str]] = []

        def start(self, action_name):
            self.events.append(("start", action_name))

        def stop(self, action_name):
            self.events.append(("stop", action_name))

        def summary(self):
            return ""

    profiler = Recording()
    _fit(profiler)
    open_actions: list[str] = []
    for kind, name in profiler.events:
        if kind == "start":
            open_actions.append(name)
        else:
            assert open_actions.pop() == name  # properly nested
    assert not open_actions
    assert ("start", "save_checkpoint") not in profiler.events  # checkpointing was off


def test_the_report_is_written_after_an_error_too(tmp_path):
    class Failing(RegModel):
        def training_step(self, batch, batch_idx):
            if batch_idx == 2:
                raise RuntimeError("boom")
            return super().training_step(batch, batch_idx)

    profiler = SimpleProfiler(dirpath=tmp_path, filename="perf")
    trainer = L.Trainer(**quiet(max_epochs=1, profiler=profiler))
    with pytest.raises(RuntimeError, match="boom"):
        trainer.fit(Failing(), loader(n=32))
    assert "run_training_batch" in (tmp_path / "fit-perf.txt").read_text()


def test_profiler_flag_values():
    assert isinstance(L.Trainer(**quiet()).profiler, PassThroughProfiler)
    assert isinstance(L.Trainer(**quiet(profiler="simple")).profiler, SimpleProfiler)
    assert isinstance(L.Trainer(**quiet(profiler="Advanced")).profiler, AdvancedProfiler)
    with pytest.raises(ValueError, match="only be one of \\['simple', 'advanced', 'pytorch'\\]"):
        L.Trainer(**quiet(profiler="fast"))
    with pytest.raises(ValueError, match="needs TPUs"):
        L.Trainer(**quiet(profiler="xla"))
    with pytest.raises(ValueError, match="barebones"):
        L.Trainer(barebones=True, profiler="simple")


def test_lightning_import_paths():
    assert L.pytorch.profilers.SimpleProfiler is SimpleProfiler
