"""Packaging and import weight: every package ships, templates ship in the wheel layout, and
`import scaffold` (and `scaffold templates`) stay free of copier, libcst and torch."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
HEAVY = ("copier", "libcst", "torch", "jinja2", "lightning")


def _modules_after(code: str) -> list[str]:
    probe = (
        f"{code}\nimport sys\nprint('loaded:' + ','.join(m for m in {HEAVY!r} if m in sys.modules))"
    )
    proc = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr
    line = [ln for ln in proc.stdout.splitlines() if ln.startswith("loaded:")][-1]
    return [m for m in line[len("loaded:") :].split(",") if m]


def test_import_scaffold_is_light():
    assert _modules_after("import scaffold, scaffold.cli") == []


def test_listing_templates_is_light():
    code = (
        "from scaffold.cli import main\ntry:\n    main(['templates'])\nexcept SystemExit:\n    pass"
    )
    assert _modules_after(code) == []


def test_every_package_is_listed_in_pyproject():
    tomllib = pytest.importorskip("tomllib")
    from setuptools import find_packages

    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    found = set(find_packages(str(ROOT), include=["runtime*", "scaffold*"]))
    assert found <= set(config["packages"])
    assert config["package-dir"]["scaffold._templates"] == "templates"
