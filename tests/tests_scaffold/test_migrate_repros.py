"""Shapes the migrator once got wrong on real scripts (crashes, code that failed to run, and runs
that printed other numbers with exit 0). Each script in ``migrate_repros/`` prints ``FINAL ...``;
a migration must either refuse (nothing written, a reason) or print the same line.

``EXPECT`` says which outcome each shape must get today: ``migrated`` ones run both ways (two
at a time, ``slow`` marker); the others must be refused with the given rule code."""

from __future__ import annotations

import re
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from scaffold.migrate.engine import MIGRATED, NOT_CONVERTED, migrate_source

HERE = Path(__file__).parent / "migrate_repros"
ROOT = Path(__file__).resolve().parents[2]
EXPECT = {
    "teacher_in_main.py": MIGRATED,
    "aliased_imports.py": MIGRATED,
    "lookalike_clip.py": MIGRATED,
    "carried_batch_names.py": MIGRATED,
    "conditional_clip.py": MIGRATED,
    "cuda_flag.py": MIGRATED,
    "dataparallel_comment.py": MIGRATED,
    "dataparallel_gan_conditional.py": MIGRATED,
    "from_torch_imports.py": MIGRATED,
    "gan_every_other.py": MIGRATED,
    "global_counter.py": MIGRATED,
    "main_guard.py": MIGRATED,
    "tqdm_and_genexp.py": MIGRATED,
    "two_models_enumerate_epochs.py": MIGRATED,
    "flat_while_next.py": MIGRATED,
    "flat_while_counter.py": MIGRATED,
    "ddp_env_unconverted.py": MIGRATED,
    "optimizer_if_else.py": MIGRATED,
    "global_in_eval_helper.py": MIGRATED,
    "carried_loop_index.py": MIGRATED,
    "helper_declares_global.py": MIGRATED,
    "helper_tqdm_parameter.py": MIGRATED,
    "reseed_each_epoch.py": MIGRATED,
    "epoch_read_by_function.py": MIGRATED,
    "micro_batch_accumulation.py": MIGRATED,
    "class_backward_loop_steps.py": (NOT_CONVERTED, "SCF326"),
    "generator_each_epoch.py": MIGRATED,
    "zip_of_loaders.py": MIGRATED,
    "enumerate_in_progress_bar.py": MIGRATED,
    "tuple_result_helper.py": MIGRATED,
    "invariant_batch_count.py": MIGRATED,
    "training_in_try.py": MIGRATED,
    "helper_builds_optimizer.py": MIGRATED,
    "helper_names_shared_with_caller.py": MIGRATED,
    "pretrain_finetune.py": MIGRATED,
    "shared_optimizer.py": MIGRATED,
    "two_loops_one_epoch.py": (NOT_CONVERTED, "SCF301"),
    "optimizer_from_checkpoint.py": MIGRATED,
    "lr_read_before_scheduler.py": MIGRATED,
    "training_call_in_expression.py": MIGRATED,
    "break_in_nested_if.py": MIGRATED,
    "break_before_more_code.py": MIGRATED,
    "manual_optimization_with_amp.py": MIGRATED,
    "manual_optimization_with_scaler_on_cpu.py": MIGRATED,
    "gan_trainer_class.py": MIGRATED,
    "break_before_the_step.py": (NOT_CONVERTED, "SCF318"),
    "phase_loop.py": MIGRATED,
    "epoch_loop_in_called_function.py": MIGRATED,
    "scheduler_before_backward.py": MIGRATED,
    "break_with_random_augmentation.py": MIGRATED,
    "accumulation_flag.py": MIGRATED,
    "spawn_after_parent_seed.py": (NOT_CONVERTED, "SCF328"),
    "progress_bar_block.py": MIGRATED,
    "bound_on_one_path.py": MIGRATED,
    "optimizer_from_helper.py": MIGRATED,
    "endless_loop_with_eval.py": MIGRATED,
    "plateau_step_in_scaled_loop.py": MIGRATED,
    "stateless_metric_after_step.py": MIGRATED,
    "nanogpt_shape.py": MIGRATED,
    "endless_loop_in_epoch.py": MIGRATED,
    "tensors_in_a_list.py": MIGRATED,
    "tensors_two_optimizers.py": MIGRATED,
    "tensors_rebound.py": (NOT_CONVERTED, "SCF311"),
    "tensors_updated_by_hand.py": MIGRATED,
    "update_helper_over_tensors.py": MIGRATED,
    "update_reads_decayed_lr.py": (NOT_CONVERTED, "SCF310"),
    "closure_step_then_evaluation.py": MIGRATED,
    "tested_while_with_continue.py": (NOT_CONVERTED, "SCF330"),
    "loader_made_each_epoch.py": MIGRATED,
    "return_in_batch_loop.py": MIGRATED,
    "return_in_validated_loop.py": (NOT_CONVERTED, "SCF319"),
    "return_in_epoch_helper.py": MIGRATED,
    "critic_repeat_loop.py": MIGRATED,
    "break_before_the_batch_loop.py": MIGRATED,
    "optional_optimizer.py": MIGRATED,
    "outer_batch_in_step_loop.py": MIGRATED,
    "param_groups_grown.py": MIGRATED,
    "clip_value_changes_per_epoch.py": MIGRATED,
    "clip_value_from_caller.py": MIGRATED,
    "accumulation_count_changes.py": MIGRATED,
    "step_budget_changes.py": MIGRATED,
    "head_replaced_after_optimizer.py": MIGRATED,
    "accumulation_partial_last_group.py": MIGRATED,
    "optimizer_step_ignores_closure.py": MIGRATED,
    "optimizer_step_takes_no_closure.py": (NOT_CONVERTED, "SCF333"),
    "sam_first_second_step.py": MIGRATED,
}


def test_every_repro_has_an_expectation():
    assert sorted(EXPECT) == sorted(p.name for p in HERE.glob("*.py"))


def _final(path: Path) -> str:
    proc = subprocess.run(
        [sys.executable, str(path)], capture_output=True, text=True, cwd=path.parent, timeout=300
    )
    assert proc.returncode == 0, f"{path.name}: {proc.stderr[-1500:]}"
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("FINAL ")]
    assert lines, proc.stdout[-500:]
    return lines[-1]


@pytest.mark.parametrize("name", sorted(n for n, e in EXPECT.items() if e != MIGRATED))
def test_refused_with_a_reason_and_nothing_changed(name):
    status, code = EXPECT[name]
    source = (HERE / name).read_text()
    result = migrate_source(source)
    assert result.status == status, result.findings
    assert result.code == source
    assert code in {f.code for f in result.findings}, result.findings


MIGRATING = sorted(n for n, e in EXPECT.items() if e == MIGRATED)


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """{name: (migration result, FINAL line of the original, FINAL line of the migration)}."""
    out = tmp_path_factory.mktemp("repros")
    results, jobs = {}, []
    for name in MIGRATING:
        source = (HERE / name).read_text()
        results[name] = migrate_source(source)
        (out / name).mkdir()
        original, migrated = out / name / "original.py", out / name / "migrated.py"
        original.write_text(source)
        migrated.write_text(results[name].code)
        jobs += [original, migrated]
    with ThreadPoolExecutor(max_workers=2) as pool:
        finals = list(pool.map(_final, jobs))
    return {n: (results[n], finals[2 * i], finals[2 * i + 1]) for i, n in enumerate(MIGRATING)}


