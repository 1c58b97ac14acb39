"""``scaffold new``: render a template into a new project folder, atomically.

The project is rendered into a hidden sibling folder, committed there as a fresh git repo,
and only then moved into place, so a failure at any point (a validator, an unreachable URL,
a template error) leaves nothing behind.
"""

from __future__ import annotations

import glob
import keyword
import os
import re
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from scaffold import catalog
from scaffold.errors import ScaffoldError, UsageError
from scaffold.gitutil import init_and_commit, require_git, work_tree_root

_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9._-]*$")


@dataclass(frozen=True)
class NewOptions:
    destination: Path
    template: str | None = None
    vcs_ref: str | None = None
    data: dict[str, str] = field(default_factory=dict)
    defaults: bool = True
    force: bool = False
    trust: bool = False
    git: bool = True


@dataclass(frozen=True)
class NewResult:
    path: Path
    template: str
    version: str | None
    answers: dict
    git_initialised: bool
    notes: tuple[str, ...] = ()


def parse_data(pairs: tuple[str, ...] | list[str]) -> dict[str, str]:
    """``-d key=value`` pairs; values stay strings (copier converts them by question type)."""
    data: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise UsageError(
                f"-d/--data expects KEY=VALUE, got {pair!r}.",
                "for example: -d n_features=32 -d 'loggers=[csv, tensorboard]'",
            )
        data[key.strip()] = value
    return data


def check_project_name(name: str) -> str:
    if not _NAME.match(name):
        suggestion = re.sub(r"[^A-Za-z0-9._-]+", "-", name).strip("-._") or "my-project"
        if not suggestion[0].isalpha():
            suggestion = f"project-{suggestion}"
        raise ScaffoldError(
            f"invalid project name {name!r}: it must start with a letter and contain only "
            "letters, digits, '.', '_' and '-'.",
            f"try `scaffold new {suggestion}`.",
        )
    if len(name) > 100:
        raise ScaffoldError(
            f"invalid project name {name[:40]}... ({len(name)} characters): at most 100 are "
            "allowed (file systems limit a name to 255 bytes, and the package and distribution "
            "names derive from it).",
            "choose a shorter name.",
        )
    package = re.sub(r"[-.]", "_", name.lower())
    if keyword.iskeyword(package):
        raise ScaffoldError(
            f"invalid project name {name!r}: its package name {package!r} is a Python keyword.",
            f"try `scaffold new {name}-project`.",
        )
    return name


def _check_destination(dest: Path, force: bool) -> None:
    if dest.exists() and not dest.is_dir():
        raise ScaffoldError(
            f"destination {str(dest)!r} exists and is a file.", "choose another project name."
        )
    if dest.is_dir() and any(dest.iterdir()) and not force:
        raise ScaffoldError(
            f"destination {str(dest)!r} already exists and is not empty; nothing was written.",
            "choose another name, empty the folder, or pass --force to render into it "
            "(existing files with the same names are overwritten).",
        )


def _check_data_keys(data: dict[str, str], allowed: list[str], template: str) -> None:
    unknown = sorted(set(data) - set(allowed))
    if unknown:
        raise ScaffoldError(
            f"unknown question{'s' if len(unknown) > 1 else ''} {', '.join(map(repr, unknown))} "
            f"for template {template!r}.",
            f"the template asks: {', '.join(allowed)}.",
        )


