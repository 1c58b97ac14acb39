"""What the migrated file looks like: imports where isort puts them, state handed to ``__init__``,
printed evaluation metrics logged, no new lint findings (ruff's default rules and isort)."""

from __future__ import annotations

import collections
import json
import shutil
import subprocess
from pathlib import Path

import libcst as cst
import pytest

from scaffold.migrate.engine import migrate_source
from scaffold.migrate.imports import add_import, drop_imported_names
from scaffold.migrate.metrics import log_printed_metrics

ROOT = Path(__file__).resolve().parents[2]
LEGACY = sorted((ROOT / "examples" / "legacy").glob("*.py"))
REPROS = sorted((Path(__file__).parent / "migrate_repros").glob("*.py"))
LIGHTNING1 = sorted((ROOT / "examples" / "lightning1").glob("*.py"))


@pytest.mark.parametrize(
    ("before", "after"),
    [
        # among the third-party imports, plain imports first, alphabetical
        (
            '"""doc"""\n\nimport argparse\n\nimport torch\nfrom torch import nn\n\nx = 1\n',
            '"""doc"""\n\nimport argparse\n\nimport runtime as L\nimport torch\n'
            "from torch import nn\n\nx = 1\n",
        ),
        (
            "import numpy as np\nimport torch\n",
            "import numpy as np\nimport runtime as L\nimport torch\n",
        ),
        # a section of its own after the standard library
        (
            "import argparse\nimport os\n\nx = 1\n",
            "import argparse\nimport os\n\nimport runtime as L\n\nx = 1\n",
        ),
        # no import at all: after the docstring
        ('"""doc"""\n\nx = 1\n', '"""doc"""\n\nimport runtime as L\n\nx = 1\n'),
        # a comment stays with the import it describes
        (
            "import sys\n\n# the model\nimport torch\n",
            "import sys\n\nimport runtime as L\n# the model\nimport torch\n",
        ),
        # already imported: unchanged
        ("import runtime as L\nimport torch\n", "import runtime as L\nimport torch\n"),
    ],
)
def test_added_import_goes_where_isort_puts_it(before, after):
    assert add_import(cst.parse_module(before), "import runtime as L\n").code == after


def test_standard_library_import_opens_its_own_section():
    code = add_import(cst.parse_module("import torch\n\nx = 1\n"), "import os\n").code
    assert code == "import os\n\nimport torch\n\nx = 1\n"


def test_dropped_import_names_keep_the_rest_and_the_comments():
    module = cst.parse_module(
        "from torch.nn.parallel import (DistributedDataParallel as DDP, foo)\n"
        "# workers\nimport torch.multiprocessing as mp  # spawn\nx = 1\n"
    )
    code = drop_imported_names(module, {"DDP", "mp"}).code
    assert code == "from torch.nn.parallel import foo\n# workers\n# spawn\nx = 1\n"


def _hook(body: str) -> cst.FunctionDef:
    return cst.parse_module("def on_validation_epoch_end(self):\n" + body).body[0]


def test_printed_numbers_are_logged_after_the_print():
    hook = _hook(
        '    print(f"loss {self.total / n:.4f} acc {self.correct}/{n} n={n}")\n'
        '    print("Epoch %d val acc %.3f t %.1f" % (epoch, val_acc, time.time() - t0))\n'
        '    print("ppl {:8.2f}".format(math.exp(self.val_loss)))\n'
    )
    new, keys = log_printed_metrics(hook, "val", set())
    lines = cst.Module(body=[new]).code.splitlines()
    assert keys == ["val_loss", "val_acc", "val_ppl"]
    assert lines[2] == '    self.log("val_loss", self.total / n)'
    assert lines[4] == '    self.log("val_acc", val_acc)'
    assert lines[6] == '    self.log("val_ppl", math.exp(self.val_loss))'
    # unformatted values (type unknown), counters and impure expressions are not logged
    assert not any("correct" in ln or "epoch" in ln or "time" in ln for ln in lines[2::2])


def test_keys_logged_elsewhere_are_not_logged_twice():
    hook = _hook('    print(f"{val_loss:.3f}")\n')
    new, keys = log_printed_metrics(hook, "val", {"val_loss"})
    assert keys == [] and new is hook