@pytest.mark.slow
@pytest.mark.parametrize("name", MIGRATING)
def test_migrated_repro_prints_the_same_numbers(name, runs):
    result, original, migrated = runs[name]
    assert result.status == MIGRATED, result.findings
    assert migrated == original


def test_manual_optimization_keeps_a_conditional_generator_step_in_place():
    code = migrate_source((HERE / "gan_every_other.py").read_text()).code
    assert "self.automatic_optimization = False" in code
    step = code[code.index("def training_step") : code.index("def configure_optimizers")]
    # the generator's zero_grad stays outside the `if`, its backward/step inside, in that order
    assert step.index("opt_g.zero_grad()") < step.index("if i % n_gen == 0:")
    assert step.index("self.manual_backward(g_loss)") < step.index("opt_g.step()")
    assert "clamp_" in step and step.index("opt_d.step()") < step.index("clamp_")


def test_conditional_clipping_stays_between_backward_and_step():
    code = migrate_source((HERE / "conditional_clip.py").read_text()).code
    step = code[code.index("def training_step") : code.index("def configure_optimizers")]
    assert (
        step.index("self.manual_backward(loss)")
        < step.index("clip_grad_norm_")
        < step.index("opt.step()")
    )
    assert "gradient_clip_val" not in code


def test_cuda_under_a_condition_takes_the_device_the_model_ended_on():
    """`if use_cuda: net.cuda()`: the model's own device type after the script placed it
    (also right where `.cuda()` does nothing, as under CPU stand-ins)."""
    code = migrate_source((HERE / "cuda_flag.py").read_text()).code
    assert "accelerator=next(net.parameters()).device.type" in code
    assert '"gpu" if' not in code


def test_missing_imports_are_added():
    code = migrate_source((HERE / "from_torch_imports.py").read_text()).code
    assert "\nimport torch\n" in code


def test_data_parallel_wrapper_is_kept_as_written():
    code = migrate_source((HERE / "dataparallel_comment.py").read_text()).code
    assert "net = nn.DataParallel(net)  # every visible GPU" in code
    assert 'strategy="ddp"' not in code


def test_batch_names_reused_after_the_loop_stay_local():
    code = migrate_source((HERE / "carried_batch_names.py").read_text()).code
    assert "self.inputs" not in code and "lit_model.inputs" not in code
    # `loss` is read after the loop: handed back from the module
    assert "loss = lit_model.loss" in code


def test_a_declared_global_is_declared_in_each_hook_that_assigns_it():
    code = migrate_source((HERE / "global_counter.py").read_text()).code
    step = code[code.index("def training_step") : code.index("def configure_optimizers")]
    assert "global seen" in step
    assert "self.seen" not in code


def test_generator_expression_names_are_not_renamed():
    code = migrate_source((HERE / "tqdm_and_genexp.py").read_text()).code
    assert "for xb, yb in loader)" in code
    assert "trainer.fit(lit_model, loader)" in code


def test_an_unconditional_cuda_call_takes_the_models_own_device_type():
    """`model.cuda()` / `model.to(gpu_id)`: the Trainer runs where the script put the model
    (also when a CPU-only stand-in makes `.cuda()` a no-op), never a hard-coded 'gpu'."""
    source = (HERE / "cuda_flag.py").read_text()
    source = source.replace("if use_cuda:\n    net.cuda()", "net.cuda()")
    code = migrate_source(source).code
    assert "accelerator=next(net.parameters()).device.type" in code
    index = migrate_source(source.replace("net.cuda()", "net.to(0)")).code
    assert "accelerator=next(net.parameters()).device.type" in index


def test_every_model_an_optimizer_trains_is_a_submodule():
    code = migrate_source((HERE / "two_models_enumerate_epochs.py").read_text()).code
    assert "self.dec = dec" in code and "LitModel(enc, dec" in code
    assert "self.dec(self.model(x))" in code


