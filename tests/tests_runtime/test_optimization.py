"""configure_optimizers forms, scheduler stepping, manual optimization, LBFGS closures."""

from __future__ import annotations

import pytest
import torch
from torch import nn

import runtime as L
from runtime.errors import MisconfigurationException
from tests.helpers.models import RegModel, loader, quiet


def with_optimizers(fn):
    class M(RegModel):
        def configure_optimizers(self):
            return fn(self)

    return M()


def sgd(m, lr=0.1):
    return torch.optim.SGD(m.parameters(), lr=lr)


@pytest.mark.parametrize(
    "form",
    [
        lambda m: sgd(m),
        lambda m: [sgd(m)],
        lambda m: ([o := sgd(m)], [torch.optim.lr_scheduler.StepLR(o, 1)]),
        lambda m: ([o := sgd(m)], torch.optim.lr_scheduler.StepLR(o, 1)),
        lambda m: {
            "optimizer": (o := sgd(m)),
            "lr_scheduler": torch.optim.lr_scheduler.StepLR(o, 1),
        },
        lambda m: {"optimizer": sgd(m)},
        lambda m: [
            {
                "optimizer": (o := sgd(m)),
                "lr_scheduler": {"scheduler": torch.optim.lr_scheduler.StepLR(o, 1)},
            }
        ],
    ],
    ids=[
        "optimizer",
        "list",
        "two-lists",
        "list-and-scheduler",
        "dict",
        "dict-no-sched",
        "list-of-dicts",
    ],
)
def test_every_return_form(form):
    m = with_optimizers(form)
    t = L.Trainer(**quiet(max_epochs=2))
    t.fit(m, loader())
    assert t.global_step == 16
    for cfg in t.lr_scheduler_configs:
        assert cfg.scheduler.get_last_lr() == [0.1 * 0.1**2]


def test_none_runs_without_optimizer():
    m = with_optimizers(lambda m: None)
    before = [p.clone() for p in m.parameters()]
    L.Trainer(**quiet(max_epochs=1)).fit(m, loader())
    assert all(torch.equal(a, b) for a, b in zip(before, m.parameters()))


def test_unknown_form_is_rejected():
    with pytest.raises(MisconfigurationException, match="Unknown configuration"):
        L.Trainer(**quiet(max_epochs=1)).fit(with_optimizers(lambda m: "adam"), loader())


def test_multiple_optimizers_need_manual_optimization():
    with pytest.raises(RuntimeError, match="manual optimization"):
        L.Trainer(**quiet(max_epochs=1)).fit(with_optimizers(lambda m: [sgd(m), sgd(m)]), loader())


def test_scheduler_interval_and_frequency():
    lrs = []

    class M(RegModel):
        def configure_optimizers(self):
            opt = sgd(self, 1.0)
            sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda i: 1.0 / (i + 1))
            return {
                "optimizer": opt,
                "lr_scheduler": {"scheduler": sched, "interval": "step", "frequency": 3},
            }

        def on_train_batch_start(self, batch, batch_idx):
            lrs.append(self.trainer.optimizers[0].param_groups[0]["lr"])

    L.Trainer(**quiet(max_epochs=1)).fit(M(), loader())
    assert lrs == [1.0, 1.0, 1.0, 0.5, 0.5, 0.5, 1 / 3, 1 / 3]


def test_plateau_scheduler_uses_the_monitored_metric():
    m = RegModel(scheduler="plateau", lr=0.01)
    t = L.Trainer(**quiet(max_epochs=4))

    class Worse(type(m)):
        def validation_step(self, batch, batch_idx):
            self.log("val_loss", torch.tensor(1.0 + self.current_epoch))

    m = Worse(scheduler="plateau", lr=0.01)
    t.fit(m, loader(), loader(n=16))
    # never improves after epoch 0: patience=0 halves the lr at each later epoch
    assert t.optimizers[0].param_groups[0]["lr"] == pytest.approx(0.01 * 0.5**3)


def test_plateau_scheduler_with_missing_metric_fails_clearly():
    m = RegModel(scheduler="plateau")
    with pytest.raises(MisconfigurationException, match="val_loss.*not available"):
        L.Trainer(**quiet(max_epochs=1)).fit(m, loader())


