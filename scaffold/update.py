"""``scaffold update``: bring template changes into a project with copier's 3-way merge.

Works for team templates in git and for the bundled template across torch-scaffold releases
(see ``catalog``). User edits survive; where the template changed the same lines, copier writes
inline conflict markers and the files are reported. The update always runs on a throw-away clone
of the project; ``pretend`` reports what changed there, otherwise the changes are carried into
the project all at once (an interruption leaves it at its last commit) and never over a file of
the user's that git does not track.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
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
    kinds: dict[str, str] = field(default_factory=dict)  # path -> A (added), M, D (deleted)


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
    # The update runs on a throw-away clone: an interruption or a failure there leaves the
    # project as it was; only a finished update is carried over (see ``_apply``).
    scratch = None
    try:
        with _sigint_deferred():  # a Ctrl-C now cannot orphan the folder: it is named first
            scratch = Path(tempfile.mkdtemp(prefix="scaffold-update-"))
        root = work_tree_root(project) or project
        clone = scratch / "work" / root.name / project.relative_to(root)
        (scratch / "work").mkdir()
        git(
            "clone",
            "-q",
            "--no-hardlinks",
            str(root),
            str(scratch / "work" / root.name),
            cwd=scratch,
        )
        try:
            # copier's own temporary clones go inside the scratch folder, so that an
            # interruption, which copier does not clean up after, leaves nothing behind either
            with _tempdir(scratch / "tmp"):
                _run_update(clone, src, target, opts, answers.get("_commit"))
        except KeyboardInterrupt:
            raise Interrupted(
                f"interrupted while merging the template into a copy of {project}; the project "
                "was not changed.",
                "rerun `scaffold update` when ready.",
            ) from None
        result = _result(project, clone, answers, src, opts, diff="")
        git("add", "-A", "--force", cwd=clone, check=False)  # ignored new files too
        changes = _changes(clone)
        kinds = {path: status[0] for status, path in changes}
        result = dataclasses.replace(result, changed=sorted(kinds), kinds=kinds)
        if opts.pretend:
            diff = git("diff", "--cached", "--stat", "--relative", cwd=clone, check=False)
            return dataclasses.replace(result, diff=diff)
        _apply(clone, project, changes)
        return result
    finally:
        if scratch is not None:
            # removed even when Ctrl-C arrives meanwhile (then re-raised): an interrupted
            # cleanup would leave a copy of the project in the temporary folder
            with _sigint_deferred():
                _remove(scratch)


def _remove(folder: Path) -> None:
    """Removes a scratch folder; tries again a few times while something that was ended a
    moment ago may still be closing files in it."""
    import time

    for wait in (0.0, 0.05, 0.2, 0.5, 1.0):
        time.sleep(wait)
        shutil.rmtree(folder, ignore_errors=True)
        if not folder.exists():
            return


@contextlib.contextmanager
def _tempdir(folder: Path):
    folder.mkdir(parents=True, exist_ok=True)
    before = tempfile.tempdir
    tempfile.tempdir = str(folder)
    try:
        yield
    finally:
        tempfile.tempdir = before


@contextlib.contextmanager
def _sigint_deferred():
    """Holds a Ctrl-C (SIGINT) that arrives inside the block and raises it at the end."""
    import signal
    import threading

    if threading.current_thread() is not threading.main_thread():
        yield
        return
    interrupted = []
    previous = signal.signal(signal.SIGINT, lambda *_: interrupted.append(True))
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
    if interrupted:
        raise KeyboardInterrupt


class Interrupted(ScaffoldError):
    exit_code = 130


def _changes(clone: Path) -> list[tuple[str, str]]:
    """(status A/M/D/T, path) of what the update staged in the clone, against HEAD."""
    lines = git(
        "diff", "--cached", "--name-status", "--no-renames", "--relative", "-z", "HEAD", cwd=clone
    )
    fields = [f for f in lines.split("\0") if f]
    return list(zip(fields[::2], fields[1::2]))


def _apply(clone: Path, project: Path, changes: list[tuple[str, str]]) -> None:
    """Carries the clone's changes (against HEAD) into the project, all or nothing. A file the
    update would create where the project holds an untracked or git-ignored file of the user's
    (``local.env``) stops the update before anything is written, as ``git merge`` does."""
    tracked = set(filter(None, git("ls-files", "-z", cwd=project).split("\0")))
    collide = [
        path
        for status, path in changes
        if status != "D"
        and path not in tracked
        and ((project / path).exists() or (project / path).is_symlink())
    ]
    if collide:
        shown = "\n    ".join(collide[:10])
        raise ScaffoldError(
            f"the template's new version adds files that already exist in {project} but are not "
            f"tracked by git (untracked or ignored, e.g. local secrets); they were not "
            f"overwritten and nothing was updated:\n    {shown}",
            "move them away (or commit them), then rerun `scaffold update`; put your values "
            "back after it.",
        )
    written: list[tuple[str, str]] = []
    try:
        for status, path in changes:
            dest = project / path
            written.append((status, path))  # before the change: an interruption is undone too
            if status == "D":
                dest.unlink(missing_ok=True)
            else:
                dest.parent.mkdir(parents=True, exist_ok=True)
                tmp = dest.with_name(f".{dest.name}.scaffold-update.tmp")
                shutil.copy2(clone / path, tmp, follow_symlinks=False)
                os.replace(tmp, dest)
    except BaseException as err:
        try:
            with _sigint_deferred():  # a second Ctrl-C does not stop the restore
                _restore(project, written)
                for _, path in changes:
                    tmp = (project / path).with_name(f".{Path(path).name}.scaffold-update.tmp")
                    tmp.unlink(missing_ok=True)
        except KeyboardInterrupt:
            pass  # the restore finished; the message below says what happened
        what = "interrupted" if isinstance(err, KeyboardInterrupt) else f"failed ({err})"
        raise Interrupted(
            f"the update {what} while writing files into {project}; every file was put back "
            "as it was (the project is at its last commit).",
            "rerun `scaffold update` when ready.",
        ) from None


def _restore(project: Path, written: list[tuple[str, str]]) -> None:
    back = [path for status, path in written if status != "A"]
    if back:
        git("checkout", "HEAD", "--", *back, cwd=project, check=False)
    for status, path in written:
        if status == "A":
            (project / path).unlink(missing_ok=True)


def _run_update(
    project: Path, src: str, target: str | None, opts: UpdateOptions, recorded: str | None = None
) -> None:
    """copier's update of ``project`` (the clone): 3-way merge, conflicts inline."""
    import copier

    from scaffold.copier_errors import translate

    kwargs = {"vcs_ref": target} if target else {}
    with translate(src, target, recorded):
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
