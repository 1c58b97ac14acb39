"""`scaffold templates` and `scaffold new`: bundled and team templates, answers, git, bad input."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from scaffold import catalog
from tests.tests_scaffold.conftest import commit_all, git

KINDS = ["image", "tabular", "sequence", "autoencoder"]


def answers(project):
    return yaml.safe_load((project / ".copier-answers.yml").read_text())


def test_templates_lists_each_bundled_kind_on_one_line(cli):
    result = cli("templates")
    assert result.exit_code == 0, result
    lines = result.output.strip().splitlines()
    assert [line.split()[0] for line in lines] == KINDS
    assert all(len(line.split(None, 1)[1]) > 10 for line in lines)


@pytest.mark.parametrize("kind", KINDS)
def test_new_bundled_kind_records_answers_and_commits(cli, work, kind):
    result = cli("new", f"{kind}-proj", "--template", kind, "--defaults")
    assert result.exit_code == 0, result
    project = work / f"{kind}-proj"
    package = f"{kind}_proj"
    for rel in [
        f"src/{package}/model.py",
        f"src/{package}/data.py",
        f"src/{package}/cli.py",
        f"src/{package}/__main__.py",
        "configs/default.yaml",
        "configs/debug.yaml",
        "configs/ddp.yaml",
        "tests/test_cli.py",
        "pyproject.toml",
        "README.md",
        ".gitignore",
        ".github/workflows/ci.yml",
    ]:
        assert (project / rel).is_file(), rel
    recorded = answers(project)
    assert recorded["kind"] == kind and recorded["package_name"] == package
    # The literal ~ path is what makes the project updatable on any machine.
    assert recorded["_src_path"] == catalog.CACHE_SRC and recorded["_commit"] == "v0.1.0"
    assert git(project, "status", "--porcelain") == ""
    assert "Initial commit from torch-scaffold" in git(project, "log", "--format=%B")
    assert f"python -m {package} fit" in result.output


def test_data_answers_are_applied(cli, work):
    result = cli(
        "new",
        "seq",
        "-t",
        "sequence",
        "--defaults",
        "-d",
        "engine=lightning",
        "-d",
        "encoder=transformer",
        "-d",
        "loggers=[csv, tensorboard]",
        "-d",
        "max_epochs=3",
        "-d",
        "serve=true",
    )
    assert result.exit_code == 0, result
    project = work / "seq"
    model = (project / "src/seq/model.py").read_text()
    assert "import lightning as L" in model and "import runtime" not in model
    assert 'encoder: str = "transformer"' in model
    config = yaml.safe_load((project / "configs/default.yaml").read_text())
    assert config["trainer"]["max_epochs"] == 3
    assert [lg["class_path"] for lg in config["trainer"]["logger"]] == [
        "CSVLogger",
        "TensorBoardLogger",
    ]
    assert (project / "src/seq/serve.py").is_file() and (project / "tests/test_serve.py").is_file()
    assert answers(project)["loggers"] == ["csv", "tensorboard"]


def test_new_in_nested_path_and_no_git(cli, work):
    result = cli("new", "a/b/my.proj", "--defaults", "--no-git")
    assert result.exit_code == 0, result
    project = work / "a/b/my.proj"
    assert answers(project)["package_name"] == "my_proj"
    assert not (project / ".git").exists()


def _left_behind(folder):
    return sorted(p.name for p in folder.iterdir())


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["new", "9lives", "--defaults"], "invalid project name '9lives'"),
        (["new", "my project", "--defaults"], "try `scaffold new my-project`"),
        (["new", "class", "--defaults"], "Python keyword"),
        (
            ["new", "p", "-t", "cnn", "--defaults"],
            "use one of image, tabular, sequence, autoencoder",
        ),
        (["new", "p", "--defaults", "-d", "colour=red"], "unknown question 'colour'"),
        (["new", "p", "--defaults", "-d", "devices=many"], "invalid answer for 'devices'"),
        (["new", "p", "--defaults", "-d", "engine=jax"], "invalid answer for 'engine'"),
        (["new", "p", "--defaults", "-d", "noequals"], "expects KEY=VALUE"),
        (["new", "p", "-t", "image", "-d", "kind=tabular", "--defaults"], "contradicts"),
        (["new", "p", "--defaults", "-d", "package_name=class"], "Python keyword"),
        (["new", "p", "--defaults", "-d", "package_name=match"], "Python keyword"),
        (["new", "p", "--defaults", "-d", "package_name=json"], "would shadow another module"),
        (["new", "json", "--defaults"], "would shadow another module"),
        (["new", "p", "--defaults", "-d", "description=a\nb"], "one line of text"),
        (["new", "p", "--defaults", "-d", "author=x\ty"], "one line of text"),
    ],
)
def test_bad_input_is_a_clear_error_and_writes_nothing(cli, work, args, message):
    result = cli(*args)
    assert result.exit_code in (1, 2), result
    assert message in result.stderr, result
    assert _left_behind(work) == []


def test_existing_non_empty_destination_needs_force(cli, work):
    (work / "proj").mkdir()
    (work / "proj" / "notes.txt").write_text("mine")
    result = cli("new", "proj", "--defaults")
    assert result.exit_code == 1 and "already exists and is not empty" in result.stderr
    assert _left_behind(work / "proj") == ["notes.txt"] and _left_behind(work) == ["proj"]
    result = cli("new", "proj", "--defaults", "--force")
    assert result.exit_code == 0, result
    assert (work / "proj" / "notes.txt").read_text() == "mine"
    assert (work / "proj" / "src" / "proj" / "model.py").is_file()
    assert git(work / "proj", "ls-files", "notes.txt").strip() == ""  # the user's, not committed


def test_empty_existing_destination_is_fine(cli, work):
    (work / "proj").mkdir()
    assert cli("new", "proj", "--defaults").exit_code == 0


def test_unreachable_git_url_fails_cleanly(cli, work, tmp_path):
    missing = f"file://{tmp_path}/nowhere/repo.git"
    result = cli("new", "proj", "-t", missing, "--defaults")
    assert result.exit_code == 1, result
    assert "does not exist" in result.stderr
    assert _left_behind(work) == []
    result = cli("new", "proj", "-t", "https://127.0.0.1:9/nowhere/repo.git", "--defaults")
    assert result.exit_code == 1, result
    assert "could not fetch template" in result.stderr
    assert _left_behind(work) == []


def test_team_template_from_git_with_vcs_ref(cli, work, team_template):
    (team_template / "template" / "README.md.jinja").write_text("# {{ project_name }} v2\n")
    commit_all(team_template, "v2")
    git(team_template, "tag", "v2.0.0")
    result = cli("new", "vision-x", "-t", str(team_template), "--vcs-ref", "v1.0.0", "--defaults")
    assert result.exit_code == 0, result
    project = work / "vision-x"
    assert (project / "README.md").read_text() == "# vision-x\n\nOwned by vision.\n"
    assert (project / ".github/workflows/ci.yml").read_text().startswith("name: shared-ci")
    assert answers(project)["_commit"] == "v1.0.0"
    latest = cli("new", "vision-y", "-t", str(team_template), "--defaults")
    assert answers(work / "vision-y")["_commit"] == "v2.0.0", latest


def test_team_template_validator_and_unknown_question(cli, work, team_template):
    bad = cli("new", "p", "-t", str(team_template), "--defaults", "-d", "team=infra")
    assert bad.exit_code == 1 and "team must be vision or nlp" in bad.stderr, bad
    unknown = cli("new", "p", "-t", str(team_template), "--defaults", "-d", "kind=image")
    assert unknown.exit_code == 1 and "unknown question 'kind'" in unknown.stderr, unknown
    assert "team" in unknown.stderr  # lists what the template does ask
    missing_ref = cli("new", "p", "-t", str(team_template), "--defaults", "--vcs-ref", "v9")
    assert missing_ref.exit_code == 1 and "v9" in missing_ref.stderr, missing_ref
    assert _left_behind(work) == []


def test_template_with_tasks_needs_trust(cli, work, team_template):
    copier_yml = team_template / "copier.yml"
    copier_yml.write_text(copier_yml.read_text() + "_tasks:\n  - touch task-ran.txt\n")
    commit_all(team_template, "tasks")
    git(team_template, "tag", "v1.1.0")
    refused = cli("new", "p", "-t", str(team_template), "--defaults")
    assert refused.exit_code == 1 and "--trust" in refused.stderr, refused
    assert _left_behind(work) == []
    trusted = cli("new", "p", "-t", str(team_template), "--defaults", "--trust")
    assert trusted.exit_code == 0, trusted
    assert (work / "p" / "task-ran.txt").exists()


def test_plain_folder_template_warns_it_cannot_update(cli, work, tmp_path):
    from tests.tests_scaffold.conftest import TEAM_V1, write_files

    plain = tmp_path / "plain-template"
    write_files(plain, TEAM_V1)
    result = cli("new", "p", "-t", str(plain), "--defaults")
    assert result.exit_code == 0, result
    assert "not a git repository" in result.stderr and "cannot update" in result.stderr


def test_inside_an_existing_repository_no_nested_repo(cli, work):
    git(work, "init", "-q")
    result = cli("new", "sub", "--defaults")
    assert result.exit_code == 0, result
    assert not (work / "sub" / ".git").exists()
    assert "inside the git repository" in result.stderr


def test_bundled_cache_is_reused_and_rebuilt_when_templates_change(home, tmp_path, monkeypatch):
    repo = catalog.ensure_bundled_repo()
    assert repo == home / ".cache/torch-scaffold/templates"
    stamp = repo / ".git" / "torch-scaffold-stamp"
    before = os.stat(stamp).st_mtime_ns
    assert catalog.ensure_bundled_repo() == repo and os.stat(stamp).st_mtime_ns == before
    assert catalog.release_tags() == ["v0.1.0"]
    import shutil

    changed = tmp_path / "tpl"
    shutil.copytree(catalog.TEMPLATE_DIR, changed)
    (changed / "project" / "NEW.md").write_text("new\n")
    catalog.ensure_bundled_repo(template_dir=changed)
    assert "NEW.md" in git(repo, "ls-tree", "-r", "--name-only", "v0.1.0", "project")


def test_answers_are_escaped_where_they_land_in_code(cli, work):
    """Quotes, triple quotes and backslashes in free-text answers stay text: the pyproject is
    valid TOML holding them verbatim, and the package docstring cannot become code."""
    import ast

    tomllib = pytest.importorskip("tomllib")  # Python 3.11+
    description = 'My "best" model """ import os; os.system("boom") """ \\ end'
    author = 'O"Brien \\ Co'
    result = cli(
        "new", "quoted", "--defaults", "-d", f"description={description}", "-d", f"author={author}"
    )
    assert result.exit_code == 0, result.output + result.stderr
    project = tomllib.loads((work / "quoted" / "pyproject.toml").read_text())["project"]
    assert project["description"] == description
    assert project["authors"] == [{"name": author}]
    init = (work / "quoted" / "src" / "quoted" / "__init__.py").read_text()
    tree = ast.parse(init)
    assert ast.get_docstring(tree) == description + "."
    assert not any(
        isinstance(n, ast.Call) and getattr(n.func, "attr", "") == "system" for n in ast.walk(tree)
    )


def test_new_into_the_current_empty_folder_keeps_the_folder(cli, work):
    """`mkdir e && cd e && scaffold new .`: the folder the shell is in is filled, not replaced."""
    here = work / "e"
    here.mkdir()
    inode = here.stat().st_ino
    os.chdir(here)
    result = cli("new", ".", "--defaults")
    assert result.exit_code == 0, result.output + result.stderr
    assert os.getcwd() == str(here) and here.stat().st_ino == inode
    assert (here / "pyproject.toml").is_file() and (here / ".git").is_dir()


def test_force_into_a_folder_commits_only_the_rendered_files(cli, work):
    dest = work / "proj"
    dest.mkdir()
    (dest / ".env").write_text("TOKEN=secret\n")
    (dest / "notes.txt").write_text("mine\n")
    result = cli("new", "proj", "--defaults", "--force")
    assert result.exit_code == 0, result.output + result.stderr
    tracked = git(dest, "ls-files").split()
    assert "pyproject.toml" in tracked
    assert ".env" not in tracked and "notes.txt" not in tracked
    assert (dest / ".env").read_text() == "TOKEN=secret\n"


def test_a_failed_render_leaves_no_folders_it_made(cli, work):
    result = cli("new", "a/b/proj", "--defaults", "-d", "devices=many")
    assert result.exit_code in (1, 2)
    assert _left_behind(work) == []


def test_a_very_long_name_is_a_clear_error(cli, work):
    result = cli("new", "a" * 300, "--defaults")
    assert result.exit_code == 1 and "at most 100" in result.stderr, result
    assert "Traceback" not in result.output + result.stderr
    assert _left_behind(work) == []


def test_unexpected_failures_are_one_paragraph_unless_debugging(cli, work, monkeypatch):
    """An OSError nobody anticipated (a full disk) is a message naming the file; SCAFFOLD_DEBUG=1
    shows the traceback instead."""
    from scaffold import new

    def full_disk(*args, **kwargs):
        raise OSError(28, "No space left on device", str(work / "proj"))

    monkeypatch.setattr(new, "_render", full_disk)
    result = cli("new", "proj", "--defaults")
    assert result.exit_code == 1, result
    assert "No space left on device" in result.stderr and "free some disk space" in result.stderr
    assert "Traceback" not in result.stderr
    assert _left_behind(work) == []
    monkeypatch.setenv("SCAFFOLD_DEBUG", "1")
    debug = cli("new", "proj", "--defaults")
    assert isinstance(debug.exception, OSError)


def test_file_url_template_is_the_local_path(cli, work, team_template):
    result = cli("new", "proj", "-t", f"file://{team_template}", "--defaults")
    assert result.exit_code == 0, result.output + result.stderr
    assert (work / "proj" / "train.py").is_file()


def test_a_full_disk_while_rendering_says_so(cli, work, monkeypatch):
    import copier

    def full(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(copier, "run_copy", full)
    result = cli("new", "proj", "--defaults")
    assert result.exit_code == 1 and "no space left" in result.stderr, result
    assert "network" not in result.stderr
    assert _left_behind(work) == []


def test_staging_left_by_a_killed_run_is_cleaned_up(cli, work):
    """SIGKILL during `scaffold new` leaves its hidden staging folder; the next run removes it
    (its process is gone) and leaves a running one's alone."""
    import signal
    import subprocess
    import sys
    import time

    proc = subprocess.Popen(
        [sys.executable, "-m", "scaffold", "new", "proj", "--defaults"],
        cwd=work,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and not list(work.glob(".proj.scaffold-*")):
        if proc.poll() is not None:
            break
        time.sleep(0.005)
    killed = proc.poll() is None
    if killed:
        proc.send_signal(signal.SIGKILL)
    proc.wait()
    if not killed:  # finished before the staging folder was seen: make one like it
        shutil.rmtree(work / "proj", ignore_errors=True)
        (work / f".proj.scaffold-{proc.pid}-x1").mkdir()
    assert list(work.glob(".proj.scaffold-*"))
    alive = work / f".proj.scaffold-{os.getpid()}-x2"  # a run in progress (this process)
    alive.mkdir()
    shutil.rmtree(work / "proj", ignore_errors=True)
    result = cli("new", "proj", "--defaults")
    assert result.exit_code == 0, result.output + result.stderr
    assert [p.name for p in work.glob(".proj.scaffold-*")] == [alive.name]


def test_a_template_the_sandbox_refuses_is_a_message(cli, work, team_template):
    """A template that reaches for Python internals trips jinja's sandbox: one paragraph, no
    traceback, nothing written."""
    (team_template / "template" / "evil.txt.jinja").write_text("{{ ''.__class__.__mro__ }}\n")
    commit_all(team_template, "evil")
    git(team_template, "tag", "v1.1.0")
    result = cli("new", "proj", "-t", str(team_template), "--defaults")
    assert result.exit_code == 1, result
    assert "sandbox" in result.stderr and "Traceback" not in result.stderr
    assert _left_behind(work) == []


def test_new_help_lists_the_template_questions(cli):
    result = cli("new", "--help")
    assert result.exit_code == 0
    assert "Questions of the bundled template" in result.output
    for question in catalog.bundled_questions():
        assert f"\n  {question} " in result.output
    assert "one of: runtime, lightning" in result.output
    assert "stdlib_modules" not in result.output  # computed, never asked


@pytest.mark.parametrize(
    "words, expected",
    [
        ("scaffold mig", {"migrate"}),
        ("scaffold new x --template ", {"image", "tabular", "sequence", "autoencoder"}),
        ("scaffold new x -d eng", {"engine="}),
        ("scaffold new x -d engine=", {"engine=runtime", "engine=lightning"}),
        ("scaffold migrate --engine l", {"lightning"}),
    ],
)
def test_shell_completion(words, expected):
    """The README's completion set-up: click's protocol, as bash calls it."""
    env = {
        **os.environ,
        "_SCAFFOLD_COMPLETE": "bash_complete",
        "COMP_WORDS": words,
        "COMP_CWORD": str(len(words.split(" ")) - 1),
    }
    proc = subprocess.run(
        [sys.executable, "-m", "scaffold"], env=env, capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 0, proc.stderr
    got = {line.split(",", 1)[1] for line in proc.stdout.splitlines()}
    assert got == expected


TEMPLATES = Path(__file__).resolve().parents[2] / "templates"


def test_shared_template_files_know_no_kind_by_name():
    """Kind-specific knowledge lives in includes/<kind>/ only (issue: four shared files held
    per-kind dicts and if/elif chains)."""
    shared = [p for p in (TEMPLATES / "project").rglob("*") if p.is_file()]
    for path in [TEMPLATES / "copier.yml", *shared]:
        text = path.read_text()
        if path.name == "copier.yml":
            text = text[text.index("\nproject_name:") :]  # past the `kind` question's choices
        for kind in KINDS:
            assert f"'{kind}'" not in text and f'"{kind}"' not in text, (path, kind)


def test_a_fifth_kind_is_one_folder_and_one_choice(tmp_path):
    from scaffold.new import NewOptions, create_project

    template = tmp_path / "template"
    shutil.copytree(TEMPLATES, template)
    shutil.copytree(template / "includes" / "tabular", template / "includes" / "churn")
    config = (template / "copier.yml").read_text()
    marker = '    "autoencoder: MLP autoencoder'
    config = config.replace(marker, '    "churn: a copy of tabular": churn\n' + marker)
    (template / "copier.yml").write_text(config)
    made = {}
    for kind in ("tabular", "churn"):
        result = create_project(
            NewOptions(
                destination=tmp_path / kind,
                template=str(template),
                data={"kind": kind, "project_name": "demo", "description": "Churn"},
                defaults=True,
                git=False,
            )
        )
        made[kind] = result.path
    for rel in ["pyproject.toml", "configs/default.yaml", "src/demo/cli.py", "src/demo/model.py"]:
        assert (made["churn"] / rel).read_text() == (made["tabular"] / rel).read_text(), rel
    answers = yaml.safe_load((made["churn"] / ".copier-answers.yml").read_text())
    assert answers["kind"] == "churn" and answers["task"] == "classification"
