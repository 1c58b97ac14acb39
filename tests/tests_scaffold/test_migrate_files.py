"""scaffold migrate on files under faults: every file of a folder run is processed and reported,
nothing the user had is lost or half-written, modes and links are kept, no tracebacks."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest
from click.testing import CliRunner

from scaffold.cli import main
from scaffold.migrate import files
from scaffold.migrate.engine import MIGRATED, NOT_CONVERTED, migrate_source

ROOT = Path(__file__).resolve().parents[2]
LEGACY = (ROOT / "examples/legacy/tutorial_toplevel.py").read_text()


def migrate(*args: str, cwd: Path):
    old = Path.cwd()
    os.chdir(cwd)
    try:
        return CliRunner().invoke(main, ["migrate", *args], catch_exceptions=False)
    finally:
        os.chdir(old)


def leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.rglob("*") if p.name.endswith(".tmp"))


def test_a_folder_run_processes_every_file_and_reports_each(tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    (src / "a_good.py").write_text(LEGACY)
    (src / "b_latin1.py").write_bytes("# caf\xe9\nx = 1\n".encode("latin-1"))
    (src / "c_link.py").symlink_to(src / "missing.py")
    (src / "d_blocked.py").write_text(LEGACY)
    (src / "d_blocked.py.orig").write_text("something else the user keeps\n")
    (src / "e_deep.py").write_text("x = 1\ny = " + " + ".join(["x"] * 3000) + "\n")
    (src / "f_good.py").write_text(LEGACY)
    result = migrate("src", "--report", "report.json", cwd=tmp_path)
    assert result.exit_code == 1, result.output  # the worst: files that could not be handled
    assert "Traceback" not in result.output
    report = json.loads((tmp_path / "report.json").read_text())
    status = {Path(f["path"]).name: f["status"] for f in report["files"]}
    assert status == {
        "a_good.py": "migrated",
        "b_latin1.py": "file-error",
        "c_link.py": "file-error",
        "d_blocked.py": "file-error",
        "e_deep.py": "manual",
        "f_good.py": "migrated",
    }
    codes = {Path(f["path"]).name: [x["code"] for x in f["findings"]] for f in report["files"]}
    assert codes["b_latin1.py"] == codes["c_link.py"] == codes["d_blocked.py"] == ["SCF800"]
    assert "not UTF-8" in result.output and "broken symbolic link" in result.output
    # files after the faulty ones were migrated; the blocked one and its backup are untouched
    assert "L.Trainer(" in (src / "f_good.py").read_text()
    assert (src / "d_blocked.py").read_text() == LEGACY
    assert (src / "d_blocked.py.orig").read_text() == "something else the user keeps\n"
    assert leftovers(tmp_path) == []


def test_a_too_deep_expression_is_left_as_written_with_a_reason(tmp_path):
    """Deeper than Python compiles (libcst's parser would crash the process on it): refused."""
    deep = tmp_path / "deep.py"
    chain = "s = " + " + ".join(["1"] * 30000) + "\n"
    script = LEGACY.replace("torch.manual_seed(0)", chain + "torch.manual_seed(0)")
    deep.write_text(script)
    result = migrate("deep.py", cwd=tmp_path)
    assert result.exit_code == 3 and "SCF396" in result.output, result.output
    assert deep.read_text() == script and not (tmp_path / "deep.py.orig").exists()


def test_a_deep_expression_python_compiles_is_migrated(tmp_path):
    script = tmp_path / "train.py"
    chain = "s = " + " + ".join(["1"] * 600) + "\n"
    script.write_text(LEGACY.replace("torch.manual_seed(0)", chain + "torch.manual_seed(0)"))
    result = migrate("train.py", cwd=tmp_path)
    assert result.exit_code == 0, result.output
    assert "L.Trainer(" in script.read_text() and chain in script.read_text()


def test_output_onto_the_input_keeps_the_original(tmp_path):
    script = tmp_path / "train.py"
    script.write_text(LEGACY)
    result = migrate("train.py", "-o", "train.py", cwd=tmp_path)
    assert result.exit_code == 0, result.output
    assert (tmp_path / "train.py.orig").read_text() == LEGACY
    assert "L.Trainer(" in script.read_text()


def test_output_onto_an_existing_file_keeps_it(tmp_path):
    (tmp_path / "train.py").write_text(LEGACY)
    (tmp_path / "lit.py").write_text("# my earlier attempt\n")
    result = migrate("train.py", "-o", "lit.py", cwd=tmp_path)
    assert result.exit_code == 0, result.output
    assert (tmp_path / "lit.py.orig").read_text() == "# my earlier attempt\n"
    assert "previous version kept as" in result.output
    assert (tmp_path / "train.py").read_text() == LEGACY


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["-o", "outdir"], "is a folder"),
        (["-o", "missing/lit.py"], "does not exist"),
        (["--report", "missing/r.json"], "does not exist"),
        (["--report", "outdir"], "is a folder"),
    ],
)
def test_bad_destinations_are_usage_errors_before_any_work(tmp_path, args, message):
    (tmp_path / "outdir").mkdir()
    script = tmp_path / "train.py"
    script.write_text(LEGACY)
    result = migrate("train.py", *args, cwd=tmp_path)
    assert result.exit_code == 2 and message in result.output
    assert "Traceback" not in result.output
    assert script.read_text() == LEGACY and not (tmp_path / "train.py.orig").exists()


