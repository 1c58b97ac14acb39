"""scaffold migrate: behaviour parity on the legacy corpus (original and migrated scripts print
the same final number), idempotency, comment census, refusals, and the CLI's file handling."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from scaffold.migrate.engine import MIGRATED, comments, migrate_source

ROOT = Path(__file__).resolve().parents[2]
LEGACY = sorted((ROOT / "examples" / "legacy").glob("*.py"))
CASES = Path(__file__).parent / "migrate_cases"
FINAL = re.compile(r"^FINAL (\S+)(.*)$", re.M)
LAUNCH = re.compile(r"^# launch: torchrun (.*)$", re.M)


def _command(path: Path) -> list[str]:
    """How a legacy script is started: ``python script.py``, or under torchrun when its header
    says ``# launch: torchrun <args>`` (the migrated copy keeps the header comment)."""
    launch = LAUNCH.search(path.read_text())
    if launch is None:
        return [sys.executable, str(path)]
    return [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        *launch.group(1).split(),
        str(path),
    ]


# torch's gloo backend can abort a process at interpreter exit (after all the work is done) with
# this message (about one run in ten here); plain torch scripts using mp.spawn hit it too. Such a
# run is retried (up to three times).
GLOO_EXIT_ABORT = "terminate called without an active exception"


def _run(path: Path, *args: str) -> str:
    for _ in range(4):
        # scripts that write to the temp dir (ddp_trainer_class.py saves a checkpoint there)
        # get their own, removed afterwards, instead of leaving files in the machine's /tmp
        with tempfile.TemporaryDirectory(prefix="scaffold-run-") as tmp:
            proc = subprocess.run(
                [*_command(path), *args],
                capture_output=True,
                text=True,
                cwd=path.parent,
                timeout=300,
                env={**os.environ, "TMPDIR": tmp},
            )
        if proc.returncode == 0 or GLOO_EXIT_ABORT not in proc.stderr:
            break
    assert proc.returncode == 0, f"{path.name}: {proc.stderr[-2000:]}"
    return proc.stdout


@pytest.fixture(scope="module")
def migrated_legacy():
    """Each legacy script's migration (in process)."""
    return {path.name: migrate_source(path.read_text()) for path in LEGACY}


@pytest.fixture(scope="module")
def corpus(migrated_legacy, tmp_path_factory):
    """Each legacy script and its migration, run side by side (two at a time)."""
    out = tmp_path_factory.mktemp("migrated")
    jobs = []
    for path in LEGACY:
        migrated = out / path.name
        migrated.write_text(migrated_legacy[path.name].code)
        jobs += [path, migrated]
    with ThreadPoolExecutor(max_workers=2) as pool:
        outputs = list(pool.map(_run, jobs))
    runs = {p.name: (outputs[2 * i], outputs[2 * i + 1]) for i, p in enumerate(LEGACY)}
    return migrated_legacy, runs


def test_corpus_is_not_trivial():
    assert len(LEGACY) >= 20


@pytest.mark.slow
@pytest.mark.parametrize("name", [p.name for p in LEGACY])
def test_migrated_script_computes_the_same_numbers(corpus, name):
    results, runs = corpus
    assert results[name].status == "migrated", results[name].findings
    original, migrated = runs[name]
    want, got = FINAL.search(original), FINAL.search(migrated)
    assert want and got, (original[-500:], migrated[-500:])
    assert float(got.group(1)) == pytest.approx(float(want.group(1)), rel=1e-4)
    assert got.group(2) == want.group(2)


@pytest.mark.parametrize("name", [p.name for p in LEGACY])
def test_migration_is_idempotent_and_keeps_every_comment(migrated_legacy, name):
    results = migrated_legacy
    source = (ROOT / "examples" / "legacy" / name).read_text()
    migrated = results[name].code
    assert not (comments(source) - comments(migrated))
    again = migrate_source(migrated)
    assert again.status == "unchanged" and again.code == migrated
    assert "import runtime as L" in migrated and "L.Trainer(" in migrated
    assert ".backward()" not in migrated.split("class LitModel")[1].split("def configure")[0]


