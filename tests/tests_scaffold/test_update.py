"""`scaffold update`: 3-way merges for team templates (git tags) and for the bundled template
across torch-scaffold releases; conflicts, pretend, and refusals."""

from __future__ import annotations

import shutil

import pytest
import yaml

import scaffold
from scaffold import catalog
from scaffold.history import build_history_bundle
from tests.tests_scaffold.conftest import commit_all, git

USER_FUNCTION = "\n\ndef user_helper():\n    return 'kept'\n"


def answers(project):
    return yaml.safe_load((project / ".copier-answers.yml").read_text())


@pytest.fixture
def team_project(cli, work, team_template):
    result = cli("new", "proj", "-t", str(team_template), "--defaults", "-d", "epochs=7")
    assert result.exit_code == 0, result
    project = work / "proj"
    with open(project / "train.py", "a") as handle:
        handle.write(USER_FUNCTION)
    commit_all(project, "user work")
    return project


def release_v2(team_template, readme=None):
    train = team_template / "template" / "train.py.jinja"
    train.write_text(
        train.read_text().replace("EPOCHS = {{ epochs }}\n", "EPOCHS = {{ epochs }}\nLR = 0.1\n")
    )
    (team_template / "template" / "Makefile").write_text("test:\n\tpytest\n")
    (team_template / "template" / ".github/workflows/ci.yml").unlink()
    if readme is not None:
        (team_template / "template" / "README.md.jinja").write_text(readme)
    commit_all(team_template, "v2")
    git(team_template, "tag", "v2.0.0")


def test_team_template_update_merges_and_keeps_user_edits(cli, team_project, team_template):
    release_v2(team_template)
    result = cli("update", str(team_project))
    assert result.exit_code == 0, result
    train = (team_project / "train.py").read_text()
    assert "EPOCHS = 7\nLR = 0.1\n" in train and "return 'kept'" in train
    assert (team_project / "Makefile").is_file()
    assert not (team_project / ".github/workflows/ci.yml").exists()
    assert answers(team_project)["_commit"] == "v2.0.0" and answers(team_project)["epochs"] == 7
    assert "v1.0.0 -> v2.0.0" in result.output and "train.py" in result.output


def test_conflicts_are_listed_with_markers_and_exit_3(cli, team_project, team_template):
    readme = team_project / "README.md"
    readme.write_text(readme.read_text().replace("Owned by vision.", "Owned by vision (Ana)."))
    commit_all(team_project, "user readme")
    release_v2(team_template, readme="# {{ project_name }}\n\nOwned by the {{ team }} team.\n")
    result = cli("update", str(team_project))
    assert result.exit_code == 3, result
    assert "README.md" in result.stderr and "conflicts" in result.stderr
    text = readme.read_text()
    assert "<<<<<<< before updating" in text and "Owned by vision (Ana)." in text
    assert "Owned by the vision team." in text
    assert "return 'kept'" in (team_project / "train.py").read_text()  # clean merge elsewhere


def test_pretend_reports_and_writes_nothing(cli, team_project, team_template):
    release_v2(team_template)
    head = git(team_project, "rev-parse", "HEAD")
    result = cli("update", str(team_project), "--pretend")
    assert result.exit_code == 0, result
    assert "Would update" in result.output and "Makefile" in result.output
    assert git(team_project, "status", "--porcelain") == ""
    assert git(team_project, "rev-parse", "HEAD") == head
    assert answers(team_project)["_commit"] == "v1.0.0"


def test_update_to_a_chosen_ref_and_reanswer(cli, team_project, team_template):
    release_v2(team_template)
    result = cli("update", str(team_project), "--vcs-ref", "v1.0.0", "-d", "epochs=9")
    assert result.exit_code == 0, result
    assert "EPOCHS = 9" in (team_project / "train.py").read_text()
    assert answers(team_project)["_commit"] == "v1.0.0"


def test_refusals(cli, team_project, work):
    (team_project / "scratch.txt").write_text("untracked")
    dirty = cli("update", str(team_project))
    assert dirty.exit_code == 1 and "uncommitted changes" in dirty.stderr, dirty
    assert "scratch.txt" in dirty.stderr and "git stash" in dirty.stderr
    plain = work / "plain"
    plain.mkdir()
    no_answers = cli("update", str(plain))
    assert no_answers.exit_code == 1 and "no .copier-answers.yml" in no_answers.stderr


def test_project_outside_git_is_refused(cli, work, team_template):
    result = cli("new", "nogit", "-t", str(team_template), "--defaults", "--no-git")
    assert result.exit_code == 0, result
    refused = cli("update", str(work / "nogit"))
    assert refused.exit_code == 1 and "not inside a git repository" in refused.stderr