def test_tooling_stays_on_unless_switched_off(tmp_path):
    source = (HERE / "main_guard.py").read_text()
    assert "logger=False" not in migrate_source(source).code
    bare = migrate_source(source, tooling=False).code
    assert "logger=False" in bare and "enable_checkpointing=False" in bare
    script = tmp_path / "train.py"
    script.write_text(source)
    proc = subprocess.run(
        [sys.executable, "-m", "scaffold", "migrate", str(script), "-o", str(tmp_path / "out.py"),
         "--no-tooling"],
        capture_output=True, text=True, cwd=tmp_path,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert "logger=False" in (tmp_path / "out.py").read_text()


def test_library_functions_are_known_by_what_they_import_not_their_spelling():
    code = migrate_source((HERE / "aliased_imports.py").read_text()).code
    # `clip` is torch's clip_grad_norm_, `Warmup` torch's LambdaLR, `tqdm.tqdm` a progress bar
    assert "gradient_clip_val=0.05" in code and "automatic_optimization" not in code
    assert '"interval": "epoch"' in code and "warm.step()" not in code
    assert "trainer.fit(lit_model, loader)" in code


def test_a_lookalike_of_a_torch_function_is_not_taken_for_it():
    code = migrate_source((HERE / "lookalike_clip.py").read_text()).code
    assert "gradient_clip_val" not in code
    step = code[code.index("def training_step") : code.index("def configure_optimizers")]
    assert (
        step.index("self.manual_backward(")
        < step.index("my_clip_grad_norm_(")
        < step.index("opt.step()")
    )


AUTOCAST_ALIAS = """
import torch
from torch import nn
from torch.cuda.amp import autocast as mixed

net = nn.Linear(4, 2)
loader = torch.utils.data.DataLoader(
    torch.utils.data.TensorDataset(torch.randn(8, 4), torch.randint(0, 2, (8,))), batch_size=4
)
opt = torch.optim.SGD(net.parameters(), lr=0.1)
for epoch in range(2):
    for x, y in loader:
        opt.zero_grad()
        with mixed():
            loss = nn.functional.cross_entropy(net(x), y)
        loss.backward()
        opt.step()
"""


def test_an_aliased_cuda_autocast_maps_to_16_bit_mixed_precision():
    result = migrate_source(
        AUTOCAST_ALIAS.replace("opt = torch.optim", "net.cuda()\nopt = torch.optim")
    )
    assert result.status == MIGRATED, result.findings
    assert 'precision="16-mixed"' in result.code
    assert "with mixed()" not in result.code
    assert any(f.code == "SCF008" for f in result.findings)


@pytest.mark.parametrize(
    ("where", "precision"),
    [
        # a CUDA autocast changes nothing for a model on the CPU: float32, as the script ran
        ("", 'precision="32-true"'),
        (
            "net.to(device)",
            'precision="16-mixed" if use_amp and torch.device(device).type in ("cuda", "gpu") '
            'else "32-true"',
        ),
    ],
)
def test_a_cuda_autocast_is_mixed_precision_only_where_the_model_is_on_cuda(where, precision):
    source = AUTOCAST_ALIAS.replace(
        "opt = torch.optim",
        f'use_amp = True\ndevice = "cuda" if torch.cuda.is_available() else "cpu"\n{where}\n'
        "opt = torch.optim",
    ).replace("with mixed():", "with mixed(enabled=use_amp):")
    result = migrate_source(source)
    assert result.status == MIGRATED, result.findings
    assert precision in result.code


SLURM_DDP = """
import os
import torch
import torch.distributed as dist
import torch.multiprocessing as mp


def worker(gpu, ngpus, node_rank, world):
    dist.init_process_group("gloo", init_method="env://", rank=node_rank * ngpus + gpu,
                            world_size=world)
    model = torch.nn.Linear(2, 1)
    model = torch.nn.parallel.DistributedDataParallel(model)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(torch.randn(8, 2)))
    for epoch in range(2):
        for (x,) in loader:
            opt.zero_grad()
            model(x).sum().backward()
            opt.step()


if __name__ == "__main__":
    nodes = int(os.environ["SLURM_NNODES"])
    mp.spawn(worker, nprocs=2, args=(2, int(os.environ["SLURM_NODEID"]), 2 * nodes))
"""


def test_a_multi_node_slurm_layout_is_left_as_written():
    # the Trainer would get devices=2 and no num_nodes: each node would train on its own
    result = migrate_source(SLURM_DDP)
    assert result.status == NOT_CONVERTED
    assert result.findings[-1].code == "SCF328" and "SLURM_" in result.findings[-1].message
    assert result.code == SLURM_DDP


def test_horovod_is_out_of_scope():
    source = "import horovod.torch as hvd\n" + SLURM_DDP.replace("SLURM_", "X_")
    result = migrate_source(source)
    assert result.status == "refused" and result.findings[0].code == "SCF901"
    assert "Horovod" in result.findings[0].message


def test_a_class_that_needs_only_data_and_settings_leaves_the_function():
    code = (ROOT / "examples" / "migrated" / "mnist_style.py").read_text()
    # top level, taking what it reads from main() in __init__
    assert "\nclass LitModel(L.LightningModule):" in code
    assert "def __init__(self, model, args, test_loader, train_loader):" in code
    assert "lit_model = LitModel(model, args, test_loader, train_loader)" in code
    hooks = code[code.index("class LitModel") : code.index("def main")]
    assert "self.args.log_interval" in hooks and "len(self.test_loader.dataset)" in hooks


def test_a_class_reading_a_network_of_the_function_stays_in_it():
    code = migrate_source((HERE / "teacher_in_main.py").read_text()).code
    assert "\n    class LitModel(L.LightningModule):" in code
    assert "self.teacher" not in code


def test_optimizer_built_in_branches_is_handed_over_as_built():
    code = migrate_source((HERE / "optimizer_if_else.py").read_text()).code
    # the if/elif/else stays where it was; the module gets the object it built
    assert 'if name == "sgd":\n    optimizer = torch.optim.SGD(net.parameters()' in code
    assert "return self.optimizer" in code
    assert "LitModel(net, optimizer)" in code


def test_branches_training_different_models_are_refused_with_that_reason():
    source = (HERE / "optimizer_if_else.py").read_text()
    source = source.replace(
        "optimizer = torch.optim.RMSprop(net.parameters()",
        "optimizer = torch.optim.RMSprop(net[0].parameters()",
    )
    result = migrate_source(source)
    assert result.status == NOT_CONVERTED
    (finding,) = [f for f in result.findings if f.code == "SCF311"]
    assert "branches" in finding.message and "different models' parameters" in finding.message


def test_optimizer_of_parameter_groups_over_tensors_is_refused_naming_its_construction():
    source = """import torch
w = torch.zeros(3, requires_grad=True)
loader = [(torch.ones(3), torch.ones(()))]
opt = torch.optim.SGD([{"params": [w]}], lr=0.1)
for epoch in range(2):
    for x, y in loader:
        opt.zero_grad()
        ((w @ x - y) ** 2).backward()
        opt.step()
"""
    result = migrate_source(source)
    assert result.status == NOT_CONVERTED
    (finding,) = [f for f in result.findings if f.code == "SCF311"]
    assert '`opt = torch.optim.SGD([{"params": [w]}], lr=0.1)` takes no `<model>.parameters()`' in (
        finding.message
    )


def test_autograd_function_backward_is_not_a_training_loop():
    source = """import torch


class Square(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return x * x

    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved_tensors
        return Square.helper.backward(grad) * 2 * x
"""
    result = migrate_source(source)
    assert result.code == source
    assert [f.code for f in result.findings] == ["SCF100"]


@pytest.mark.parametrize(
    "update, converted",
    [
        ("grads.append(p.grad.detach().clone())", False),
        ("norms.append(p.grad.norm())", False),
        ("p -= 0.1 * p.grad", True),
        ("p.data.add_(p.grad, alpha=-0.1)", True),
        ("p.copy_(p - 0.1 * p.grad)", True),
    ],
)
def test_a_loop_that_only_reads_gradients_is_no_training_loop(update, converted):
    # per-sample gradient utilities (opacus) run zero_grad/backward and collect p.grad: there is
    # no parameter update, so there is nothing for a Trainer to do
    source = f"""import torch

model = torch.nn.Linear(3, 1)
grads, norms = [], []
for x in torch.randn(4, 2, 3):
    model.zero_grad()
    model(x).sum().backward()
    with torch.no_grad():
        for p in model.parameters():
            {update}
"""
    result = migrate_source(source)
    codes = [f.code for f in result.findings]
    if converted:
        assert result.status == MIGRATED and "SCF012" in codes
    else:
        assert result.code == source and codes == ["SCF100"]


def test_check_flags_micro_batch_accumulation(tmp_path):
    script = tmp_path / "accumulate.py"
    script.write_text((HERE / "micro_batch_accumulation.py").read_text())
    proc = subprocess.run(
        [sys.executable, "-m", "scaffold", "migrate", "--check", str(script)],
        capture_output=True,
        text=True,
    )
    # the loop around the micro-batch loop is the training loop (manual optimization keeps the
    # inner loop as written): --check says it would be converted
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "SCF001" in proc.stdout and "SCF011" in proc.stdout
    assert f"{script}:13:1: SCF001" in proc.stdout


def test_helper_globals_and_a_carried_loop_index_keep_their_bindings():
    code = migrate_source((HERE / "global_in_eval_helper.py").read_text()).code
    end = code[code.index("def on_validation_epoch_end") :]
    # the helper's `global best` goes to the hook that assigns `best`
    assert end.index("global best") < end.index("best = acc")
    assert (
        "global"
        not in code[code.index("def on_validation_epoch_start") : code.index("def validation_step")]
    )
    # the enumerate index read after the loop is stored from the step's own argument
    code = migrate_source((HERE / "carried_loop_index.py").read_text()).code
    assert (
        "def training_step(self, batch, batch_index):\n        self.batch_idx = batch_index" in code
    )


def test_cuda_in_if_and_elif_branches_takes_the_models_device():
    source = """import argparse
import torch
p = argparse.ArgumentParser()
p.add_argument("--net", default="a")
args = p.parse_args()
if args.net == "a":
    model = torch.nn.Linear(3, 1).cuda()
elif args.net == "b":
    model = torch.nn.Sequential(torch.nn.Linear(3, 1)).cuda()
optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
loader = torch.utils.data.DataLoader(
    torch.utils.data.TensorDataset(torch.randn(8, 3), torch.randn(8, 1)), batch_size=4
)
for epoch in range(2):
    for x, y in loader:
        x, y = x.cuda(), y.cuda()
        optimizer.zero_grad()
        loss = ((model(x) - y) ** 2).mean()
        loss.backward()
        optimizer.step()
"""
    code = migrate_source(source).code
    # whichever branch ran, the Trainer takes the device the model ended on
    assert "accelerator=next(model.parameters()).device.type" in code


SAM_LIKE = """import torch
net = torch.nn.Linear(3, 1)
class SAM:
    def __init__(self, params): self.opt = torch.optim.SGD(params, lr=0.1)
    def first_step(self, zero_grad=False): pass
    def second_step(self, zero_grad=False): self.opt.step(); self.opt.zero_grad()
optimizer = SAM(net.parameters())
loader = [(torch.randn(4, 3), torch.randn(4, 1))]
for epoch in range(2):
    for x, y in loader:
        loss = ((net(x) - y) ** 2).mean()
        loss.backward()
        optimizer.first_step(zero_grad=True)
        ((net(x) - y) ** 2).mean().backward()
        optimizer.second_step(zero_grad=True)
"""


def test_an_optimizer_stepped_through_another_method_is_flagged_not_passed_over():
    """SAM's first_step/second_step (and one-line methods in a class) once gave "no training
    loop" (or an internal error): `--check` must flag the loop."""
    result = migrate_source(SAM_LIKE)
    assert result.status == NOT_CONVERTED and result.code == SAM_LIKE
    (finding,) = [f for f in result.findings if f.code == "SCF333"]
    assert "`optimizer.first_step()`" in finding.message and finding.line == 10


def test_distributed_library_code_without_a_training_step_is_left_alone():
    source = (
        "import torch.distributed as dist\n\n\n"
        "def average(tensor):\n"
        "    dist.all_reduce(tensor)\n"
        "    return tensor / dist.get_world_size()\n"
    )
    result = migrate_source(source)
    assert result.code == source and [f.code for f in result.findings] == ["SCF100"]


SPAWNED = """import builtins
import sys
import torch
import torch.multiprocessing as mp
from torch.utils.data import DataLoader, TensorDataset


def main_worker(gpu, n):
    if gpu != 0:

        def print_pass(*args):
            pass

        builtins.print = print_pass
    model = torch.nn.Linear(2, 1)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    loader = DataLoader(TensorDataset(torch.randn(12, 2)), batch_size=4)
    for epoch in range(2):
        for (x,) in loader:
            opt.zero_grad()
            loss = model(x).sum()
            loss.backward()
            opt.step()


if __name__ == "__main__":
    mp.spawn(main_worker, nprocs=2, args=(2,))
"""


def test_a_function_empty_as_written_survives_the_spawn_rewrite():
    """moco's `def print_pass(*args): pass` (assigned to builtins.print on other ranks) was
    removed with the functions the distributed clean-up empties."""
    result = migrate_source(SPAWNED)
    assert result.status == MIGRATED
    assert "def print_pass(*args):" in result.code and "builtins.print = print_pass" in result.code


def test_spawn_on_one_path_and_a_direct_call_on_another_is_refused():
    source = SPAWNED.replace(
        "    mp.spawn(main_worker, nprocs=2, args=(2,))",
        "    if len(sys.argv) > 1:\n        mp.spawn(main_worker, nprocs=2, args=(2,))\n"
        "    else:\n        main_worker(0, 1)",
    )
    result = migrate_source(source)
    assert result.status == NOT_CONVERTED and result.code == source
    (finding,) = [f for f in result.findings if f.code == "SCF328"]
    assert "called directly on another" in finding.message


HELPER = """import torch
net = torch.nn.Linear(3, 1)
loader = torch.utils.data.DataLoader(
    torch.utils.data.TensorDataset(torch.randn(8, 3), torch.randn(8, 1)), batch_size=4
)


def train(epoch, optimizer):
    for x, y in loader:
        optimizer.zero_grad()
        loss = ((net(x) - y) ** 2).mean()
        loss.backward()
        optimizer.step()
    return loss.item(), epoch


def main():
    optimizer = torch.optim.SGD(net.parameters(), lr=0.1)
    for epoch in range(3):
        CALL


main()
"""


@pytest.mark.parametrize(
    "call, says",
    [
        # the helper's result used in an expression: the caller cannot be followed (it once
        # said "passed in")
        ("print(train(epoch, optimizer))", "`optimizer` is a parameter of `train()`"),
        # the optimizer rebuilt every epoch (it once said "not built in this scope")
        (
            "optimizer = torch.optim.SGD(net.parameters(), lr=0.1 / (epoch + 1))\n"
            "        train(epoch, optimizer)",
            "is assigned in the epoch loop while training runs",
        ),
    ],
)
def test_refusal_reasons_say_what_blocks(call, says):
    result = migrate_source(HELPER.replace("CALL", call))
    assert result.status == NOT_CONVERTED
    (finding,) = [f for f in result.findings if f.code == "SCF311"]
    assert says in finding.message, finding.message


def test_a_per_epoch_reseed_is_refused_for_the_lightning_engine_only():
    source = (HERE / "reseed_each_epoch.py").read_text()
    assert migrate_source(source).status == MIGRATED  # the runtime keeps the order (slow test)
    result = migrate_source(source, engine="lightning")
    assert result.status == NOT_CONVERTED and "SCF334" in {f.code for f in result.findings}


def test_an_epoch_variable_read_by_a_function_stays_global():
    code = migrate_source((HERE / "epoch_read_by_function.py").read_text()).code
    hook = code[code.index("def on_train_epoch_end") : code.index("def configure_optimizers")]
    assert "global epoch" in hook and "epoch = 1 + self.current_epoch" in hook


@pytest.mark.parametrize(
    ("name", "made"),
    [
        ("generator_each_epoch.py", "batches(4)"),
        ("zip_of_loaders.py", "zip(a, b)"),
        ("enumerate_in_progress_bar.py", "enumerate(loader, 1)"),
    ],
)
def test_a_one_shot_iterable_is_made_anew_each_epoch(name, made):
    """What the loop header made each epoch reaches the Trainer as a maker, not as one
    iterator that the first epoch would exhaust; a DataLoader variable is passed as it is."""
    code = migrate_source((HERE / name).read_text()).code
    assert f"trainer.fit(lit_model, EachEpoch(lambda: {made}))" in code
    plain = migrate_source((HERE / "tqdm_and_genexp.py").read_text()).code
    assert "EachEpoch" not in plain and "trainer.fit(lit_model, loader)" in plain


def test_a_value_recomputed_alike_every_epoch_is_the_loader_s_not_a_refusal():
    code = migrate_source((HERE / "invariant_batch_count.py").read_text()).code
    assert "trainer.fit(lit_model, range(n // batch_size))" in code
    # a value the epoch changes is still refused
    changing = (
        (HERE / "invariant_batch_count.py")
        .read_text()
        .replace("num_batches = n // batch_size", "num_batches = n // batch_size - i")
    )
    result = migrate_source(changing)
    assert result.status == NOT_CONVERTED and "SCF331" in {f.code for f in result.findings}
    # the epoch variable itself in the header (it once reached trainer.fit, undefined there)
    header = (
        (HERE / "invariant_batch_count.py")
        .read_text()
        .replace("for k in range(num_batches):", "for k in range(num_batches - i):")
    )
    result = migrate_source(header)
    assert result.status == NOT_CONVERTED
    (finding,) = [f for f in result.findings if f.code == "SCF331"]
    assert "reads `i`" in finding.message


MANUAL_BRANCH = """import torch
net = torch.nn.Linear(3, 1)
loader = torch.utils.data.DataLoader(
    torch.utils.data.TensorDataset(torch.randn(8, 3), torch.randn(8, 1)), batch_size=4
)
checkpoint = None


def clip(optimizer, value):
    for group in optimizer.param_groups:
        for p in group["params"]:
            p.grad.data.clamp_(-value, value)


if checkpoint is None:
    optimizer = torch.optim.Adam(params=filter(lambda p: p.requires_grad, net.parameters()))
ELSE
for epoch in range(2):
    for x, y in loader:
        optimizer.zero_grad()
        ((net(x) - y) ** 2).mean().backward()
        clip(optimizer, 0.1)
        optimizer.step()
"""


def test_manual_optimization_follows_an_optimizer_built_in_a_branch():
    """a-PyTorch-Tutorial-to-Super-Resolution's shape: the optimizer built under `if checkpoint
    is None:`, a custom clip between backward and step (manual optimization)."""
    result = migrate_source(MANUAL_BRANCH.replace("ELSE\n", ""))
    assert result.status == MIGRATED, result.findings
    assert "SCF011" in {f.code for f in result.findings}
    # loaded from a checkpoint in the other branch: refused, saying so
    result = migrate_source(
        MANUAL_BRANCH.replace("ELSE", "else:\n    optimizer = checkpoint['optimizer']")
    )
    (finding,) = [f for f in result.findings if f.code == "SCF311"]
    assert "loads it from a checkpoint" in finding.message, finding.message


def test_attribute_optimizers_under_manual_optimization_are_named_in_the_refusal():
    source = """import torch
g, d = torch.nn.Linear(2, 2), torch.nn.Linear(2, 1)
holder = type("H", (), {})()
holder.g_opt = torch.optim.SGD(g.parameters(), lr=0.1)
holder.d_opt = torch.optim.SGD(d.parameters(), lr=0.1)
loader = torch.utils.data.DataLoader(torch.randn(8, 2), batch_size=4)
for epoch in range(2):
    for x in loader:
        d.zero_grad()
        d(x).mean().backward()
        holder.d_opt.step()
        g.zero_grad()
        d(g(x)).mean().backward()
        holder.g_opt.step()
"""
    result = migrate_source(source)
    assert result.status == NOT_CONVERTED and result.code == source
    (finding,) = [f for f in result.findings if f.code == "SCF307"]
    assert "`holder.d_opt` is no plain variable" in finding.message, finding.message


def test_each_training_loop_of_a_file_gets_its_own_module_and_trainer():
    result = migrate_source((HERE / "pretrain_finetune.py").read_text())
    assert result.status == MIGRATED
    code = result.code
    assert "class LitModel(" in code and "class LitModel2(" in code
    assert code.index("trainer.fit(") < code.index("phase 2") < code.index("trainer2.fit(")
    # findings point at each loop's own line in the user's file
    source = (HERE / "pretrain_finetune.py").read_text().splitlines()
    converted = [f.line for f in result.findings if f.code == "SCF001"]
    assert [source[n - 1] for n in converted] == [
        "for epoch in range(3):",
        "for epoch in range(2):",
    ]


def test_a_second_backward_loop_without_a_step_keeps_the_file_as_written():
    source = (HERE / "pretrain_finetune.py").read_text().replace("        head_opt.step()\n", "")
    result = migrate_source(source)
    assert result.status == NOT_CONVERTED and result.code == source
    (finding,) = [f for f in result.findings if f.code == "SCF301"]
    assert "takes no optimizer step" in finding.message
    lines = source.splitlines()
    assert lines[finding.line - 1] == "    for x, y in loader:"
    assert "phase 2" in "\n".join(lines[: finding.line])  # the second loop, not the first


def test_a_call_is_split_out_only_when_the_order_cannot_matter():
    def split(code: str) -> bool:
        return "SCF023" in {f.code for f in migrate_source(code).findings}

    source = (HERE / "training_call_in_expression.py").read_text()
    assert split(source)
    # the helper rebinds a global the statement reads before the call: left alone
    assert not split(
        source.replace("    net.train()\n", "    global losses\n    losses = []\n    net.train()\n")
    )
    # a call that runs only under a condition: left alone
    assert not split(
        source.replace(
            "losses.append(round(train(epoch), 6))",
            "epoch > 0 and losses.append(round(train(epoch), 6))",
        )
    )


def test_an_optimizer_from_a_branch_that_does_not_load_the_model_is_refused():
    source = (HERE / "optimizer_from_checkpoint.py").read_text()
    source = source.replace('    model = checkpoint["model"]\n', "")
    result = migrate_source(source)
    assert result.status == NOT_CONVERTED
    assert "SCF311" in {f.code for f in result.findings}


def test_an_epoch_scheduler_moves_only_when_nothing_reads_the_rate_before_it():
    source = (HERE / "lr_read_before_scheduler.py").read_text()
    kept = migrate_source(source).code
    assert '"lr_scheduler"' not in kept and "scheduler.step()" in kept
    swapped = source.replace(
        '    lrs.append(optimizer.param_groups[0]["lr"])\n    scheduler.step()\n',
        '    scheduler.step()\n    lrs.append(optimizer.param_groups[0]["lr"])\n',
    )
    assert '"lr_scheduler"' in migrate_source(swapped).code


def test_manual_optimization_keeps_the_scripts_own_mixed_precision():
    code = migrate_source((HERE / "manual_optimization_with_amp.py").read_text()).code
    step = code[code.index("def training_step") : code.index("def configure_optimizers")]
    assert "with torch.cuda.amp.autocast(enabled=use_amp):" in step
    assert "self.manual_backward(scaler.scale(loss))" in step
    assert step.index("scaler.step(optimizer)") < step.index("scaler.update()")
    assert "precision=" not in code  # the Trainer adds none of its own


def test_a_trainer_classs_optimizers_are_read_through_names_bound_once():
    source = (HERE / "gan_trainer_class.py").read_text()
    code = migrate_source(source).code
    assert "d_optimizer = runner.d_optimizer" in code and "D = runner.D" in code
    assert "d_optimizer, g_optimizer = self.optimizers()" in code
    # a method that rebinds an optimizer attribute: the names could go stale, so refused
    rebinding = source.replace(
        "    def save(self):",
        "    def reset(self):\n        self.d_optimizer = None\n\n    def save(self):",
    )
    result = migrate_source(rebinding)
    assert result.status == NOT_CONVERTED and "SCF307" in {f.code for f in result.findings}


def test_a_phase_loop_is_written_out_one_copy_per_phase():
    code = migrate_source((HERE / "phase_loop.py").read_text()).code
    assert "for phase in" not in code and "if phase" not in code
    assert "set_grad_enabled" in code  # the evaluation copy keeps its no-grad block
    assert "loaders['val']" in code.replace('"', "'")
    assert "SCF024" in {
        f.code for f in migrate_source((HERE / "phase_loop.py").read_text()).findings
    }


def test_an_optimizer_parameter_is_followed_through_the_call_not_a_global_of_its_name():
    code = migrate_source((HERE / "epoch_loop_in_called_function.py").read_text()).code
    assert "LitModel(model, optimizer" in code
    assert "LitModel(decoy" not in code


def test_a_scheduler_stepped_before_backward_keeps_its_place():
    code = migrate_source((HERE / "scheduler_before_backward.py").read_text()).code
    step = code[code.index("def training_step") : code.index("def on_train_epoch_end")]
    assert "self.automatic_optimization = False" in code
    assert step.index("scheduler.step()") < step.index("self.manual_backward(loss)")


def test_a_helper_that_reads_only_its_arguments_does_not_force_manual_optimization():
    source = (HERE / "stateless_metric_after_step.py").read_text()
    assert "automatic_optimization = False" not in migrate_source(source).code
    # the same call after the step, but reading the updated weights: manual optimization
    reading = source.replace(
        "top1, top3 = accuracy(logits, labels, topk=(1, 3))",
        "top1, top3 = accuracy(logits, labels, topk=(1, 3))\n            print(weight_norm())",
    )
    assert "automatic_optimization = False" in migrate_source(reading).code
    # a helper handed something bound before the loop (the model under another name, say)
    aliased = source.replace(
        "top1, top3 = accuracy(logits, labels, topk=(1, 3))",
        "top1, top3 = accuracy(head(inputs), labels, topk=(1, 3))",
    ).replace(
        "criterion = nn.CrossEntropyLoss()", "criterion = nn.CrossEntropyLoss()\nhead = model"
    )
    assert "automatic_optimization = False" in migrate_source(aliased).code


def test_an_optimizer_from_the_models_own_method_trains_that_model_only_when_the_method_says_so():
    source = (HERE / "nanogpt_shape.py").read_text()
    result = migrate_source(source)
    assert result.status == MIGRATED, result.findings
    assert "automatic_optimization = False" in result.code  # backward in the micro-step loop
    assert "for micro_step in range(gradient_accumulation_steps):" in result.code
    # a method that also takes another module's parameters: which model it trains is unknown
    other = source.replace(
        "param_dict = {pn: p for pn, p in self.named_parameters() if p.requires_grad}",
        "param_dict = {pn: p for pn, p in self.named_parameters() if p.requires_grad}\n"
        "        param_dict.update(dict(extra.named_parameters()))",
    )
    refused = migrate_source(other)
    assert refused.status == NOT_CONVERTED and "SCF311" in {f.code for f in refused.findings}
    # the model comes from a factory: its class (and so its method) is not known
    factory = source.replace("model = Tiny()", "model = make_model()").replace(
        "\n\ntorch.manual_seed(1337)",
        "\n\ndef make_model():\n    return Tiny()\n\n\ntorch.manual_seed(1337)",
    )
    assert "model = make_model()" in factory
    refused = migrate_source(factory)
    assert refused.status == NOT_CONVERTED and "SCF311" in {f.code for f in refused.findings}


REDUCE_SCRIPT = (ROOT / "tests/tests_scaffold/fixtures/migrate/ddp_spawn.in.py").read_text()


def test_a_metric_helper_calling_a_collective_is_kept_when_only_the_hooks_call_it():
    helper = (
        "\n\ndef reduce_mean(tensor, nprocs):\n    rt = tensor.clone()\n"
        "    dist.all_reduce(rt, op=dist.ReduceOp.SUM)\n    rt /= nprocs\n    return rt\n"
    )
    source = REDUCE_SCRIPT.replace(
        "\n\ndef main(rank, world_size):", helper + "\n\ndef main(rank, world_size):"
    )
    in_loop = source.replace(
        "            torch.nn.functional.mse_loss(model(x), y).backward()\n",
        "            loss = torch.nn.functional.mse_loss(model(x), y)\n            loss.backward()\n"
        "            print(reduce_mean(loss.detach(), world_size).item())\n",
    )
    result = migrate_source(in_loop)
    assert result.status == MIGRATED, result.findings
    assert "dist.all_reduce(rt, op=dist.ReduceOp.SUM)" in result.code
    # called before the Trainer exists as well (an evaluate-only path): no process group there
    before = in_loop.replace(
        "    for epoch in range(2):\n",
        "    if world_size > 8:\n        print(reduce_mean(torch.ones(1), world_size))\n    for epoch in range(2):\n",
    )
    refused = migrate_source(before)
    assert refused.status == NOT_CONVERTED and refused.code == before
    assert any("reduce_mean" in f.message and f.code == "SCF328" for f in refused.findings)


def test_a_name_bound_to_the_models_weights_in_the_body_is_the_model_after_the_step():
    source = (HERE / "stateless_metric_after_step.py").read_text()
    aliased = source.replace(
        "        logits = model(inputs)\n",
        "        w = model[0].weight\n        logits = model(inputs)\n",
    ).replace(
        "top1, top3 = accuracy(logits, labels, topk=(1, 3))",
        "top1, top3 = accuracy(logits, labels, topk=(1, 3))\n            norms.append(w.norm().item())",
    )
    assert "w = model[0].weight" in aliased and "norms.append(w.norm()" in aliased
    result = migrate_source(aliased)
    assert result.status == MIGRATED
    assert "automatic_optimization = False" in result.code  # reads the updated weights
    # a fresh output of the model (`logits = model(x)`) is no alias
    assert "automatic_optimization = False" not in migrate_source(source).code


def test_a_helper_rebound_after_its_def_is_not_read_as_that_def():
    source = (HERE / "stateless_metric_after_step.py").read_text()
    rebound = source.replace(
        "\n\ndef weight_norm():",
        "\n\naccuracy_of_model = None\naccuracy = accuracy if accuracy_of_model is None else None\n\n\ndef weight_norm():",
    )
    assert "automatic_optimization = False" in migrate_source(rebound).code


def test_the_comment_above_an_evaluation_helpers_call_opens_the_validation_hooks():
    source = (HERE / "global_in_eval_helper.py").read_text()
    assert "\n    test(epoch)\n" in source
    commented = source.replace(
        "\n    test(epoch)\n", "\n    # evaluate on the held-out set\n    test(epoch)\n"
    )
    result = migrate_source(commented)
    assert result.status == MIGRATED, result.findings
    start = result.code.index("def on_validation_epoch_start")
    assert "# evaluate on the held-out set" in result.code[start : start + 300]


def test_an_optimizer_over_the_scripts_own_tensors_trains_those_very_tensors():
    """`SGD([w, b])`: no module is invented around the tensors (an nn.Parameter wrapper would
    be a new tensor the script's functions never read); configure_optimizers builds the same
    optimizer over the same globals and the module says why it holds no model."""
    code = migrate_source((HERE / "tensors_in_a_list.py").read_text()).code
    assert "return torch.optim.SGD([w, b], lr=0.05, momentum=0.5)" in code
    assert "def __init__(self):" in code and "self.model" not in code
    assert "nn.Parameter" not in code and "def forward" not in code
    assert "# the optimizer trains the script's own tensors (w, b) as they are" in code
    assert "LitModel()" in code and 'accelerator="cpu"' in code


def test_tensors_made_on_a_device_give_the_trainer_their_device_type():
    source = (
        (HERE / "tensors_in_a_list.py")
        .read_text()
        .replace(
            "b = torch.zeros(1, requires_grad=True)",
            'b = torch.zeros(1, requires_grad=True, device="cpu")',
        )
    )
    code = migrate_source(source).code
    assert "accelerator=b.device.type" in code


def test_a_tensor_rebound_by_a_function_is_refused_with_that_reason():
    source = (
        (HERE / "tensors_in_a_list.py")
        .read_text()
        .replace("def linreg(x):\n", "def linreg(x):\n    global w\n")
    )
    result = migrate_source(source)
    assert result.status == NOT_CONVERTED
    assert any("declares `global w`" in f.message for f in result.findings), result.findings


def test_a_hand_written_update_of_named_tensors_declares_them_in_the_step():
    """`weights -= weights.grad * lr` moves into an optimizer's step method, where an augmented
    assignment would bind a local: the step declares the script's names global."""
    code = migrate_source((HERE / "tensors_updated_by_hand.py").read_text()).code
    step = code[code.index("    def step(") : code.index("manual_optimizer = ")]
    assert "global weights, bias" in step
    assert step.index("global weights, bias") < step.index("weights -= weights.grad * lr")
    assert "manual_optimizer = ManualUpdate([weights, bias])" in code


def test_an_update_helper_call_becomes_the_optimizer_step():
    code = migrate_source((HERE / "update_helper_over_tensors.py").read_text()).code
    step = code[code.index("    def step(") : code.index("manual_optimizer = ")]
    assert "sgd([w, b], lr, batch)" in step
    assert "ManualUpdate([w, b])" in code
    assert "def sgd(params, lr, n):" in code  # the script's helper stays as written


def test_an_update_reading_a_name_the_loop_changes_says_which():
    result = migrate_source((HERE / "update_reads_decayed_lr.py").read_text())
    assert any("reads `lr`" in f.message for f in result.findings if f.code == "SCF310")


def test_a_closure_step_followed_by_an_evaluation_keeps_the_closure():
    code = migrate_source((HERE / "closure_step_then_evaluation.py").read_text()).code
    step = code[code.index("def training_step") : code.index("def configure_optimizers")]
    assert "self.automatic_optimization = False" in code
    assert "def closure():" in step and "self.manual_backward(loss)" in step
    assert step.index("optimizer.step(closure)") < step.index("with torch.no_grad():")


def test_a_loader_made_each_epoch_is_made_by_on_train_epoch_start():
    code = migrate_source((HERE / "loader_made_each_epoch.py").read_text()).code
    start = code[code.index("def on_train_epoch_start") : code.index("def training_step")]
    assert "self.loader = make_loader(data, 12)" in start
    assert "self.bar = tqdm(enumerate(self.loader, 1), disable=True)" in start
    assert "trainer.fit(lit_model, EachEpoch(lambda: lit_model.bar))" in code
    assert "yield from self.make()" in code  # nothing is made before the epoch draws a batch


def test_a_loader_made_each_epoch_is_refused_for_the_lightning_engine():
    source = (HERE / "loader_made_each_epoch.py").read_text()
    result = migrate_source(source, engine="lightning")
    assert result.status == NOT_CONVERTED  # the epoch's random draw comes first (SCF334)
    assert "SCF334" in {f.code for f in result.findings}
    without_draw = source.replace("torch.randn(1).item() * 0.01", "0.01")
    assert migrate_source(without_draw).status == MIGRATED
    result = migrate_source(without_draw, engine="lightning")
    assert result.status == NOT_CONVERTED  # making the loader is a call before the batch loop
    (finding,) = [f for f in result.findings if f.code in ("SCF331", "SCF334")]
    assert "before the first epoch's on_train_epoch_start" in finding.message


def test_random_draws_before_the_batch_loop_are_refused_for_the_lightning_engine_only():
    """Lightning iterates a DataLoader at set-up (drawing its seed from torch's generator)
    before the first on_train_epoch_start: a draw the script makes each epoch before its batch
    loop would come after it. The runtime engine keeps the order; Lightning's is refused."""
    source = """import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

torch.manual_seed(0)
loader = DataLoader(TensorDataset(torch.randn(48, 5), torch.randn(48, 1)), batch_size=12, shuffle=True)
model = nn.Linear(5, 1)
optimizer = torch.optim.SGD(model.parameters(), lr=0.05)
for epoch in range(3):
    model.train()
    noise = torch.randn(1).item() * 0.1
    for x, y in loader:
        loss = nn.functional.mse_loss(model(x + noise), y)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
print("FINAL", sum(p.sum().item() for p in model.parameters()))
"""
    assert migrate_source(source).status == MIGRATED
    result = migrate_source(source, engine="lightning")
    assert result.status == NOT_CONVERTED
    (finding,) = [f for f in result.findings if f.code == "SCF334"]
    assert "noise = torch.randn(1)" in finding.message
    # nothing drawn there: both engines convert
    quiet = source.replace("    noise = torch.randn(1).item() * 0.1\n", "    noise = 0.0\n")
    assert migrate_source(quiet, engine="lightning").status == MIGRATED


def test_a_return_in_the_batch_loop_stops_the_trainer_and_returns_after_fit():
    code = migrate_source((HERE / "return_in_batch_loop.py").read_text()).code
    step = code[code.index("def training_step") : code.index("def on_train_epoch_end")]
    assert "self.returned = ((self.best, self.steps),)" in step
    assert "self.trainer.should_stop = True" in step
    end = code[code.index("def on_train_epoch_end") :]
    assert end.index("if self.returned is not None:") < end.index("self.epoch_ends += 1")
    fit = code.index("trainer.fit(")
    assert code.index("return lit_model.returned[0]", fit) < code.index('print("trained every')


def test_a_critic_loop_inside_the_generator_loop_stays_in_its_training_step():
    code = migrate_source((HERE / "critic_repeat_loop.py").read_text()).code
    assert "self.automatic_optimization = False" in code
    step = code[code.index("def training_step") : code.index("def configure_optimizers")]
    # D_loss is read after the critic loop (printed), so the module keeps it across batches
    assert step.index("for _ in range(3):") < step.index("self.manual_backward(self.D_loss)")
    assert step.index("D_solver.step()") < step.index("self.manual_backward(G_loss)")
    assert "trainer.fit(lit_model, range(30))" in code


def test_a_break_before_the_batch_loop_stops_before_the_epoch_draws_a_batch():
    source = (HERE / "break_before_the_batch_loop.py").read_text()
    code = migrate_source(source).code
    start = code[code.index("def on_train_epoch_start") : code.index("def on_train_batch_start")]
    assert (
        start.index("if self.since_improvement == 2:")
        < start.index("self.trainer.should_stop = True")
        < start.index("return")
        < start.index("self.ran += 1")
    )
    end = code[code.index("def on_train_epoch_end") :]
    assert end.index("if self.stopped_before_epoch:") < end.index("self.since_improvement += 1")
    # the loader is not iterated at all once stopped (iterating a shuffled one draws numbers)
    assert "batches = None if self.stopped() else iter(self.loader)" in code
    # Lightning draws the epoch's first batch before its on_train_epoch_start can stop it
    lightning = migrate_source(source, "lightning")
    assert lightning.status == NOT_CONVERTED and lightning.code == source
    assert "SCF316" in {f.code for f in lightning.findings}


@pytest.mark.slow
@pytest.mark.parametrize("fine_tune", [False, True])
@pytest.mark.parametrize("engine", ["runtime", "lightning"])
def test_an_optimizer_that_may_be_none_runs_the_same(engine, fine_tune, tmp_path):
    """The optimizers that are None are not handed to the Trainer and the step gets None for
    them: the script's numbers on both engines, with the optional optimizer absent (as
    written) and present (the same script fine-tuning)."""
    if engine == "lightning":
        pytest.importorskip("lightning")
    source = (HERE / "optional_optimizer.py").read_text()
    if fine_tune:
        source = source.replace("fine_tune = False", "fine_tune = True")
    result = migrate_source(source, engine=engine)
    assert result.status == MIGRATED, result.findings
    assert "return [o for o in self.optimizers_list if o is not None]" in result.code
    (tmp_path / "original.py").write_text(source)
    (tmp_path / "migrated.py").write_text(result.code)
    assert _final(tmp_path / "migrated.py") == _final(tmp_path / "original.py")


def test_the_optimizer_hand_out_does_not_take_a_name_the_step_reads():
    """The step's temporary for handing out optimizers picks a name the script's step does not
    read (a script global `handed` stays the script's)."""
    source = (HERE / "optional_optimizer.py").read_text()
    source = source.replace("fine_tune = False", "fine_tune = False\nhanded = 2.0")
    source = source.replace("decoder(encoder(x)), y)", "decoder(encoder(x)), y) * handed")
    result = migrate_source(source)
    assert result.status == MIGRATED, result.findings
    step = result.code[result.code.index("def training_step") :]
    assert "handed_out = self.optimizers()" in step
    assert "handed = " not in step and "* handed" in step


GROWN = (HERE / "param_groups_grown.py").read_text()


@pytest.mark.parametrize(
    ("old", "new"),
    [
        # a group of a module the training function is not handed
        (
            '    param_group += [{"params": model.classifier_layer.parameters(), "lr": learning_rate * 10}]\n',
            '    param_group += [{"params": head.parameters(), "lr": learning_rate * 10}]\n',
        ),
        # a group added only on one branch, of a module the others do not train
        (
            '    param_group += [{"params": model.classifier_layer.parameters(), "lr": learning_rate * 10}]\n',
            '    if learning_rate > 1:\n        param_group.append({"params": head.parameters()})\n',
        ),
        # the list rebound after it started
        (
            "    optimizer = torch.optim.SGD(param_group, momentum=0.9)\n",
            "    param_group = list(model.parameters())\n"
            "    optimizer = torch.optim.SGD(param_group, momentum=0.9)\n",
        ),
    ],
)
def test_parameter_groups_of_modules_the_function_is_not_handed_are_refused(old, new):
    source = GROWN.replace(
        "    learning_rate = 0.05\n", "    learning_rate = 0.05\n    head = nn.Linear(8, 3)\n"
    )
    assert old in source
    result = migrate_source(source.replace(old, new))
    assert result.status == NOT_CONVERTED and "SCF311" in {f.code for f in result.findings}


def test_groups_grown_under_a_branch_from_the_same_model_still_convert():
    old = '    param_group += [{"params": model.classifier_layer.parameters(), "lr": learning_rate * 10}]\n'
    new = (
        "    if learning_rate > 0:\n"
        '        param_group.append({"params": model.classifier_layer.parameters(), "lr": 0.5})\n'
    )
    result = migrate_source(GROWN.replace(old, new))
    assert result.status == MIGRATED, result.findings


CLIP_CALLER = (HERE / "clip_value_from_caller.py").read_text()


def test_a_clipping_value_read_once_becomes_the_trainers_and_a_changing_one_stays_in_the_step():
    result = migrate_source(CLIP_CALLER)
    assert result.status == MIGRATED, result.findings
    assert "gradient_clip_val=args.grad_clip," in result.code
    assert "automatic_optimization = False" not in result.code
    # the call passes a value that changes per epoch: the step clips as the script did
    varying = CLIP_CALLER.replace(
        "train(e, model, optimizer, loader, args.grad_clip)",
        "train(e, model, optimizer, loader, 0.01 * e)",
    )
    assert varying != CLIP_CALLER
    result = migrate_source(varying)
    assert result.status == MIGRATED, result.findings
    assert "gradient_clip_val" not in result.code
    assert re.search(r"clip_grad_norm_\(self\.\w+\.parameters\(\), grad_clip\)", result.code)
    assert any("clipping value `grad_clip`" in f.message for f in result.findings)


def test_an_accumulation_count_from_the_caller_becomes_the_trainers_and_a_changing_one_stays():
    source = (
        "import torch\nimport torch.nn as nn\n\n\n"
        "def train(model, optimizer, loader, accum):\n"
        "    for i, (x, y) in enumerate(loader):\n"
        "        loss = nn.functional.mse_loss(model(x), y) / accum\n"
        "        loss.backward()\n"
        "        if (i + 1) % accum == 0 or (i + 1) == len(loader):\n"
        "            optimizer.step()\n"
        "            optimizer.zero_grad()\n\n\n"
        "def main(args):\n"
        "    model = nn.Linear(4, 1)\n"
        "    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)\n"
        "    loader = torch.utils.data.DataLoader(\n"
        "        torch.utils.data.TensorDataset(torch.randn(32, 4), torch.randn(32, 1)), batch_size=8\n"
        "    )\n"
        "    for epoch in range(3):\n"
        "        train(model, optimizer, loader, args.accum)\n"
    )
    result = migrate_source(source)
    assert result.status == MIGRATED, result.findings
    assert "accumulate_grad_batches=args.accum," in result.code
    varying = source.replace(
        "train(model, optimizer, loader, args.accum)", "train(model, optimizer, loader, epoch + 1)"
    )
    result = migrate_source(varying)
    assert result.status == MIGRATED, result.findings
    assert "accumulate_grad_batches" not in result.code
    assert "automatic_optimization = False" in result.code


def test_a_step_budget_the_loop_changes_is_not_the_trainers_max_steps():
    source = (HERE / "step_budget_changes.py").read_text()
    result = migrate_source(source)
    assert result.status == MIGRATED, result.findings
    assert "max_steps=" not in result.code.split('"""', 2)[2]
    fixed = migrate_source(source.replace("    limit = 3 + epoch * 4\n", ""))
    assert fixed.status == MIGRATED and "max_steps=limit," in fixed.code


def test_an_optimizer_built_before_the_model_changes_shape_is_handed_over_as_built():
    source = (HERE / "head_replaced_after_optimizer.py").read_text()
    result = migrate_source(source)
    assert result.status == MIGRATED, result.findings
    assert "opt = torch.optim.SGD(model.parameters(), lr=0.1)" in result.code
    assert "torch.optim.SGD(self.model.parameters()" not in result.code
    # without the new head the construction moves into configure_optimizers as usual
    plain = migrate_source(
        source.replace("model[2] = nn.Linear(4, 1)  # a new head the optimizer does not hold\n", "")
    )
    assert "return torch.optim.SGD(self.model.parameters(), lr=0.1)" in plain.code


def test_accumulation_maps_to_the_trainer_only_where_the_script_steps_on_the_last_batch_too():
    source = (HERE / "accumulation_partial_last_group.py").read_text()
    result = migrate_source(source)
    assert result.status == MIGRATED, result.findings
    assert "accumulate_grad_batches" not in result.code.split('"""', 2)[2]
    assert "automatic_optimization = False" in result.code
    last = source.replace("if (i + 1) % 2 == 0:", "if (i + 1) % 2 == 0 or (i + 1) == len(data):")
    assert last != source
    result = migrate_source(last)
    assert result.status == MIGRATED and "accumulate_grad_batches=2," in result.code


IGNORES_CLOSURE = (HERE / "optimizer_step_ignores_closure.py").read_text()


@pytest.mark.parametrize(
    ("runs", "manual"),
    [
        ("", True),  # never runs it
        ("        if closure is not None:\n            closure()\n", False),  # once: automatic
        (
            "        if closure is not None:\n            for _ in range(2):\n"
            "                closure()\n",
            True,
        ),
        ("        loss = closure() if closure else None\n        closure()\n", True),
    ],
    ids=["never", "once", "in-a-loop", "twice"],
)
def test_a_script_optimizer_is_stepped_automatically_only_when_it_runs_the_closure_once(
    runs, manual
):
    head = "    def step(self, closure=None):\n"
    assert head in IGNORES_CLOSURE
    result = migrate_source(IGNORES_CLOSURE.replace(head, head + runs))
    assert result.status == MIGRATED, result.findings
    assert ("automatic_optimization = False" in result.code) is manual