def test_a_read_only_script_is_not_rewritten(tmp_path):
    script = tmp_path / "train.py"
    script.write_text(LEGACY)
    script.chmod(0o444)
    result = migrate("train.py", cwd=tmp_path)
    assert result.exit_code == 1 and "read-only" in result.output
    assert script.read_text() == LEGACY and not (tmp_path / "train.py.orig").exists()
    assert stat.S_IMODE(script.stat().st_mode) == 0o444


def test_an_unwritable_folder_leaves_nothing_behind(tmp_path, monkeypatch):
    """A read-only mount: the first temporary file fails (EROFS), nothing is written, and the
    next run is not blocked by a stray backup."""
    script = tmp_path / "train.py"
    script.write_text(LEGACY)

    def read_only(*args, **kwargs):
        raise OSError(30, "Read-only file system")

    monkeypatch.setattr(files.tempfile, "mkstemp", read_only)
    result = migrate("train.py", cwd=tmp_path)
    assert result.exit_code == 1 and "Read-only file system" in result.output
    assert "Traceback" not in result.output
    assert script.read_text() == LEGACY
    assert sorted(p.name for p in tmp_path.iterdir() if p.is_file()) == ["train.py"]


def test_a_failure_between_the_two_renames_restores_everything(tmp_path, monkeypatch):
    script = tmp_path / "train.py"
    script.write_text(LEGACY)
    real_replace, calls = os.replace, []

    def second_fails(src, dst):
        calls.append(dst)
        if len(calls) == 2:
            raise OSError(28, "No space left on device")
        return real_replace(src, dst)

    monkeypatch.setattr(files.os, "replace", second_fails)
    result = migrate("train.py", cwd=tmp_path)
    assert result.exit_code == 1 and "No space left on device" in result.output
    assert script.read_text() == LEGACY
    assert sorted(p.name for p in tmp_path.iterdir() if p.is_file()) == ["train.py"]


def test_a_backup_an_interrupted_run_left_is_reused(tmp_path):
    """Killed after the backup was written, before the script was replaced: the next run sees a
    backup holding exactly the script's text and goes on."""
    script = tmp_path / "train.py"
    script.write_text(LEGACY)
    (tmp_path / "train.py.orig").write_text(LEGACY)
    result = migrate("train.py", cwd=tmp_path)
    assert result.exit_code == 0, result.output
    assert "L.Trainer(" in script.read_text()
    assert (tmp_path / "train.py.orig").read_text() == LEGACY


def test_modes_are_kept_and_new_files_follow_the_umask(tmp_path):
    script = tmp_path / "train.py"
    script.write_text(LEGACY)
    script.chmod(0o640)
    old = os.umask(0o022)
    try:
        assert migrate("train.py", "--report", "r.json", cwd=tmp_path).exit_code == 0
        (tmp_path / "other.py").write_text(LEGACY)
        assert migrate("other.py", "-o", "new_lit.py", cwd=tmp_path).exit_code == 0
    finally:
        os.umask(old)

    def mode(name: str) -> int:
        return stat.S_IMODE((tmp_path / name).stat().st_mode)

    assert mode("train.py") == mode("train.py.orig") == 0o640
    assert mode("r.json") == mode("new_lit.py") == 0o644


def test_a_symlinked_script_stays_a_link(tmp_path):
    real = tmp_path / "real_train.py"
    real.write_text(LEGACY)
    link = tmp_path / "train.py"
    link.symlink_to(real.name)
    result = migrate("train.py", cwd=tmp_path)
    assert result.exit_code == 0, result.output
    assert link.is_symlink() and os.readlink(link) == real.name
    assert "L.Trainer(" in real.read_text()
    backup = tmp_path / "train.py.orig"
    assert not backup.is_symlink() and backup.read_text() == LEGACY


def test_writes_reach_the_disk(tmp_path, monkeypatch):
    synced = []
    real_fsync = os.fsync
    monkeypatch.setattr(files.os, "fsync", lambda fd: (synced.append(fd), real_fsync(fd)))
    script = tmp_path / "train.py"
    script.write_text(LEGACY)
    assert migrate("train.py", cwd=tmp_path).exit_code == 0
    assert len(synced) >= 3  # the new script, its backup, and the folder holding them