def test_migrated_validation_logs_the_metric_it_prints():
    result = migrate_source((ROOT / "examples/legacy/mnist_style.py").read_text())
    assert result.status == "migrated"
    assert 'self.log("val_loss", self.test_loss)' in result.code
    assert "SCF021" in [f.code for f in result.findings]


def test_state_the_loop_starts_with_is_passed_to_init():
    result = migrate_source((ROOT / "examples/legacy/early_stopping_counter.py").read_text())
    assert result.status == "migrated"
    assert "def __init__(self, model, bad_epochs, best_state, best_val):" in result.code
    assert "        self.best_val = best_val\n" in result.code
    assert "lit_model.best_val = best_val" not in result.code
    assert "    best_val=best_val,\n" in result.code


@pytest.mark.skipif(shutil.which("ruff") is None, reason="ruff is a dev dependency")
def test_migration_adds_no_lint_findings(tmp_path):
    """ruff's default rules and isort on the migrated file report nothing the original did not."""
    (tmp_path / "before").mkdir()
    (tmp_path / "after").mkdir()
    migrated = 0
    for path in [*LEGACY, *REPROS, *LIGHTNING1]:
        result = migrate_source(path.read_text())
        if result.status != "migrated":
            continue
        migrated += 1
        (tmp_path / "before" / path.name).write_text(path.read_text())
        (tmp_path / "after" / path.name).write_text(result.code)
    assert migrated >= 30

    def findings(folder: Path) -> collections.Counter:
        proc = subprocess.run(
            ["ruff", "check", "--isolated", "--select", "E4,E7,E9,F,I"]
            + ["--output-format", "json", str(folder)],
            capture_output=True,
            text=True,
            cwd=folder,  # not this repository, where `runtime` would be a first-party module
        )
        return collections.Counter(
            (Path(f["filename"]).name, f["code"]) for f in json.loads(proc.stdout)
        )

    before, after = findings(tmp_path / "before"), findings(tmp_path / "after")
    assert after - before == collections.Counter()


def test_class_leaves_the_main_guard_for_the_module_level():
    """A loop under `if __name__ == "__main__":` reads module globals: the class is defined at
    module level, before the guard, and is importable."""
    result = migrate_source(
        (Path(__file__).parent / "migrate_repros" / "main_guard.py").read_text()
    )
    assert result.status == "migrated"
    module = cst.parse_module(result.code)
    classes = [s.name.value for s in module.body if isinstance(s, cst.ClassDef)]
    assert "LitModel" in classes
    guard = next(s for s in module.body if isinstance(s, cst.If))
    assert not any(isinstance(s, cst.ClassDef) for s in guard.body.body)
    assert "\n\n\nif __name__" in result.code


def test_data_a_function_builds_is_passed_to_the_top_level_class():
    result = migrate_source((ROOT / "examples/legacy/early_stopping_patience.py").read_text())
    assert result.status == "migrated"
    assert "\nclass LitModel(L.LightningModule):" in result.code  # not nested in main()
    assert "def __init__(self, model, x, y, best_loss, best_weights):" in result.code


def test_comments_of_removed_lines_go_to_the_next_statement_without_a_pass():
    source = (
        "import torch\nimport torch.distributed as dist\n\n"
        "# step one: the process group\n"
        "dist.init_process_group(backend='gloo')\n"
        "rank = dist.get_rank()\n"
        "# each rank on its own device\n"
        "torch.cuda.set_device(rank)\n\n"
        "model = torch.nn.Linear(2, 1)\n"
        "model = torch.nn.parallel.DistributedDataParallel(model)\n"
        "opt = torch.optim.SGD(model.parameters(), lr=0.1)\n"
        "for x in [torch.ones(4, 2)] * 2:\n"
        "    opt.zero_grad()\n    model(x).sum().backward()\n    opt.step()\n"
    )
    result = migrate_source(source)
    assert result.status == "migrated", result.findings
    assert "pass" not in result.code
    assert "\n\n# step one: the process group\nrank = int(os.environ" in result.code
    assert "# each rank on its own device\n\nmodel = torch.nn.Linear(2, 1)" in result.code
