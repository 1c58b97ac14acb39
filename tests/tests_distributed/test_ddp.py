"""Multi-process training on CPU (gloo, 2 processes): parity with one process, launchers, failures."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time

import pytest
import torch

import runtime as L
from runtime.errors import MisconfigurationException

pytestmark = [pytest.mark.distributed, pytest.mark.slow]

HERE = os.path.dirname(os.path.abspath(__file__))
SCRIPT = os.path.join(HERE, "ddp_script.py")


def run(tmp_path, name, *args, launcher="runtime", devices=2, timeout=120, env=None, check=True):
    root = tmp_path / name
    out = root / "result.pt"
    cmd = [SCRIPT, "--devices", str(devices), "--root", str(root), "--out", str(out), *args]
    if launcher == "torchrun":
        cmd = [
            sys.executable,
            "-m",
            "torch.distributed.run",
            "--nproc-per-node",
            str(devices),
            "--master-port",
            str(_free_port()),
            *cmd,
        ]
    else:
        cmd = [sys.executable, *cmd]
    clean = {
        k: v
        for k, v in os.environ.items()
        if k not in ("RANK", "LOCAL_RANK", "WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT")
    }
    proc = subprocess.run(
        cmd,
        capture_output=True,
        text=True,
        timeout=timeout,
        # torchrun's own scratch folders go into the test's folder, not the machine's /tmp
        env={**clean, "OMP_NUM_THREADS": "1", "TMPDIR": str(tmp_path), **(env or {})},
        cwd=tmp_path,
    )
    if check:
        assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
        return torch.load(out, weights_only=False), root
    return proc, root


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def assert_params_close(a, b, atol=1e-6):
    for x, y in zip(a["params"], b["params"]):
        torch.testing.assert_close(x, y, rtol=0, atol=atol)


@pytest.mark.parametrize("accumulate", [1, 2])
def test_ddp_equals_one_process_with_double_batch(tmp_path, accumulate):
    acc = ["--accumulate", str(accumulate)]
    two, root = run(tmp_path, "two", "--strategy", "ddp", "--batch", "4", *acc)
    one, _ = run(tmp_path, "one", "--batch", "8", *acc, devices=1)
    assert two["world_size"] == 2 and two["wrapped"] == "DistributedDataParallel"
    assert two["collectives"] == {
        "all_gather": [[0, 0], [1, 10]],
        "reduce_sum": 3.0,
        "reduce_mean": 1.5,
        "broadcast": "from rank 0",
    }
    assert two["global_step"] == one["global_step"] == 8 // accumulate
    assert_params_close(two, one)
    # sync_dist epoch metrics equal the single-process values (mean and sum reductions)
    for key in ("train_loss", "val_loss", "val_sum"):
        assert two["metrics"][key] == pytest.approx(one["metrics"][key], rel=1e-5)
    # rank 0 alone writes: one checkpoint, one metrics.csv
    files = sorted(
        os.path.relpath(os.path.join(d, f), root)
        for d, _, fs in os.walk(root)
        for f in fs
        if not f.endswith(".pt")
    )
    # (no hparams.yaml: the module saved no hyper-parameters, so none are logged, as Lightning)
    assert files == [
        f"ckpt/epoch=0-step={8 // accumulate}.ckpt",
        "lightning_logs/version_0/metrics.csv",
    ]


def test_manual_optimization_with_several_backward_passes_per_step_under_ddp(tmp_path):
    # each manual_backward inside the wrapped step is announced to DDP's reducer; without
    # that the second step's forward fails ("initialize_buckets must NOT be called during
    # autograd execution")
    two, _ = run(tmp_path, "two", "--strategy", "ddp", "--batch", "4", "--micro", "2")
    one, _ = run(tmp_path, "one", "--batch", "8", "--micro", "2", devices=1)
    assert two["world_size"] == 2 and two["wrapped"] == "DistributedDataParallel"
    assert two["global_step"] == one["global_step"] == 8
    assert_params_close(two, one)


def test_gradient_clipping_under_ddp(tmp_path):
    two, _ = run(tmp_path, "two", "--strategy", "ddp", "--batch", "4", "--clip", "0.5")
    one, _ = run(tmp_path, "one", "--batch", "8", "--clip", "0.5", devices=1)
    assert_params_close(two, one)


def test_torchrun_and_runtime_launcher_agree(tmp_path):
    own, _ = run(tmp_path, "own", "--strategy", "ddp", "--batch", "4")
    elastic, _ = run(tmp_path, "elastic", "--strategy", "ddp", "--batch", "4", launcher="torchrun")
    assert elastic["world_size"] == 2
    for x, y in zip(own["params"], elastic["params"]):
        assert torch.equal(x, y)


def test_spawn_strategy(tmp_path):
    spawned, _ = run(tmp_path, "spawn", "--strategy", "ddp_spawn", "--batch", "4")
    one, _ = run(tmp_path, "one", "--batch", "8", devices=1)
    assert_params_close(spawned, one)


def test_a_finished_spawned_rank_exits_as_a_normal_exit_would_but_without_finalization():
    """A spawned rank leaves with os._exit (gloo's worker threads can abort a finalizing
    interpreter): its atexit handlers still run, non-daemon threads are joined, buffered
    output is flushed, and nothing after the exit runs."""
    code = (
        "import atexit, threading, time, sys\n"
        "from runtime.strategies.launchers import _exit_rank\n"
        "atexit.register(lambda: print('atexit handler ran'))\n"
        "def late():\n"
        "    time.sleep(0.3)\n"
        "    print('thread finished')\n"
        "threading.Thread(target=late).start()\n"
        "sys.stdout.write('buffered, no newline')\n"
        "_exit_rank()\n"
        "print('after the exit')\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    assert "buffered, no newline" in out and "after the exit" not in out
    assert out.index("thread finished") < out.index("atexit handler ran")


def test_fsdp_on_cpu(tmp_path):
    sharded, root = run(tmp_path, "fsdp", "--strategy", "fsdp", "--batch", "4", "--clip", "0.5")
    one, _ = run(tmp_path, "one", "--batch", "8", "--clip", "0.5", devices=1)
    assert sharded["wrapped"].startswith("FSDP")
    assert_params_close(sharded, one, atol=1e-5)
    ckpt = torch.load(sharded["best"], weights_only=True)
    assert ckpt["state_dict"]["net.0.weight"].shape == (16, 8)  # full, not sharded


def test_checkpoints_move_between_process_counts(tmp_path):
    straight, _ = run(tmp_path, "straight", "--batch", "8", "--epochs", "2", devices=1)
    first, _ = run(tmp_path, "first", "--strategy", "ddp", "--batch", "4")
    resumed, _ = run(
        tmp_path, "resumed", "--batch", "8", "--epochs", "2", "--ckpt-in", first["best"], devices=1
    )
    assert resumed["global_step"] == 16
    assert_params_close(resumed, straight)
    single, _ = run(tmp_path, "single", "--batch", "8", devices=1)
    back, _ = run(
        tmp_path,
        "back",
        "--strategy",
        "ddp",
        "--batch",
        "4",
        "--epochs",
        "2",
        "--ckpt-in",
        single["best"],
    )
    assert back["global_step"] == 16
    assert_params_close(back, straight)


def test_failure_in_one_rank_ends_the_job(tmp_path):
    t0 = time.monotonic()
    proc, _ = run(
        tmp_path,
        "fail",
        "--strategy",
        "ddp",
        "--batch",
        "4",
        "--fail-rank",
        "1",
        check=False,
        timeout=90,
    )
    assert proc.returncode != 0
    assert time.monotonic() - t0 < 60
    assert "deliberate failure in rank 1" in proc.stderr


def test_failure_in_rank_zero_ends_the_job(tmp_path):
    t0 = time.monotonic()
    proc, _ = run(
        tmp_path,
        "fail0",
        "--strategy",
        "ddp",
        "--batch",
        "4",
        "--fail-rank",
        "0",
        check=False,
        timeout=90,
    )
    assert proc.returncode != 0 and time.monotonic() - t0 < 60
    assert "deliberate failure in rank 0" in proc.stderr


def test_prepare_data_runs_once_per_node(tmp_path):
    marker = tmp_path / "prepared.txt"
    run(tmp_path, "prep", "--strategy", "ddp", "--batch", "4", env={"PREPARE_MARKER": str(marker)})
    assert marker.read_text().split() == ["0"]


def test_num_nodes_without_cluster_is_refused_before_start():
    with pytest.raises(MisconfigurationException, match="torchrun --nnodes 2"):
        L.Trainer(accelerator="cpu", devices=2, num_nodes=2, strategy="ddp")


def test_world_size_mismatch_is_refused(monkeypatch):
    for k, v in {
        "RANK": "0",
        "LOCAL_RANK": "0",
        "WORLD_SIZE": "4",
        "MASTER_ADDR": "127.0.0.1",
        "MASTER_PORT": "29555",
    }.items():
        monkeypatch.setenv(k, v)
    with pytest.raises(MisconfigurationException, match="WORLD_SIZE=4"):
        L.Trainer(accelerator="cpu", devices=2, strategy="ddp")


def test_port_already_taken(tmp_path):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        proc, _ = run(
            tmp_path,
            "port",
            "--strategy",
            "ddp",
            env={"MASTER_PORT": str(port)},
            check=False,
            timeout=60,
        )
    assert (
        proc.returncode != 0
        and f"MASTER_PORT={port}" in proc.stderr
        and "already in use" in proc.stderr
    )


def test_bad_strategy_and_devices():
    with pytest.raises(MisconfigurationException, match="invalid strategy name"):
        L.Trainer(accelerator="cpu", devices=2, strategy="horovod")
    if not torch.cuda.is_available():
        with pytest.raises(MisconfigurationException, match="CUDA"):
            L.Trainer(accelerator="cuda", devices=3)


@pytest.mark.parametrize("strategy", ["ddp", "fsdp"])
def test_bf16_mixed_combines_with_strategies(tmp_path, strategy):
    two, _ = run(
        tmp_path, "two", "--strategy", strategy, "--batch", "4", "--precision", "bf16-mixed"
    )
    one, _ = run(tmp_path, "one", "--batch", "8", "--precision", "bf16-mixed", devices=1)
    assert two["global_step"] == 8
    assert_params_close(two, one, atol=2e-2)  # bf16 rounding differs with the split batch


@pytest.mark.parametrize("strategy", ["ddp", "fsdp"])
def test_one_process_under_a_distributed_strategy(tmp_path, strategy):
    res, _ = run(tmp_path, "one", "--strategy", strategy, "--batch", "8", devices=1)
    ref, _ = run(tmp_path, "ref", "--batch", "8", devices=1)
    assert res["world_size"] == 1
    assert_params_close(res, ref)


@pytest.mark.gpu
@pytest.mark.parametrize(
    "strategy,precision",
    [("ddp", "16-mixed"), ("fsdp", "16-mixed"), ("ddp", "bf16-mixed"), ("fsdp", "bf16-mixed")],
)
def test_one_cuda_process_with_strategy_and_precision(tmp_path, strategy, precision):
    res, _ = run(
        tmp_path,
        "gpu",
        "--strategy",
        strategy,
        "--accelerator",
        "cuda",
        "--precision",
        precision,
        devices=1,
    )
    assert res["global_step"] == 8 and all(torch.isfinite(p).all() for p in res["params"])


def test_sync_batchnorm_on_cpu_is_refused_clearly(tmp_path):
    proc, _ = run(tmp_path, "sbn", "--strategy", "ddp", "--sync-bn", check=False, timeout=90)
    assert proc.returncode != 0 and "sync_batchnorm=True) needs CUDA" in proc.stderr


def test_slurm_environment_is_detected(monkeypatch):
    from runtime.strategies.environment import detect

    for k in (
        "RANK",
        "LOCAL_RANK",
        "WORLD_SIZE",
        "MASTER_ADDR",
        "MASTER_PORT",
        "TORCHELASTIC_RUN_ID",
    ):
        monkeypatch.delenv(k, raising=False)
    monkeypatch.setenv("SLURM_NTASKS", "8")
    monkeypatch.setenv("SLURM_PROCID", "5")
    monkeypatch.setenv("SLURM_LOCALID", "1")
    monkeypatch.setenv("SLURM_NODEID", "2")
    monkeypatch.setenv("SLURM_JOB_NAME", "train")
    monkeypatch.setenv("SLURM_JOB_ID", "123456")
    monkeypatch.setenv("SLURM_NODELIST", "gpu[03-06],cpu01")
    env = detect(num_processes=2, num_nodes=4)
    assert (env.name, env.creates_processes_externally) == ("slurm", True)
    assert (env.world_size, env.global_rank, env.local_rank, env.node_rank) == (8, 5, 1, 2)
    assert env.main_address == "gpu03" and env.main_port == 15000 + 3456
    with pytest.raises(MisconfigurationException, match="WORLD_SIZE=8"):
        detect(num_processes=2, num_nodes=2)


AFTER_FIT = """
import atexit, os, sys, time
import torch
import runtime as L