def create_project(opts: NewOptions) -> NewResult:
    dest = opts.destination.expanduser().absolute()
    name = check_project_name(dest.name)
    _check_destination(dest, opts.force)
    source = catalog.resolve(opts.template, opts.vcs_ref)
    require_git()
    data = dict(opts.data)
    notes: list[str] = []
    if source.bundled:
        _check_data_keys(data, list(catalog.bundled_questions()), "bundled")
        if source.kind is not None:
            if "kind" in data and data["kind"] != source.kind:
                raise UsageError(
                    f"--template {source.kind} contradicts -d kind={data['kind']}.",
                    "give the kind once, with --template.",
                )
            data["kind"] = source.kind
        catalog.ensure_bundled_repo()
    elif Path(source.src).is_dir() and work_tree_root(source.src) is None:
        notes.append(
            f"{source.src} is not a git repository: copier records no template version, so "
            "`scaffold update` cannot update this project. Put the template under git (with "
            "tags) to make projects updatable."
        )
    data.setdefault("project_name", name)
    vcs_ref = source.vcs_ref
    if source.bundled and vcs_ref is None:
        import scaffold

        vcs_ref = f"v{scaffold.__version__}"
    made = [d for d in (dest.parent, *dest.parent.parents) if not d.exists()]
    dest.parent.mkdir(parents=True, exist_ok=True)
    _remove_stale_staging(dest)
    staging = Path(
        tempfile.mkdtemp(prefix=f".{dest.name}.scaffold-{os.getpid()}-", dir=dest.parent)
    )
    done = False
    try:
        worker = _render(source, staging / "project", data, vcs_ref, opts)
        if not source.bundled:
            allowed = [q for q in worker.template.questions_data if q != "project_name"]
            _check_data_keys(opts.data, [*allowed, "project_name"], source.src)
        answers = catalog.read_answers(staging / "project") or {}
        inside = work_tree_root(dest.parent)
        git_init = opts.git and inside is None and not (dest / ".git").exists()
        if opts.git and inside is not None:
            notes.append(
                f"{dest.parent} is inside the git repository {inside}; no new repository was "
                "created. Commit the project there before running `scaffold update`."
            )
        if git_init and not (opts.force and dest.is_dir() and any(dest.iterdir())):
            init_and_commit(staging / "project", _commit_message(source, answers))
            git_init_done = True
        else:
            git_init_done = False
        rendered = sorted(
            str(f.relative_to(staging / "project"))
            for f in (staging / "project").rglob("*")
            if not f.is_dir() and ".git" not in f.relative_to(staging / "project").parts
        )
        _move_into_place(staging / "project", dest)
        if git_init and not git_init_done:
            # --force into a folder with the user's files: only what was rendered is committed
            init_and_commit(dest, _commit_message(source, answers), rendered)
            git_init_done = True
        done = True
    finally:
        shutil.rmtree(staging, ignore_errors=True)
        if not done:  # folders made for the project go too (deepest first, only if empty)
            for folder in made:
                try:
                    folder.rmdir()
                except OSError:
                    break
    return NewResult(
        path=dest,
        template=(source.kind or answers.get("kind", "")) if source.bundled else source.src,
        version=answers.get("_commit"),
        answers=answers,
        git_initialised=git_init_done,
        notes=tuple(notes),
    )


def _remove_stale_staging(dest: Path) -> None:
    """Staging folders of earlier runs that were killed (SIGKILL, power loss) before they could
    clean up: their process is gone, so they are removed."""
    pattern = re.compile(rf"\.{re.escape(dest.name)}\.scaffold-(\d+)-")
    for sibling in dest.parent.glob(f".{glob.escape(dest.name)}.scaffold-*"):
        found = pattern.match(sibling.name)
        if found is None or not sibling.is_dir():
            continue
        try:
            os.kill(int(found.group(1)), 0)
        except ProcessLookupError:
            shutil.rmtree(sibling, ignore_errors=True)
        except (PermissionError, OverflowError, ValueError):
            continue  # alive under another user, or not a pid


def _render(source, staging: Path, data: dict, vcs_ref: str | None, opts: NewOptions):
    import copier

    from scaffold.copier_errors import translate

    defaults = {}
    if source.bundled:
        requirement = runtime_requirement()
        if requirement is not None:
            defaults["runtime_requirement"] = requirement
    with translate(source.src, vcs_ref):
        return copier.run_copy(
            source.src,
            staging,
            data=data,
            user_defaults=defaults,
            vcs_ref=vcs_ref,
            defaults=opts.defaults,
            unsafe=opts.trust,
            quiet=True,
            overwrite=True,
        )


def runtime_requirement() -> str | None:
    """Where this torch-scaffold came from, as a requirement a generated project can install
    from (PEP 610's direct_url.json): a git URL or a wheel/sdist URL or file; None for an index
    install or a source checkout (the template's default, the release, applies)."""
    import importlib.metadata
    import json

    try:
        raw = importlib.metadata.distribution("torch-scaffold").read_text("direct_url.json")
    except importlib.metadata.PackageNotFoundError:
        return None
    if not raw:
        return None
    try:
        info = json.loads(raw)
    except ValueError:
        return None
    url = info.get("url", "")
    if "vcs_info" in info:
        vcs = info["vcs_info"]
        ref = vcs.get("commit_id") or vcs.get("requested_revision")
        return f"torch-scaffold @ {vcs.get('vcs', 'git')}+{url}" + (f"@{ref}" if ref else "")
    if "archive_info" in info and url:
        return f"torch-scaffold @ {url}"
    return None  # a local folder (editable or not): not a source another machine can use


def _commit_message(source, answers: dict) -> str:
    import scaffold

    what = f"bundled template '{answers.get('kind')}'" if source.bundled else source.src
    ref = answers.get("_commit")
    return (
        f"Initial commit from torch-scaffold {scaffold.__version__}\n\n"
        f"Template: {what}{f' at {ref}' if ref else ''}"
    )


def _move_into_place(staged: Path, dest: Path) -> None:
    if not dest.exists():
        staged.rename(dest)
        return
    if not any(dest.iterdir()):
        # an empty folder (maybe the shell's current one: `scaffold new .`) is kept and filled,
        # never replaced, so a shell inside it still sees the project
        for child in staged.iterdir():
            child.rename(dest / child.name)
        return
    shutil.copytree(staged, dest, dirs_exist_ok=True)  # --force into a non-empty folder