def test_plain_folder_template_has_no_version_to_update_from(cli, work, tmp_path):
    from tests.tests_scaffold.conftest import TEAM_V1, write_files

    plain = tmp_path / "plain-template"
    write_files(plain, TEAM_V1)
    assert cli("new", "p", "-t", str(plain), "--defaults").exit_code == 0
    refused = cli("update", str(work / "p"))
    assert refused.exit_code == 1 and "records no template version" in refused.stderr


# ---------------------------------------------------------------------------------------------
# Bundled template: a project made with release N updates to release N+1's template.
# ---------------------------------------------------------------------------------------------
@pytest.fixture
def release_history(tmp_path):
    """A torch-scaffold 'checkout' whose v0.1.0 tag holds today's templates, packed as the
    history bundle that release 0.2.0 would ship."""
    checkout = tmp_path / "checkout"
    shutil.copytree(catalog.TEMPLATE_DIR, checkout / "templates")
    git(checkout.parent, "init", "-q", str(checkout))
    commit_all(checkout, "release 0.1.0")
    git(checkout, "tag", "v0.1.0")
    bundle = tmp_path / "template-history.bundle"
    assert build_history_bundle(checkout, bundle) == ["v0.1.0"]
    return bundle


def next_release_templates(tmp_path):
    """Release 0.2.0's templates: a change to model.py and a new file."""
    newer = tmp_path / "templates-0.2.0"
    shutil.copytree(catalog.TEMPLATE_DIR, newer)
    model = newer / "includes" / "tabular" / "model.py.jinja"
    text = model.read_text()
    model.write_text(
        text.replace('"""MLP for tabular data', '"""Release 0.2.0: MLP for tabular data')
    )
    (newer / "project" / "CHANGELOG.md").write_text("# Changelog\n")
    return newer


def test_bundled_project_updates_to_the_next_release(
    cli, work, tmp_path, monkeypatch, release_history
):
    made = cli("new", "churn", "-t", "tabular", "--defaults")
    assert made.exit_code == 0, made
    project = work / "churn"
    model = project / "src" / "churn" / "model.py"
    with open(model, "a") as handle:
        handle.write(USER_FUNCTION)
    commit_all(project, "user work")

    monkeypatch.setattr(scaffold, "__version__", "0.2.0")
    monkeypatch.setattr(catalog, "TEMPLATE_DIR", next_release_templates(tmp_path))
    monkeypatch.setattr(catalog, "HISTORY_BUNDLE", release_history)
    assert cli("update", str(project), "--pretend").exit_code == 0
    assert git(project, "status", "--porcelain") == ""
    result = cli("update", str(project))
    assert result.exit_code == 0, result
    text = model.read_text()
    assert text.startswith('"""Release 0.2.0: MLP for tabular data') and "return 'kept'" in text
    assert (project / "CHANGELOG.md").is_file()
    recorded = answers(project)
    assert recorded["_commit"] == "v0.2.0" and recorded["_src_path"] == catalog.CACHE_SRC
    assert catalog.release_tags() == ["v0.1.0", "v0.2.0"]
    commit_all(project, "take 0.2.0")

    # Going back to the older torch-scaffold cannot downgrade the project.
    monkeypatch.setattr(scaffold, "__version__", "0.1.0")
    monkeypatch.setattr(catalog, "TEMPLATE_DIR", tmp_path / "checkout" / "templates")
    refused = cli("update", str(project))
    assert refused.exit_code == 1 and "upgrade torch-scaffold" in refused.stderr, refused


def test_bundled_project_already_up_to_date(cli, work):
    assert cli("new", "p", "--defaults").exit_code == 0
    result = cli("update", str(work / "p"))
    assert result.exit_code == 0 and "up to date" in result.output, result


def test_update_never_overwrites_a_file_git_does_not_track(cli, team_project, team_template):
    """The new template version adds `local.env`; the user already has one, git-ignored, holding
    a secret: the update stops before writing anything and says which file."""
    (team_project / ".gitignore").write_text("local.env\n")
    commit_all(team_project, "ignore local settings")
    (team_project / "local.env").write_text("TOKEN=secret\n")
    (team_template / "template" / "local.env").write_text("TOKEN=changeme\n")
    release_v2(team_template)
    head = git(team_project, "rev-parse", "HEAD")
    result = cli("update", str(team_project))
    assert result.exit_code == 1 and "local.env" in result.stderr, result
    assert "not tracked by git" in result.stderr
    assert (team_project / "local.env").read_text() == "TOKEN=secret\n"
    assert git(team_project, "status", "--porcelain") == ""
    assert git(team_project, "rev-parse", "HEAD") == head
    assert answers(team_project)["_commit"] == "v1.0.0"
    (team_project / "local.env").rename(team_project.parent / "saved.env")  # as the hint says
    again = cli("update", str(team_project))
    assert again.exit_code == 0, again
    assert (team_project / "local.env").read_text() == "TOKEN=changeme\n"


