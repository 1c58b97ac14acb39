"""examples/team-template: a team's own copier template, used the way a team would (from git,
pinned by tag), and its generated project passes its own tests."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import yaml

from tests.tests_scaffold.conftest import commit_all, git

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "team-template"


def _as_git_repo(tmp_path: Path) -> Path:
    repo = tmp_path / "acme-ml-template"
    shutil.copytree(EXAMPLE, repo, ignore=shutil.ignore_patterns("__pycache__"))
    git(tmp_path, "init", "-q", "-b", "main", str(repo))
    commit_all(repo, "template v1")
    git(repo, "tag", "v1.0.0")
    return repo


def test_generate_from_the_team_template_and_run_its_tests(cli, work, tmp_path):
    repo = _as_git_repo(tmp_path)
    bad = cli("new", "fraud-detector", "-t", str(repo), "--defaults", "-d", "owner=nobody")
    assert bad.exit_code == 1 and "must be an e-mail address" in bad.stderr, bad
    bad_choice = cli("new", "fraud-detector", "-t", str(repo), "--defaults", "-d", "cost_center=x")
    assert bad_choice.exit_code == 1 and "cost_center" in bad_choice.stderr, bad_choice
    result = cli(
        "new",
        "fraud-detector",
        "-t",
        str(repo),
        "--vcs-ref",
        "v1.0.0",
        "--defaults",
        "-d",
        "owner=ana@acme.example",
        "-d",
        "hidden_size=16",
    )
    assert result.exit_code == 0, result
    project = work / "fraud-detector"
    answers = yaml.safe_load((project / ".copier-answers.yml").read_text())
    assert answers["owner"] == "ana@acme.example" and answers["_commit"] == "v1.0.0"
    assert (project / ".github/workflows/ci.yml").read_text().startswith("# Shared by every")
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "-q"], cwd=project, capture_output=True, text=True
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "2 passed" in proc.stdout
