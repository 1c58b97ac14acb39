"""``scaffold update``: bring template changes into a project with copier's 3-way merge.

Works for team templates in git and for the bundled template across torch-scaffold releases
(see ``catalog``). User edits survive; where the template changed the same lines, copier writes
inline conflict markers and the files are reported. ``pretend`` runs the same update on a
throw-away clone of the project and reports what would change.
"""

from __future__ import annotations

import dataclasses
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from scaffold import catalog
from scaffold.errors import ScaffoldError
from scaffold.gitutil import git, require_git, status_lines, unmerged_files, work_tree_root

ANSWERS_FILE = catalog.ANSWERS_FILE


@dataclass(frozen=True)
class UpdateOptions:
    path: Path = Path(".")
    vcs_ref: str | None = None
    pretend: bool = False
    data: dict[str, str] = field(default_factory=dict)
    trust: bool = False


@dataclass(frozen=True)
class UpdateResult:
    path: Path
    template: str
    from_version: str | None
    to_version: str | None
    changed: list[str]
    conflicts: list[str]
    pretend: bool
    diff: str = ""


def _load_answers(project: Path) -> dict:
    answers_file = project / ANSWERS_FILE
    answers = catalog.read_answers(project)
    if answers is None:
        raise ScaffoldError(
            f"{project} has no {ANSWERS_FILE}, so it was not made by `scaffold new` (or copier) "
            "and there is no template to update from.",
            "run `scaffold update` in a project folder made by `scaffold new`, or pass its path.",
        )
    if not answers.get("_src_path"):
        raise ScaffoldError(f"{answers_file} does not record a template source (_src_path).")
    if not answers.get("_commit"):
        raise ScaffoldError(
            f"{answers_file} records no template version: the template "
            f"{answers['_src_path']!r} was not a git repository when the project was made, so "
            "there is no base for a 3-way merge.",
            "put the template under git with a tag, then re-create the project from it, or "
            "apply changes by hand.",
        )
    return answers


def _check_repo(project: Path) -> None:
    if work_tree_root(project) is None:
        raise ScaffoldError(
            f"{project} is not inside a git repository; updates need git to merge safely.",
            "run `git init && git add -A && git commit -m init` in the project first.",
        )
    dirty = status_lines(project)
    if dirty:
        shown = "\n    ".join(dirty[:10]) + ("\n    ..." if len(dirty) > 10 else "")
        raise ScaffoldError(
            f"{project} has uncommitted changes; an update must start from a clean tree so that "
            f"nothing of yours can be lost:\n    {shown}",
            "commit or stash them (`git stash -u`), then rerun `scaffold update`.",
        )


def _version_key(tag: str):
    from packaging.version import InvalidVersion, Version

    try:
        return Version(tag.lstrip("v"))
    except InvalidVersion:
        return None


def _bundled_target(answers: dict, vcs_ref: str | None) -> str:
    import scaffold

    catalog.ensure_bundled_repo()
    target = vcs_ref or f"v{scaffold.__version__}"
    tags = catalog.release_tags()
    current = answers["_commit"]
    if target not in tags:
        raise ScaffoldError(
            f"the bundled template has no version {target!r}; this torch-scaffold has "
            f"{', '.join(tags)}.",
            "pass one of those with --vcs-ref, or omit it to update to this release.",
        )
    now, then = _version_key(target), _version_key(current)
    if now is not None and then is not None and then > now:
        raise ScaffoldError(
            f"the project was made with the templates of torch-scaffold {current}, newer than "
            f"{target}; templates cannot be downgraded.",
            f"upgrade torch-scaffold (pip install -U 'torch-scaffold>={current.lstrip('v')}').",
        )
    if current not in tags:
        raise ScaffoldError(
            f"the project's template version {current!r} is not in this torch-scaffold's template "
            "history, so there is no base for a 3-way merge.",
            "install the torch-scaffold release that made the project, or a later one that ships "
            "its history.",
        )
    return target


def update_project(opts: UpdateOptions) -> UpdateResult:
    project = opts.path.expanduser().resolve()
    if not project.is_dir():
        raise ScaffoldError(f"{project} is not a folder.", "pass the project's folder.")
    answers = _load_answers(project)
    require_git()
    _check_repo(project)
    src = answers["_src_path"]
    bundled = src == catalog.CACHE_SRC
    target = _bundled_target(answers, opts.vcs_ref) if bundled else opts.vcs_ref
    if not opts.pretend:
        _run_update(project, src, target, opts)
        return _result(project, project, answers, src, opts, diff="")
    scratch = Path(tempfile.mkdtemp(prefix="scaffold-update-"))
    try:
        clone = scratch / project.name
        git("clone", "-q", "--no-hardlinks", str(project), str(clone), cwd=scratch)
        _run_update(clone, src, target, opts)
        result = _result(project, clone, answers, src, opts, diff="")
        git("add", "-A", cwd=clone, check=False)
        diff = git("diff", "--cached", "--stat", cwd=clone, check=False)
        return dataclasses.replace(result, diff=diff)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def _run_update(project: Path, src: str, target: str | None, opts: UpdateOptions) -> None:
    import copier

    from scaffold.copier_errors import translate

    kwargs = {"vcs_ref": target} if target else {}
    with translate(src, target):
        copier.run_update(
            project,
            data=dict(opts.data),
            defaults=True,
            overwrite=True,
            conflict="inline",
            unsafe=opts.trust,
            quiet=True,
            skip_answered=True,
            **kwargs,
        )


def _result(project: Path, where: Path, answers: dict, src: str, opts, diff: str) -> UpdateResult:
    conflicts = unmerged_files(where)
    changed = sorted({line[3:] for line in status_lines(where)})
    new_answers = catalog.read_answers(where) or {}
    return UpdateResult(
        path=project,
        template=src,
        from_version=answers.get("_commit"),
        to_version=new_answers.get("_commit"),
        changed=changed,
        conflicts=conflicts,
        pretend=opts.pretend,
        diff=diff,
    )