def last_words():  # registered early, so it runs late: after the process group is gone
    time.sleep(3)
    open(sys.argv[1], "w").write("done")


if os.environ.get("LOCAL_RANK") == "1":  # set for the ranks the launcher starts
    atexit.register(last_words)


class M(L.LightningModule):
    def __init__(self):
        super().__init__()
        self.layer = torch.nn.Linear(2, 1)

    def training_step(self, batch, batch_idx):
        return self.layer(batch[0]).sum()

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.1)


data = torch.utils.data.TensorDataset(torch.randn(8, 2))
trainer = L.Trainer(
    max_epochs=1, accelerator="cpu", strategy="ddp", devices=2, logger=False,
    enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False,
)
trainer.fit(M(), torch.utils.data.DataLoader(data, batch_size=2))
"""


def test_other_ranks_finish_the_script_after_rank_zero_exits(tmp_path):
    script = tmp_path / "after_fit.py"
    script.write_text(AFTER_FIT)
    marker = tmp_path / "rank1.txt"
    clean = {k: v for k, v in os.environ.items() if k not in ("RANK", "LOCAL_RANK", "WORLD_SIZE")}
    proc = subprocess.run(
        [sys.executable, str(script), str(marker)],
        capture_output=True,
        text=True,
        timeout=120,
        env={**clean, "OMP_NUM_THREADS": "1"},
        cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert marker.read_text() == "done"


_SPAWN_SCRIPT = r"""
import os, sys, signal, torch
import runtime as L
from runtime.callbacks import EarlyStopping
from torch.utils.data import DataLoader, TensorDataset