class GAN(L.LightningModule):
    """Two optimizers, manual optimization: the GAN pattern."""

    def __init__(self):
        super().__init__()
        self.automatic_optimization = False
        self.g = nn.Linear(4, 8)
        self.d = nn.Linear(8, 1)

    def training_step(self, batch, batch_idx):
        opt_g, opt_d = self.optimizers()
        real = batch[0]
        z = torch.randn(real.shape[0], 4)
        self.toggle_optimizer(opt_d)
        assert all(not p.requires_grad for p in self.g.parameters())
        d_loss = self.d(real).mean() - self.d(self.g(z).detach()).mean()
        opt_d.zero_grad()
        self.manual_backward(d_loss)
        opt_d.step()
        self.untoggle_optimizer(opt_d)
        g_loss = self.d(self.g(z)).mean()
        opt_g.zero_grad()
        self.manual_backward(g_loss)
        self.clip_gradients(opt_g, gradient_clip_val=0.5, gradient_clip_algorithm="norm")
        opt_g.step()
        self.log("g_loss", g_loss, prog_bar=True)
        for s in self.lr_schedulers():
            s.step()

    def configure_optimizers(self):
        og = torch.optim.Adam(self.g.parameters(), lr=1e-3)
        od = torch.optim.Adam(self.d.parameters(), lr=1e-3)
        return [og, od], [
            torch.optim.lr_scheduler.StepLR(og, 1),
            torch.optim.lr_scheduler.StepLR(od, 1),
        ]


def test_manual_optimization_gan():
    m = GAN()
    t = L.Trainer(**quiet(max_epochs=1))
    t.fit(m, loader())
    assert t.global_step == 16  # two optimizer steps per batch count, as in Lightning
    assert isinstance(m.optimizers()[0], torch.optim.Adam)
    assert type(m.optimizers()[0]).__name__ == "LightningAdam"
    assert "g_loss" in t.callback_metrics


def test_manual_optimization_rejects_trainer_clipping_and_accumulation():
    for flags in ({"gradient_clip_val": 1.0}, {"accumulate_grad_batches": 2}):
        with pytest.raises(MisconfigurationException, match="manual optimization"):
            L.Trainer(**quiet(max_epochs=1, **flags)).fit(GAN(), loader())


def test_lbfgs_closure_is_reevaluated():
    calls = []

    class M(RegModel):
        def training_step(self, batch, batch_idx):
            calls.append(batch_idx)
            return super().training_step(batch, batch_idx)

        def configure_optimizers(self):
            return torch.optim.LBFGS(self.parameters(), max_iter=3)

    t = L.Trainer(**quiet(max_epochs=1, limit_train_batches=1))
    t.fit(M(), loader())
    assert calls == [0, 0, 0] and t.global_step == 1


def test_overridden_optimizer_step_and_zero_grad_hooks():
    events = []

    class M(RegModel):
        def optimizer_step(self, epoch, batch_idx, optimizer, optimizer_closure=None):
            events.append(("step", batch_idx))
            optimizer.step(closure=optimizer_closure)

        def optimizer_zero_grad(self, epoch, batch_idx, optimizer):
            events.append(("zero", batch_idx))
            optimizer.zero_grad(set_to_none=False)

    L.Trainer(**quiet(max_epochs=1, accumulate_grad_batches=2, limit_train_batches=4)).fit(
        M(), loader()
    )
    assert events == [("zero", 0), ("step", 1), ("zero", 2), ("step", 3)]


def test_estimated_stepping_batches():
    seen = []

    class M(RegModel):
        def configure_optimizers(self):
            seen.append(self.trainer.estimated_stepping_batches)
            opt = sgd(self)
            sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=0.1, total_steps=seen[-1])
            return {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "interval": "step"}}

    L.Trainer(**quiet(max_epochs=3, accumulate_grad_batches=3)).fit(M(), loader())
    assert seen == [9]


