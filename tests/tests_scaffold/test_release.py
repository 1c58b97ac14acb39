"""Release-readiness, the way a user meets it: this repository builds an sdist and a wheel that
pass `twine check`; in a clean virtual environment that sees only that wheel (and the package
registries), `scaffold new` generates a project whose dependencies point at that same wheel, and
the project installs and passes its own tests."""

from __future__ import annotations

import json
import subprocess
import sys
import venv
from pathlib import Path

import pytest

from scaffold import new

ROOT = Path(__file__).resolve().parents[2]


class _Dist:
    def __init__(self, direct_url: str | None) -> None:
        self.direct_url = direct_url

    def read_text(self, name: str) -> str | None:
        return self.direct_url if name == "direct_url.json" else None


@pytest.mark.parametrize(
    "direct_url, expected",
    [
        (None, None),  # installed from an index: the template's default (the release)
        ({"url": "file:///work/torch-scaffold", "dir_info": {"editable": True}}, None),
        (
            {
                "url": "https://example.org/torch_scaffold-0.1.0-py3-none-any.whl",
                "archive_info": {},
            },
            "torch-scaffold @ https://example.org/torch_scaffold-0.1.0-py3-none-any.whl",
        ),
        (
            {
                "url": "https://github.com/acme/torch-scaffold",
                "vcs_info": {"vcs": "git", "commit_id": "abc123", "requested_revision": "v0.1.0"},
            },
            "torch-scaffold @ git+https://github.com/acme/torch-scaffold@abc123",
        ),
    ],
)
def test_runtime_requirement_follows_how_torch_scaffold_was_installed(
    monkeypatch, direct_url, expected
):
    import importlib.metadata

    text = None if direct_url is None else json.dumps(direct_url)
    monkeypatch.setattr(importlib.metadata, "distribution", lambda name: _Dist(text))
    assert new.runtime_requirement() == expected


def _run(args, cwd, timeout=600):
    proc = subprocess.run(args, cwd=cwd, capture_output=True, text=True, timeout=timeout)
    assert proc.returncode == 0, (
        f"$ {' '.join(map(str, args))}\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    )
    return proc.stdout


@pytest.mark.slow
def test_wheel_in_a_clean_venv_generates_a_project_that_installs_and_passes(tmp_path):
    pytest.importorskip("build")
    dist = tmp_path / "dist"
    _run([sys.executable, "-m", "build", "--outdir", str(dist), str(ROOT)], ROOT)
    wheels, sdists = list(dist.glob("*.whl")), list(dist.glob("*.tar.gz"))
    assert len(wheels) == 1 and len(sdists) == 1
    _run([sys.executable, "-m", "twine", "check", "--strict", *map(str, dist.iterdir())], ROOT)

    env_dir = tmp_path / "venv"
    venv.create(env_dir, with_pip=True, system_site_packages=False)
    python = env_dir / "bin" / "python"
    import torch

    torch_pin = f"torch=={torch.__version__.split('+')[0]}"  # the build already on the machine
    _run([str(python), "-m", "pip", "install", "-q", torch_pin, str(wheels[0])], tmp_path)
    _run(
        [str(env_dir / "bin" / "scaffold"), "new", "churn", "-d", "kind=tabular", "--defaults"],
        tmp_path,
    )
    project = tmp_path / "churn"
    pyproject = (project / "pyproject.toml").read_text()
    assert f'"torch-scaffold @ {wheels[0].resolve().as_uri()}"' in pyproject
    _run([str(python), "-m", "pip", "install", "-q", "-e", ".[dev]"], project)
    out = _run([str(python), "-m", "pytest", "-q", "-p", "no:cacheprovider"], project)
    assert " passed" in out and "failed" not in out
