"""Every bundled template, for each engine and a few answer sets, renders a project that passes
its own `ruff check`, `ruff format --check` and `pytest` straight after generation.

Projects are rendered with copier from the bundled template (as `scaffold new` does) and their
test suites run in subprocesses, two at a time.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import yaml

from scaffold.new import NewOptions, create_project

KINDS = ["image", "tabular", "sequence", "autoencoder"]
ANSWER_SETS = {
    **{f"{kind}-runtime": {"kind": kind} for kind in KINDS},
    **{f"{kind}-lightning": {"kind": kind, "engine": "lightning"} for kind in KINDS},
    "tabular-regression-all-options": {
        "kind": "tabular",
        "task": "regression",
        "loggers": "[csv, tensorboard, mlflow]",
        "serve": "true",
        "precision": "bf16-mixed",
        "devices": "1",
        "python_version": "3.11",
    },
    "image-lightning-mlflow": {
        "kind": "image",
        "engine": "lightning",
        "loggers": "[csv, mlflow]",
        "serve": "true",
    },
    "sequence-transformer-lightning-serve": {
        "kind": "sequence",
        "engine": "lightning",
        "encoder": "transformer",
        "serve": "true",
        "export": "false",
        "loggers": "[]",
        "ci": "none",
    },
}


def _ruff() -> list[str]:
    exe = shutil.which("ruff")
    return [exe] if exe else [sys.executable, "-m", "ruff"]


def _check(project: Path) -> tuple[str, int, str]:
    env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1"}
    env.pop("PYTEST_ADDOPTS", None)
    steps = [
        [*_ruff(), "check", "--no-cache", "."],
        [*_ruff(), "format", "--check", "--no-cache", "."],
        [sys.executable, "-m", "pytest", "-q", "-x", "-p", "no:randomly"],
    ]
    for step in steps:
        proc = subprocess.run(step, cwd=project, capture_output=True, text=True, env=env)
        if proc.returncode != 0:
            return (
                project.name,
                proc.returncode,
                f"$ {' '.join(step)}\n{proc.stdout}\n{proc.stderr}",
            )
    return project.name, 0, ""


# the default run checks one project end to end; the `slow` set checks every answer set
QUICK = "tabular-runtime"


class _Checks:
    """Each project's ruff + pytest outcome, computed when first asked for: the slow set's
    projects are checked two at a time."""

    def __init__(self, projects: dict[str, Path]) -> None:
        self.projects = projects
        self.done: dict[str, tuple[int, str]] = {}

    def __call__(self, name: str) -> tuple[int, str]:
        if name not in self.done:
            batch = [name] if name == QUICK else [n for n in self.projects if n not in self.done]
            with ThreadPoolExecutor(max_workers=2) as pool:
                for n, rc, out in pool.map(_check, [self.projects[n] for n in batch]):
                    self.done[n] = (rc, out)
        return self.done[name]


@pytest.fixture(scope="module")
def rendered(tmp_path_factory):
    root = tmp_path_factory.mktemp("generated")
    home = root / "home"
    home.mkdir()
    old_home = os.environ.get("HOME")
    os.environ["HOME"] = str(home)
    try:
        projects = {}
        for name, data in ANSWER_SETS.items():
            result = create_project(
                NewOptions(destination=root / name, data=dict(data), defaults=True, git=False)
            )
            projects[name] = result.path
    finally:
        if old_home is not None:
            os.environ["HOME"] = old_home
    return projects, _Checks(projects)


@pytest.mark.parametrize(
    "name",
    [n if n == QUICK else pytest.param(n, marks=pytest.mark.slow) for n in ANSWER_SETS],
)
def test_generated_project_passes_ruff_and_its_tests(rendered, name):
    _, check = rendered
    rc, output = check(name)
    assert rc == 0, output


def test_options_change_the_rendered_files(rendered):
    projects, _ = rendered
    full = projects["tabular-regression-all-options"]
    assert (full / "src/tabular_regression_all_options/serve.py").is_file()
    config = (full / "configs/default.yaml").read_text()
    assert "MLFlowLogger" in config and "precision: bf16-mixed" in config and "devices: 1" in config
    lean = projects["sequence-transformer-lightning-serve"]
    assert not (lean / "src/sequence_transformer_lightning_serve/export.py").exists()
    # the serving tests run with the documented install (`pip install -e ".[dev]"`)
    for project in (full, lean):
        dev = _dev_extra(project)
        assert "fastapi" in dev and "httpx" in dev
        assert "importorskip" not in (project / "tests/test_serve.py").read_text()
    assert "fastapi" not in _dev_extra(projects["image-runtime"])
    hooks = yaml.safe_load((lean / ".pre-commit-config.yaml").read_text())
    ids = {hook["id"] for repo in hooks["repos"] for hook in repo["hooks"]}
    assert {"ruff", "ruff-format"} <= ids
    assert (
        not (lean / ".github").exists()
        and "logger: false" in (lean / "configs/default.yaml").read_text()
    )


@pytest.mark.parametrize("engine", ["runtime", "lightning"])
@pytest.mark.parametrize("kind", KINDS)
def test_longest_package_name_still_passes_ruff(tmp_path, kind, engine):
    """Line lengths in the rendered code must not depend on the package name (40 characters at
    most): every file of every kind, with every option on, stays within ruff's limits."""
    name = f"{kind}_{engine}_".ljust(40, "x")
    data = {"kind": kind, "engine": engine, "serve": "true", "export": "true"}
    data["loggers"] = "[csv, tensorboard, mlflow]"
    project = create_project(
        NewOptions(destination=tmp_path / name, data=data, defaults=True, git=False)
    ).path
    for step in (["check", "--no-cache", "."], ["format", "--check", "--no-cache", "."]):
        proc = subprocess.run([*_ruff(), *step], cwd=project, capture_output=True, text=True)
        assert proc.returncode == 0, proc.stdout + proc.stderr