def test_ctrl_c_during_the_merge_changes_nothing(cli, team_project, team_template, monkeypatch):
    import copier

    release_v2(team_template)

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(copier, "run_update", interrupted)
    result = cli("update", str(team_project))
    assert result.exit_code == 130 and "was not changed" in result.stderr, result
    assert git(team_project, "status", "--porcelain") == ""
    assert answers(team_project)["_commit"] == "v1.0.0"


def test_a_failure_while_writing_restores_the_project(
    cli, team_project, team_template, monkeypatch
):
    """Interrupted after some files were written: every file is put back, new ones removed."""
    from scaffold import update

    release_v2(team_template)
    real_replace, calls = update.os.replace, []

    def second_fails(src, dst):
        calls.append(dst)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return real_replace(src, dst)

    monkeypatch.setattr(update.os, "replace", second_fails)
    result = cli("update", str(team_project))
    assert result.exit_code == 130 and "put back" in result.stderr, result
    assert git(team_project, "status", "--porcelain", "--ignored") == ""
    assert answers(team_project)["_commit"] == "v1.0.0"
    assert not (team_project / "Makefile").exists()


def test_pretend_marks_added_modified_and_deleted_files(cli, team_project, team_template):
    release_v2(team_template)
    result = cli("update", str(team_project), "--pretend")
    assert result.exit_code == 0, result
    assert "  A Makefile" in result.output
    assert "  M train.py" in result.output
    assert "  D .github/workflows/ci.yml" in result.output


def test_an_answers_file_that_is_not_yaml_is_a_clear_error(cli, team_project):
    (team_project / ".copier-answers.yml").write_text("_commit: [v1\n  :::\n")
    commit_all(team_project, "broken answers")
    result = cli("update", str(team_project))
    assert result.exit_code == 1 and "is not valid YAML" in result.stderr, result
    assert "git checkout" in result.stderr


def test_a_tampered_template_version_is_named_as_such(cli, team_project, team_template):
    release_v2(team_template)
    answers_file = team_project / ".copier-answers.yml"
    answers_file.write_text(answers_file.read_text().replace("v1.0.0", "v1.0.9"))
    commit_all(team_project, "edited by hand")
    result = cli("update", str(team_project))
    assert result.exit_code == 1, result
    assert "records template version 'v1.0.9'" in result.stderr
    assert "has no version 'HEAD'" not in result.stderr


@pytest.mark.parametrize("delay", [0.0, 0.3, 0.8])
def test_sigint_during_a_real_update_leaves_old_or_new_never_half(
    team_project, team_template, tmp_path, delay
):
    """A real Ctrl-C (SIGINT) at some point of `scaffold update`: afterwards the project is either
    untouched at its last commit or completely updated, never in between."""
    import os
    import signal
    import subprocess
    import sys
    import time

    release_v2(team_template)
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    env = {**os.environ, "TMPDIR": str(scratch)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "scaffold", "update", str(team_project)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and proc.poll() is None and not list(scratch.iterdir()):
        time.sleep(0.002)
    time.sleep(delay)
    if proc.poll() is None:
        proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=120)
    # a signal landing in interpreter shutdown or a garbage-collected object's __del__ is
    # reported by Python itself ("Exception ignored in ...", exit -2): not a traceback of ours
    ours = err.split("Exception ignored in")[0]
    assert "Traceback" not in ours, err
    status = git(team_project, "status", "--porcelain")
    if answers(team_project)["_commit"] == "v1.0.0":
        assert status == "", (out, err)  # untouched
        # 130 from sys.exit, or death by the SIGINT itself when Python re-delivers it at
        # shutdown (a shell shows both as 130); the message and the untouched project are
        # what the user relies on
        assert proc.returncode in (130, 1, -signal.SIGINT), (out, err)
        assert "interrupted" in err or proc.returncode == 1, err
    else:  # the signal came after the project was updated: complete (exit 0, or click's
        # "Aborted!" when it interrupted the printing of the summary)
        late = proc.returncode in (0, -signal.SIGINT) or "Aborted" in err
        assert late, (proc.returncode, out, err)
        assert status != "" and (team_project / "Makefile").is_file()
        assert "LR = 0.1" in (team_project / "train.py").read_text()
    assert list(scratch.iterdir()) == [], (
        proc.returncode,
        out,
        err,
        sorted(str(p.relative_to(scratch)) for p in scratch.rglob("*"))[:40],
    )  # the throw-away clone is gone
