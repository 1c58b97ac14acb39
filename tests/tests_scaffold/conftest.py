"""Fixtures for scaffold tests: an isolated HOME (template cache, git config), a CLI runner,
and a small team template in a git repository with tagged versions."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from click.testing import CliRunner

from scaffold.cli import main

GIT_ENV = {
    "GIT_AUTHOR_NAME": "t",
    "GIT_AUTHOR_EMAIL": "t@example.com",
    "GIT_COMMITTER_NAME": "t",
    "GIT_COMMITTER_EMAIL": "t@example.com",
}


def git(cwd, *args) -> str:
    return subprocess.run(
        ["git", *args], cwd=cwd, check=True, capture_output=True, text=True
    ).stdout


@pytest.fixture(autouse=True)
def home(tmp_path, monkeypatch):
    """HOME in tmp: the bundled template cache and git's global config start empty."""
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("GIT_CONFIG_NOSYSTEM", "1")
    for key in GIT_ENV:
        monkeypatch.delenv(key, raising=False)
    return home


@pytest.fixture
def work(tmp_path, monkeypatch):
    folder = tmp_path / "work"
    folder.mkdir()
    monkeypatch.chdir(folder)
    return folder


class Result:
    def __init__(self, result):
        self.exit_code = result.exit_code
        self.output = result.output
        self.stderr = result.stderr
        self.exception = result.exception

    def __repr__(self) -> str:
        return f"exit={self.exit_code}\n--- stdout\n{self.output}\n--- stderr\n{self.stderr}"


@pytest.fixture
def cli():
    def run(*args: str) -> Result:
        return Result(CliRunner().invoke(main, list(args)))

    return run


def write_files(root: Path, files: dict[str, str]) -> None:
    for rel, text in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)


TEAM_V1 = {
    "copier.yml": (
        "_subdirectory: template\n"
        "project_name:\n  type: str\n  default: demo\n"
        "team:\n  type: str\n  help: Owning team\n  default: vision\n"
        "  validator: \"{% if team not in ['vision', 'nlp'] %}team must be vision or nlp"
        '{% endif %}"\n'
        "epochs:\n  type: int\n  default: 5\n"
    ),
    "template/{{ _copier_conf.answers_file }}.jinja": "{{ _copier_answers|to_nice_yaml -}}\n",
    "template/README.md.jinja": "# {{ project_name }}\n\nOwned by {{ team }}.\n",
    "template/train.py.jinja": (
        "EPOCHS = {{ epochs }}\n\n\ndef main():\n    print('training', EPOCHS)\n"
    ),
    "template/.github/workflows/ci.yml": "name: shared-ci\non: [push]\n",
}


@pytest.fixture
def team_template(tmp_path) -> Path:
    """A copier template in git with tag v1.0.0."""
    repo = tmp_path / "team-template"
    repo.mkdir()
    write_files(repo, TEAM_V1)
    git(repo, "init", "-q", "-b", "main")
    git(repo, "add", "-A")
    git(repo, "-c", "user.name=t", "-c", "user.email=t@e", "commit", "-qm", "v1")
    git(repo, "tag", "v1.0.0")
    return repo


def commit_all(repo: Path, message: str) -> None:
    git(repo, "add", "-A")
    git(repo, "-c", "user.name=t", "-c", "user.email=t@e", "commit", "-qm", message)