# what the migrated form of some corpus scripts must look like (besides computing the same numbers)
IDIOMS = {
    "ddp_trainer_class.py": [
        'strategy="ddp"',
        "devices=TRAINER_DEVICES",
        "runner = self",
        "use_distributed_sampler=False",
        "self.model.state_dict()",
    ],
    "ddp_torchrun.py": ['strategy="ddp"', "num_nodes=", 'int(os.environ.get("RANK", 0)) == 0'],
    "early_stopping_patience.py": [
        'EarlyStopping(monitor="val_loss", mode="min", patience=patience',
        'self.log("val_loss", val_loss)',
    ],
    "final_test_helper.py": [
        "def validation_step(self, batch, batch_idx):",
        "trainer.fit(lit_model, train_loader, val_loader)",
        "def test_step(self, batch, batch_idx):",
        "trainer.test(lit_model, test_loader, verbose=False)",
    ],
    "inline_validation_plateau.py": [
        "def on_validation_epoch_start(self):",
        "def validation_step(self, batch, batch_idx):",
        "trainer.fit(lit_model, train_loader, val_loader)",
    ],
    "while_max_steps.py": ["max_epochs=-1", "max_steps=max_steps"],
    "mnist_style.py": [
        "def validation_step(self, batch, batch_idx):",
        "optimizer = optim.Adadelta(self.model.parameters(), lr=self.args.lr)",
        "lit_model = LitModel(model, args, test_loader, train_loader)",
    ],
}
GONE = {
    "ddp_trainer_class.py": ["mp.spawn(", "DDP(", "init_process_group", "_run_batch", ".module."],
    "ddp_torchrun.py": ["DistributedDataParallel(", "init_process_group", "destroy_process_group"],
    "early_stopping_patience.py": ["epochs_without_improvement += 1", "break"],
}


@pytest.mark.parametrize("name", sorted(IDIOMS))
def test_migrated_corpus_scripts_use_the_lightning_idioms(migrated_legacy, name):
    results = migrated_legacy
    code = results[name].code
    for snippet in IDIOMS[name]:
        assert snippet in code, snippet
    for snippet in GONE.get(name, []):
        assert snippet not in code, snippet


def test_findings_point_at_the_users_lines_after_methods_are_inlined():
    source = (Path(__file__).parent / "fixtures/migrate/trainer_class.in.py").read_text()
    lines = source.splitlines()
    result = migrate_source(source)
    zero = next(f for f in result.findings if "zero_grad" in f.message)
    assert lines[zero.line - 1].strip() == "self.optimizer.zero_grad()"
    assert zero.col == lines[zero.line - 1].index("self") + 1
    assert "`self.optimizer.zero_grad()`" in zero.message


def test_a_helper_class_calling_backward_once_per_call_is_not_taken_for_the_trainer():
    # a loss scaler's `backward(loss)` method calls backward, but no loop of the class does:
    # the loop that trains is the script's own, and the class stays exactly as written
    helper = (
        "import torch\n\n\nclass Scaler:\n    def __init__(self):\n        self.scale = 2.0\n\n"
        "    def backward(self, loss):\n        scaled = loss * self.scale\n"
        "        scaled.backward()\n"
    )
    source = helper + (
        "\n\nmodel = torch.nn.Linear(3, 1)\n"
        "opt = torch.optim.SGD(model.parameters(), lr=0.1)\nscaler = Scaler()\n"
        "for x in [torch.ones(2, 3)] * 3:\n    opt.zero_grad()\n"
        "    loss = model(x).sum() * scaler.scale\n    loss.backward()\n    opt.step()\n"
    )
    result = migrate_source(source)
    assert result.status == MIGRATED, result.findings
    assert result.code.startswith("import runtime as L\n" + helper)
    assert "runner" not in result.code


def test_engine_lightning_emits_lightning_import():
    result = migrate_source(
        (ROOT / "examples/legacy/tutorial_toplevel.py").read_text(), "lightning"
    )
    assert "import lightning as L" in result.code and "import runtime" not in result.code