def test_a_windows_file_keeps_its_line_ends(tmp_path):
    crlf = LEGACY.replace("\n", "\r\n").encode()
    (tmp_path / "train.py").write_bytes(crlf)
    result = migrate("train.py", cwd=tmp_path)
    assert result.exit_code == 0, result.output
    out = (tmp_path / "train.py").read_bytes()
    assert out != crlf and out.count(b"\r\n") == out.count(b"\n") > 0
    assert (tmp_path / "train.py.orig").read_bytes() == crlf
    # a file with LF line ends stays LF
    (tmp_path / "unix.py").write_text(LEGACY)
    assert migrate("unix.py", cwd=tmp_path).exit_code == 0
    assert b"\r" not in (tmp_path / "unix.py").read_bytes()


HELPER = """from torch import optim


def set_optimizer(opt, model):
    optimizer = optim.SGD(model.parameters(), lr=opt["lr"], momentum=0.9)
    return optimizer
"""

TRAIN = """import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from util import set_optimizer

torch.manual_seed(0)
x = torch.randn(32, 3)
loader = DataLoader(TensorDataset(x, x.sum(1, keepdim=True)), batch_size=4, shuffle=True)
net = nn.Linear(3, 1)
optimizer = set_optimizer({"lr": 0.01}, net)
for epoch in range(2):
    for xb, yb in loader:
        loss = nn.functional.mse_loss(net(xb), yb)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
print("FINAL", sum(p.sum().item() for p in net.parameters()))
"""


def test_an_optimizer_built_by_a_helper_in_a_module_beside_the_script_is_followed(tmp_path):
    from scaffold.migrate.engine import MIGRATED, NOT_CONVERTED, migrate_source

    (tmp_path / "util.py").write_text(HELPER)
    (tmp_path / "train.py").write_text(TRAIN)
    result = migrate("train.py", cwd=tmp_path)
    assert result.exit_code == 0, result.output
    code = (tmp_path / "train.py").read_text()
    assert "lit_model = LitModel(net, optimizer)" in code
    assert 'optimizer = set_optimizer({"lr": 0.01}, net)' in code  # runs where it ran
    # the text alone (no folder to read util.py from): which model it trains is not known
    alone = migrate_source(TRAIN)
    assert alone.status == NOT_CONVERTED and "SCF311" in {f.code for f in alone.findings}
    # a helper training a module it does not receive, or one with two returns: not followed
    for helper in (
        HELPER.replace("def set_optimizer(opt, model):", "def set_optimizer(opt, other):"),
        HELPER.replace(
            "    return optimizer", "    if opt:\n        return None\n    return optimizer"
        ),
    ):
        (tmp_path / "util.py").write_text(helper)
        (tmp_path / "train.py").write_text(TRAIN)
        assert migrate_source(TRAIN, origin=tmp_path / "train.py").status == NOT_CONVERTED
    (tmp_path / "util.py").write_text(HELPER)
    assert migrate_source(TRAIN, origin=tmp_path / "train.py").status == MIGRATED


_SAM_SCRIPT = """
import sys
import torch
import torch.nn as nn

sys.path.append("..")
from sam import SAM

model = nn.Linear(4, 1)
optimizer = SAM(model.parameters(), torch.optim.SGD, lr=0.1)
loader = torch.utils.data.DataLoader(
    torch.utils.data.TensorDataset(torch.randn(16, 4), torch.randn(16, 1)), batch_size=4
)
for epoch in range(2):
    for x, y in loader:
        nn.functional.mse_loss(model(x), y).backward()
        optimizer.first_step(zero_grad=True)
        nn.functional.mse_loss(model(x), y).backward()
        optimizer.second_step(zero_grad=True)
"""


@pytest.mark.parametrize(
    ("base", "status"),
    [("torch.optim.Optimizer", MIGRATED), ("object", NOT_CONVERTED)],
)
def test_optimizer_stepped_by_its_own_methods_is_found_on_the_scripts_sys_path(
    tmp_path, base, status
):
    """SAM's example keeps sam.py one folder up and adds it with sys.path.append(".."): the
    class is read there; an Optimizer subclass converts (manual optimization keeps
    first_step/second_step), anything else stays refused (SCF333)."""
    (tmp_path / "sam.py").write_text(
        f"import torch\n\n\nclass SAM({base}):\n    def first_step(self, zero_grad=False):\n"
        "        pass\n"
    )
    (tmp_path / "example").mkdir()
    result = migrate_source(_SAM_SCRIPT, origin=tmp_path / "example" / "train.py")
    assert result.status == status, result.findings
    if status == MIGRATED:
        step = result.code[result.code.index("def training_step") :]
        assert "optimizer = self.optimizers()" in step
        assert step.index("optimizer.first_step(zero_grad=True)") < step.index(
            "optimizer.second_step(zero_grad=True)"
        )
    else:
        assert "SCF333" in {f.code for f in result.findings}