mode, root = sys.argv[1], sys.argv[2]


class M(L.LightningModule):
    def __init__(self):
        super().__init__()
        self.layer = torch.nn.Linear(4, 1)

    def on_fit_start(self):
        with open(os.path.join(root, f"pid{self.global_rank}"), "w") as f:
            f.write(str(os.getpid()))

    def training_step(self, batch, batch_idx):
        if mode == "interrupt":
            import time
            time.sleep(0.05)
        if mode == "fail" and self.global_rank == 1 and self.current_epoch == 1:
            raise RuntimeError("rank 1 fails")
        return self.layer(batch[0]).pow(2).mean()

    def validation_step(self, batch, batch_idx):
        # not synced on purpose: rank 1's value gets worse from epoch 1, rank 0's keeps improving
        worse = self.global_rank == 1 and self.current_epoch >= 1
        self.log("score", float(self.current_epoch if worse else -self.current_epoch))
        self.log("synced", float(self.global_rank), sync_dist=True, reduce_fx="sum")

    def on_validation_epoch_end(self):
        self.log("late", float(self.global_rank + 1), sync_dist=True, reduce_fx="sum")

    def test_step(self, batch, batch_idx):
        self.log("seen", float(batch[0].shape[0]), reduce_fx="sum", sync_dist=True)
        self.log("rank", float(self.global_rank), reduce_fx="max", sync_dist=True)

    def predict_step(self, batch, batch_idx):
        return self.layer(batch[0])

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.01)