@pytest.mark.parametrize(
    ("case", "status", "code"),
    [
        ("manual_lbfgs.py", "manual", "SCF305"),
        ("manual_list_of_batches.py", "manual", "SCF322"),
        ("manual_trainer_class.py", "manual", "SCF326"),
        ("manual_ddp_spawn.py", "manual", "SCF328"),
        ("refused_rpc.py", "refused", "SCF901"),
        ("refused_gym.py", "refused", "SCF901"),
        ("refused_hogwild.py", "refused", "SCF901"),
        ("refused_forward_training.py", "refused", "SCF902"),
        ("unchanged_no_loop.py", "unchanged", "SCF100"),
    ],
)
def test_loops_it_cannot_convert_are_left_alone_with_a_reason(case, status, code):
    source = (CASES / case).read_text()
    result = migrate_source(source)
    assert result.status == status and result.code == source
    assert [f.code for f in result.findings] == [code]
    assert result.findings[0].line >= 1 and result.findings[0].message


# ------------------------------------------------------------------------------------ the CLI
def scaffold(*args, cwd):
    return subprocess.run(
        [sys.executable, "-m", "scaffold", "migrate", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
    )


@pytest.fixture
def script(tmp_path):
    path = tmp_path / "train.py"
    path.write_text((ROOT / "examples/legacy/tutorial_toplevel.py").read_text())
    return path


def test_in_place_keeps_orig_and_refuses_to_overwrite_it(script):
    original = script.read_text()
    first = scaffold("train.py", cwd=script.parent)
    assert first.returncode == 0, first.stderr
    assert (script.parent / "train.py.orig").read_text() == original
    assert "L.Trainer(" in script.read_text()
    assert "SCF001 [fixed]" in first.stdout and "train.py:" in first.stdout
    script.write_text(original)  # the user reverts and tries again: the backup is the same text
    second = scaffold("train.py", cwd=script.parent)
    assert second.returncode == 0, second.stdout
    assert (script.parent / "train.py.orig").read_text() == original
    script.write_text(original + "# edited since\n")  # now the backup holds something else
    third = scaffold("train.py", cwd=script.parent)
    assert third.returncode == 1 and "train.py.orig already exists" in third.stdout
    assert "SCF800" in third.stdout
    assert script.read_text() == original + "# edited since\n"
    assert (script.parent / "train.py.orig").read_text() == original


def test_output_diff_check_and_report(script, tmp_path):
    original = script.read_text()
    out = scaffold("train.py", "-o", "train_lit.py", "--report", "r.json", cwd=script.parent)
    assert out.returncode == 0, out.stderr
    assert script.read_text() == original and (tmp_path / "train_lit.py").is_file()
    report = json.loads((tmp_path / "r.json").read_text())
    assert report["summary"] == {"files": 1, "migrated": 1}
    assert {f["code"] for f in report["files"][0]["findings"]} >= {"SCF001", "SCF002", "SCF007"}
    diff = scaffold("train.py", "--diff", cwd=script.parent)
    assert (
        diff.returncode == 0 and diff.stdout.count("+++ ") == 1 and "+class LitModel" in diff.stdout
    )
    assert script.read_text() == original
    check = scaffold(".", "--check", cwd=script.parent)
    assert check.returncode == 1
    clean = scaffold("train_lit.py", "--check", cwd=script.parent)
    assert clean.returncode == 0


def test_cannot_convert_writes_nothing_and_exits_3(tmp_path):
    target = tmp_path / "lbfgs.py"
    target.write_text((CASES / "manual_lbfgs.py").read_text())
    result = scaffold("lbfgs.py", cwd=tmp_path)
    assert result.returncode == 3 and "SCF305 [manual]" in result.stdout
    assert sorted(p.name for p in tmp_path.iterdir() if p.name != "home") == ["lbfgs.py"]


def test_syntax_error_is_bad_input(tmp_path):
    (tmp_path / "broken.py").write_text("for x in y:\nprint(x)\n")
    result = scaffold("broken.py", cwd=tmp_path)
    assert result.returncode == 1 and "broken.py:2:" in result.stdout and "SCF000" in result.stdout


def test_usage_errors(tmp_path):
    assert scaffold(cwd=tmp_path).returncode == 2
    assert scaffold("missing.py", cwd=tmp_path).returncode == 1
    assert scaffold("x.py", "--engine", "jax", cwd=tmp_path).returncode == 2


@pytest.mark.parametrize(
    "migrated", sorted((ROOT / "examples" / "migrated").glob("*.py")), ids=lambda p: p.name
)
def test_committed_examples_are_what_migrate_makes(migrated):
    """examples/migrated/X.py is exactly `scaffold migrate examples/legacy/X.py` (no drift)."""
    source = ROOT / "examples" / "legacy" / migrated.name
    assert migrate_source(source.read_text()).code == migrated.read_text()


@pytest.mark.slow
def test_verify_compares_parameters_after_k_steps(tmp_path):
    from scaffold.migrate.verify import verify

    source = ROOT / "examples/legacy/main_clip_onecycle.py"
    script = tmp_path / "train.py"
    script.write_text(source.read_text())
    good = migrate_source(script.read_text()).code
    check = verify(script, good, steps=4)
    assert check.ok and check.steps == (4, 4) and check.max_abs_diff == 0.0
    broken = good.replace("max_lr=5e-2", "max_lr=4e-2")
    bad = verify(script, broken, steps=4)
    assert not bad.ok and bad.max_abs_diff > 0 and "DIFFER" in bad.message
    assert sorted(p.name for p in tmp_path.iterdir() if p.name != "home") == ["train.py"]


def test_verify_explains_why_it_cannot_follow_a_distributed_script(tmp_path):
    from scaffold.migrate.verify import verify

    script = tmp_path / "train.py"
    script.write_text((ROOT / "examples/legacy/ddp_torchrun.py").read_text())
    check = verify(script, migrate_source(script.read_text()).code, steps=2)
    assert not check.ok and "several processes" in check.message
    assert sorted(p.name for p in tmp_path.iterdir() if p.name != "home") == ["train.py"]


@pytest.mark.slow
def test_verify_flag_writes_only_after_a_match(script):
    result = scaffold("train.py", "--verify", "--verify-steps", "2", cwd=script.parent)
    assert result.returncode == 0, result.stderr
    assert "SCF010 [fixed] verified: parameters after 2 optimizer step(s) match" in result.stdout
    assert (script.parent / "train.py.orig").exists()


def test_evaluation_helper_becomes_validation_hooks():
    result = migrate_source((ROOT / "examples/legacy/mnist_style.py").read_text())
    assert "def validation_step(self, batch, batch_idx):" in result.code
    assert "def on_validation_epoch_end(self):" in result.code
    assert "\ndef test(" not in result.code  # inlined: it was called only there
    # (the script breaks out of its batch loop on --dry-run: UntilBreak ends the epoch there)
    assert (
        "trainer.fit(lit_model, UntilBreak(train_loader, lambda: lit_model.stop_epoch), "
        "test_loader)" in result.code
    )
    assert "num_sanity_val_steps=0" in result.code
    assert "SCF015" in {f.code for f in result.findings}
    reused = migrate_source((ROOT / "examples/legacy/main_clip_onecycle.py").read_text())
    assert "def validation_step" in reused.code and "\ndef evaluate(" in reused.code


@pytest.mark.slow
def test_verify_passes_script_arguments(tmp_path):
    script = tmp_path / "train.py"
    script.write_text((ROOT / "examples/legacy/mnist_style.py").read_text())
    result = scaffold(
        "train.py", "--diff", "--verify", "--verify-args", "--epochs 1 --lr 0.5", cwd=tmp_path
    )
    assert result.returncode == 0, result.stderr
    assert "verified: parameters after 3 optimizer step(s) match" in result.stdout
    bad = scaffold(
        "train.py", "--diff", "--verify", "--verify-args", "--no-such-flag", cwd=tmp_path
    )
    assert bad.returncode == 3 and "verification failed" in bad.stdout