@pytest.mark.parametrize("engine", ["runtime", "lightning"])
def test_skipping_the_rest_of_an_epoch_still_steps_epoch_schedulers(engine):
    """on_train_batch_start returning -1 ends the epoch; epoch-interval schedulers still step
    (Lightning's behaviour, checked against Lightning itself)."""
    if engine == "lightning":
        lightning = pytest.importorskip("lightning")
        base = lightning.LightningModule
        trainer_cls = lightning.Trainer
    else:
        base = L.LightningModule
        trainer_cls = L.Trainer

    class Skipper(base):
        def __init__(self):
            super().__init__()
            self.layer = torch.nn.Linear(4, 1)
            self.seen = []

        def on_train_batch_start(self, batch, batch_idx):
            if batch_idx == 1:
                return -1

        def training_step(self, batch, batch_idx):
            self.seen.append((self.current_epoch, batch_idx))
            return self.layer(batch[0]).pow(2).mean()

        def configure_optimizers(self):
            opt = torch.optim.SGD(self.parameters(), lr=1.0)
            return [opt], [torch.optim.lr_scheduler.StepLR(opt, step_size=1, gamma=0.5)]

    data = torch.utils.data.DataLoader(
        torch.utils.data.TensorDataset(torch.randn(16, 4)), batch_size=4
    )
    model = Skipper()
    trainer = trainer_cls(
        max_epochs=3,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
    )
    trainer.fit(model, data)
    assert model.seen == [(0, 0), (1, 0), (2, 0)]
    assert trainer.optimizers[0].param_groups[0]["lr"] == pytest.approx(0.125)


def test_lightning_optimizer_reads_the_optimizer_state_it_wraps():
    """The wrapper keeps no copy of the optimizer's state: loading a state dict into the wrapped
    optimizer (which replaces its ``param_groups`` list) shows through the wrapper, and loading
    through the wrapper reaches the optimizer."""
    import copy

    from runtime.optimization import LightningOptimizer

    layer = nn.Linear(3, 4)
    opt0 = torch.optim.Adam(layer.parameters(), lr=0.1)
    wrapped0 = LightningOptimizer(opt0)
    opt0.param_groups[0]["lr"] = 1.0
    assert wrapped0.param_groups[0]["lr"] == 1.0
    assert isinstance(wrapped0, torch.optim.Adam)
    state = copy.deepcopy(opt0.state_dict())

    opt1 = torch.optim.Adam(layer.parameters(), lr=100)
    wrapped1 = LightningOptimizer(opt1)
    opt1.load_state_dict(state)
    assert wrapped1.param_groups[0]["lr"] == 1.0
    assert wrapped1.param_groups is opt1.param_groups

    opt2 = torch.optim.Adam(layer.parameters(), lr=100)
    wrapped2 = LightningOptimizer(opt2)
    wrapped2.load_state_dict(state)
    assert opt2.param_groups[0]["lr"] == 1.0

    # a param group added through the wrapper lands in the optimizer
    extra = nn.Parameter(torch.zeros(2))
    wrapped2.add_param_group({"params": [extra]})
    assert len(opt2.param_groups) == 2
    # a plain step outside a run steps the optimizer
    layer(torch.ones(1, 3)).sum().backward()
    before = layer.weight.detach().clone()
    wrapped2.step()
    assert not torch.equal(before, layer.weight)
    assert copy.deepcopy(wrapped2).optimizer is not opt2


class _StepWithoutClosure(torch.optim.SGD):
    def step(self, closure=None):  # forgets the closure: training_step would never run
        return super().step()


class _SkipsTheClosure(RegModel):
    def optimizer_step(self, epoch, batch_idx, optimizer, optimizer_closure=None):
        pass  # never calls optimizer_closure()


@pytest.mark.parametrize(
    "model",
    [
        lambda: with_optimizers(lambda m: _StepWithoutClosure(m.parameters(), lr=0.1)),
        _SkipsTheClosure,
    ],
    ids=["optimizer-step-ignores-closure", "optimizer-step-hook-skips-it"],
)
def test_a_step_that_never_runs_the_closure_is_an_error(model):
    # as in Lightning: stepping on gradients training_step never computed would silently train
    # on nothing (or on stale gradients), so the first such step raises
    m = model()
    before = [p.clone() for p in m.parameters()]
    with pytest.raises(MisconfigurationException, match="The closure hasn't been executed"):
        L.Trainer(**quiet(max_epochs=1)).fit(m, loader())
    assert all(torch.equal(a, b) for a, b in zip(before, m.parameters()))