class RankZeroReader(L.Callback):
    # reads the metrics on rank 0 only (as a progress bar or a logger does): such a read must
    # never be a collective call the other rank does not make

    def on_validation_epoch_end(self, trainer, pl_module):
        if trainer.is_global_zero:
            self.seen = dict(trainer.callback_metrics)

    def on_validation_end(self, trainer, pl_module):
        if trainer.is_global_zero:
            trainer.progress_bar_metrics
            self.final = {k: float(v) for k, v in trainer.callback_metrics.items()}
            print("SYNCED", self.final["synced"], self.final["late"], flush=True)


if __name__ == "__main__":
    data = DataLoader(TensorDataset(torch.randn(16, 4)), batch_size=4)
    trainer = L.Trainer(
        strategy="ddp_spawn", devices=2, accelerator="cpu",
        max_epochs={"stop": 50, "stop2": 50, "sync": 1}.get(mode, 1000),
        callbacks={
            "stop": [EarlyStopping("score", patience=1)],
            # two of them (Lightning's test_multiple_early_stopping_callbacks hung this way)
            "stop2": [EarlyStopping("score", patience=1), EarlyStopping("synced", patience=3)],
            "sync": [RankZeroReader()],
        }.get(mode, []), logger=False, enable_checkpointing=False,
        enable_progress_bar=False, enable_model_summary=False, num_sanity_val_steps=0,
    )
    if mode in ("interrupt", "fail"):
        def stop(*_):
            raise KeyboardInterrupt
        signal.signal(signal.SIGALRM, stop)
        signal.alarm(8 if mode == "interrupt" else 120)
        try:
            trainer.fit(M(), data, data)
        except KeyboardInterrupt:
            pass
        except Exception as e:  # mode "fail": the rank's error reaches the launching process
            print("RAISED", type(e).__name__, "rank 1 fails" in str(e))
        # this process lives on (as pytest does after a test timeout): are its ranks gone?
        import time
        pids = [int(open(os.path.join(root, f"pid{r}")).read()) for r in (0, 1)]
        time.sleep(3)
        alive = []
        for pid in pids:
            try:
                os.kill(pid, 0)
                with open(f"/proc/{pid}/stat") as f:
                    if f.read().split(")")[-1].split()[0] != "Z":
                        alive.append(pid)
            except (ProcessLookupError, OSError):
                pass
        print("ALIVE", alive)
        sys.exit(0)
    if mode == "eval":
        from runtime.callbacks import ModelCheckpoint
        from torch.multiprocessing import ProcessRaisedException

        trainer = L.Trainer(
            strategy="ddp_spawn", devices=2, accelerator="cpu", max_epochs=2, logger=False,
            callbacks=[ModelCheckpoint(dirpath=root, monitor="synced")],
            enable_progress_bar=False, enable_model_summary=False, num_sanity_val_steps=0,
        )
        model = M()
        trainer.fit(model, data, data)
        print("FIT", trainer.state.fn, trainer.state.status, trainer.state.finished)
        print("BEST", os.path.basename(trainer.checkpoint_callback.best_model_path))
        # after fit, no model passed: the best checkpoint, in two fresh ranks again
        tested = trainer.test(dataloaders=data, verbose=False)
        print("TEST", tested, trainer.state.fn, trainer.state.finished)
        validated = trainer.validate(model, data, verbose=False)
        print("VALIDATE", sorted(validated[0]), trainer.state.fn)
        print("PREDICT", trainer.predict(model, data))
        try:
            trainer.predict(model, data, return_predictions=True)
        except ProcessRaisedException as e:
            print("RAISED", "`return_predictions` should be set to `False`" in str(e))
        sys.exit(0)
    trainer.fit(M(), data, data)
    print("EPOCH", trainer.current_epoch)