def _dev_extra(project: Path) -> str:
    """The text of the generated pyproject's `dev = [...]` list (tomllib needs Python 3.11)."""
    text = (project / "pyproject.toml").read_text()
    start = text.index("\ndev = [")
    return text[start : text.index("]", start)]


@pytest.mark.distributed
@pytest.mark.slow
def test_generated_project_trains_on_two_processes_in_bf16(rendered, tmp_path):
    """The README's headline command: fit with bf16-mixed on 2 devices (CPU processes here)."""
    projects, _ = rendered
    project = projects["tabular-runtime"]
    env = {**os.environ, "PYTHONPATH": str(project / "src")}
    args = [sys.executable, "-m", "tabular_runtime", "fit", "--config", "configs/default.yaml"]
    args += ["--trainer.max_epochs", "2", "--trainer.precision", "bf16-mixed"]
    args += ["--trainer.devices", "2", "--trainer.enable_progress_bar", "false"]
    args += [
        "--trainer.logger+",
        f'{{"class_path": "CSVLogger", "init_args": {{"save_dir": "{tmp_path}"}}}}',
    ]
    proc = subprocess.run(args, cwd=project, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    metrics = list(tmp_path.rglob("metrics.csv"))
    assert metrics and "val_loss" in metrics[0].read_text()


HIDING = """
import os, sys
_hidden = set(os.environ["HIDE_MODULES"].split(","))


class _Hiding:
    def __init__(self, inner):
        self.inner = inner

    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in _hidden:
            return None
        return self.inner.find_spec(name, path, target)

    def __getattr__(self, item):
        return getattr(self.inner, item)


sys.meta_path[:] = [_Hiding(f) if getattr(f, "__name__", "") == "PathFinder" else f for f in sys.meta_path]
"""


def test_a_missing_optional_package_is_one_line_naming_the_install(rendered, tmp_path):
    """`loggers=[csv, tensorboard]` on a machine without tensorboard (issue: ~60 lines of
    parser report with the install command buried inside)."""
    projects, _ = rendered
    project = projects["tabular-regression-all-options"]
    (tmp_path / "sitecustomize.py").write_text(HIDING)
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(tmp_path), str(project / "src")]),
        "HIDE_MODULES": "tensorboard,tensorboardX",
    }
    args = [sys.executable, "-m", "tabular_regression_all_options", "fit"]
    args += ["--config", "configs/default.yaml", "--trainer.max_epochs", "1"]
    proc = subprocess.run(args, cwd=project, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 2
    lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1, proc.stderr
    assert "TensorBoardLogger" in lines[0] and "pip install tensorboard" in lines[0]