"""


def _spawn_run(tmp_path, mode):
    script = tmp_path / "spawn_job.py"
    script.write_text(_SPAWN_SCRIPT)
    return subprocess.run(
        [sys.executable, str(script), mode, str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=150,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
        cwd=tmp_path,
    )


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # a zombie is gone for our purposes
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(")")[-1].split()[0] != "Z"
    except OSError:
        return False


def test_ranks_that_disagree_on_early_stopping_stop_together(tmp_path):
    """One rank's EarlyStopping fires and the other's does not: before, the stopped rank left
    and the other waited for it forever (the ddp_spawn hang of issue 11). Lightning reduces the
    decision over ranks (any rank stops all); so does the runtime now."""
    proc = _spawn_run(tmp_path, "stop")
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "EPOCH 2" in proc.stdout  # rank 1: best at epoch 0, worse at epoch 1 (patience 1)


def test_metrics_read_on_rank_zero_only_do_not_hang(tmp_path):
    """Epoch values logged with sync_dist are reduced once, on every rank, when the batch loop
    ends; a later read on rank 0 alone (progress bar, callback) uses them and does not wait for
    the other rank (it did: Lightning's test_logging_sync_dist_true hung under the runtime)."""
    proc = _spawn_run(tmp_path, "sync")
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "SYNCED 2.0 3.0" in proc.stdout  # rank 1 logs 1.0 on its 2 batches; 1 + 2 at epoch end


def test_interrupted_spawn_leaves_no_rank_behind(tmp_path):
    """Ctrl-C (or a test timeout) in the launching process while ddp_spawn ranks train: the
    ranks end with the call, even though the launching process itself goes on."""
    proc = _spawn_run(tmp_path, "interrupt")
    assert "ALIVE []" in proc.stdout, proc.stdout[-2000:] + proc.stderr[-2000:]
    pids = [int((tmp_path / f"pid{r}").read_text()) for r in (0, 1)]
    assert not any(_alive(p) for p in pids)


def test_spawned_evaluation_and_prediction_run_in_their_own_ranks(tmp_path):
    """validate/test/predict under ddp_spawn start their ranks as fit does (they ran in the
    launching process and failed there on a missing RANK); the launching trainer ends
    finished, as rank 0 left it; predictions are not handed back from spawned ranks (None by
    default; asking for them raises in the ranks, as Lightning)."""
    proc = _spawn_run(tmp_path, "eval")
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = proc.stdout
    assert "FIT fit finished True" in out, out + proc.stderr[-2000:]
    assert "TEST [{'seen': 16.0, 'rank': 1.0}] test True" in out, out
    assert "VALIDATE ['late', 'score', 'synced'] validate" in out, out
    assert "PREDICT None" in out and "RAISED True" in out, out


def test_a_failing_spawned_rank_ends_the_call_and_leaves_no_rank_behind(tmp_path):
    """One ddp_spawn rank raises in training_step: the launching process gets its error (as
    torch's ProcessRaisedException, like Lightning) and no rank outlives the call."""
    proc = _spawn_run(tmp_path, "fail")
    out = proc.stdout + proc.stderr[-2000:]
    assert "RAISED ProcessRaisedException True" in proc.stdout, out
    assert "ALIVE []" in proc.stdout, out
    pids = [int((tmp_path / f"pid{r}").read_text()) for r in (0, 1)]
    assert not any(_alive(p) for p in pids)


def test_two_early_stopping_callbacks_under_ddp_spawn_stop_every_rank(tmp_path):
    """Two EarlyStopping callbacks whose decisions differ by rank (Lightning's
    test_multiple_early_stopping_callbacks left spawned ranks waiting forever): every rank
    stops at the same epoch and the call returns."""
    proc = _spawn_run(tmp_path, "stop2")
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "EPOCH 2" in proc.stdout, proc.stdout[-2000:]
