"""Where templates come from: the bundled one (a copier template with one `kind` per project
type) and team templates (a local path or a git URL).

Bundled templates must stay updatable across torch-scaffold releases, and copier updates only
from git sources that keep every earlier version. So the bundled template is served from a git
repository at a fixed, home-relative path, passed to copier *unexpanded*
(``~/.cache/torch-scaffold/templates``) so that the answers file records the same string on
every machine. The repository holds one tagged commit per release: the releases before this one
come from the packaged history bundle (``scaffold/_data/template-history.bundle``, written at
release time by ``python -m scaffold.history``), this release's commit from the shipped
``templates/`` folder. It is rebuilt only when those inputs change (a stamp records them).
"""

from __future__ import annotations

import functools
import hashlib
import os
import re
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

import scaffold
from scaffold.errors import ScaffoldError
from scaffold.gitutil import git, require_git

CACHE_SRC = "~/.cache/torch-scaffold/templates"
_PACKAGE = Path(scaffold.__file__).resolve().parent
# A source checkout or editable install uses the top-level templates/ folder; a wheel ships the
# same files as scaffold/_templates.
TEMPLATE_DIR = next(
    (
        p
        for p in (_PACKAGE.parent / "templates", _PACKAGE / "_templates")
        if (p / "copier.yml").is_file()
    ),
    _PACKAGE / "_templates",
)
HISTORY_BUNDLE = _PACKAGE / "_data" / "template-history.bundle"
# Fixed identity and date: the same inputs give the same commit hashes on every machine.
_COMMIT_ENV = {
    "GIT_AUTHOR_NAME": "torch-scaffold",
    "GIT_AUTHOR_EMAIL": "torch-scaffold@localhost",
    "GIT_COMMITTER_NAME": "torch-scaffold",
    "GIT_COMMITTER_EMAIL": "torch-scaffold@localhost",
    "GIT_AUTHOR_DATE": "2000-01-01T00:00:00+00:00",
    "GIT_COMMITTER_DATE": "2000-01-01T00:00:00+00:00",
}
_URL = re.compile(r"^(gh:|gl:|git\+|git@|https?://|ssh://|file://)|\.git$|\.bundle$")


@dataclass(frozen=True)
class Kind:
    name: str
    description: str


@dataclass(frozen=True)
class TemplateSource:
    """What copier is given: ``src`` (a path or URL) and the bundled ``kind`` if any."""

    src: str
    bundled: bool
    kind: str | None = None
    vcs_ref: str | None = None


ANSWERS_FILE = ".copier-answers.yml"


def read_answers(project: Path) -> dict | None:
    """The project's recorded answers (``_src_path``, ``_commit`` and the questions), or None."""
    import yaml

    path = project / ANSWERS_FILE
    if not path.is_file():
        return None
    try:
        with open(path, encoding="utf-8") as handle:
            answers = yaml.safe_load(handle) or {}
    except (yaml.YAMLError, UnicodeDecodeError) as err:
        raise ScaffoldError(
            f"{path} is not valid YAML ({str(err).splitlines()[0]}), so the project's template "
            "answers cannot be read.",
            f"restore it from git (`git checkout -- {ANSWERS_FILE}`); it is written by the tool "
            "and should not be edited by hand.",
        ) from None
    if not isinstance(answers, dict):
        raise ScaffoldError(
            f"{path} holds {type(answers).__name__}, not the mapping of answers it should.",
            f"restore it from git (`git checkout -- {ANSWERS_FILE}`).",
        )
    return answers


def _copier_yml(template_dir: Path | None = None) -> dict:
    path = (template_dir or TEMPLATE_DIR) / "copier.yml"
    if not path.is_file():
        raise ScaffoldError(
            f"the bundled template is missing ({path} not found); the installation is broken.",
            "reinstall torch-scaffold.",
        )
    return _parse_yaml(str(path), path.stat().st_mtime_ns)


@functools.lru_cache(maxsize=4)
def _parse_yaml(path: str, mtime_ns: int) -> dict:
    """Parsed once per file version (``scaffold new`` reads kinds and questions)."""
    import yaml

    with open(path) as handle:
        return yaml.safe_load(handle)


def bundled_kinds(template_dir: Path | None = None) -> list[Kind]:
    """The bundled project kinds, from the ``kind`` question's choices (label: value)."""
    choices = _copier_yml(template_dir)["kind"]["choices"]
    kinds = []
    for label, value in choices.items():
        description = label.split(":", 1)[1].strip() if ":" in label else label
        kinds.append(Kind(value, description))
    return kinds


def bundled_questions(template_dir: Path | None = None) -> dict[str, dict]:
    """Questions a user may answer with ``-d`` (computed values, ``when: false``, excluded)."""
    config = _copier_yml(template_dir)
    return {
        name: spec
        for name, spec in config.items()
        if not name.startswith("_") and isinstance(spec, dict) and spec.get("when") is not False
    }


def looks_like_url(spec: str) -> bool:
    return bool(_URL.search(spec))


def resolve(spec: str | None, vcs_ref: str | None = None) -> TemplateSource:
    """A ``--template`` value: a bundled kind, a local path or a git URL."""
    kinds = [k.name for k in bundled_kinds()]
    if spec is None or spec in kinds:
        return TemplateSource(CACHE_SRC, bundled=True, kind=spec, vcs_ref=vcs_ref)
    if spec.startswith("file://"):  # a local path written as a URL
        from urllib.parse import unquote, urlparse

        local = unquote(urlparse(spec).path)
        if not local or not Path(local).exists():
            raise ScaffoldError(
                f"template {spec!r}: the folder {local or '(none)'} does not exist.",
                "check the path; a file:// URL names a template folder or git repository on "
                "this machine.",
            )
        spec = local
    elif looks_like_url(spec):
        return TemplateSource(spec, bundled=False, vcs_ref=vcs_ref)
    path = Path(spec).expanduser()
    if path.exists():
        if not (path / "copier.yml").is_file() and not (path / "copier.yaml").is_file():
            raise ScaffoldError(
                f"template {spec!r} is a path but holds no copier.yml, so it is not a copier "
                "template.",
                "point --template at the folder that contains copier.yml.",
            )
        return TemplateSource(str(path.resolve()), bundled=False, vcs_ref=vcs_ref)
    raise ScaffoldError(
        f"unknown template {spec!r}: not a bundled template, an existing path or a git URL.",
        f"use one of {', '.join(kinds)} (see `scaffold templates`), a folder with a copier.yml, "
        "or a git URL such as gh:org/repo or https://host/org/repo.git.",
    )


# ---------------------------------------------------------------------------------------------
# The bundled template's git repository
# ---------------------------------------------------------------------------------------------
def _tree_digest(template_dir: Path) -> str:
    digest = hashlib.sha256()
    for path in sorted(p for p in template_dir.rglob("*") if p.is_file()):
        rel = path.relative_to(template_dir).as_posix()
        if "__pycache__" in rel:
            continue
        digest.update(rel.encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()


def _stamp(version: str, template_dir: Path, history: Path) -> str:
    history_digest = hashlib.sha256(history.read_bytes()).hexdigest() if history.is_file() else "-"
    return f"{version} {_tree_digest(template_dir)} {history_digest}"


def _tags(repo: Path) -> list[str]:
    return [t for t in git("tag", "--list", "v*", cwd=repo).split() if t]


def ensure_bundled_repo(
    version: str | None = None,
    template_dir: Path | None = None,
    history: Path | None = None,
) -> Path:
    """Build (or reuse) the git repository served at ``CACHE_SRC``; returns its real path."""
    version = version or scaffold.__version__
    template_dir = template_dir or TEMPLATE_DIR
    history = history or HISTORY_BUNDLE
    target = Path(CACHE_SRC).expanduser()
    stamp = _stamp(version, template_dir, history)
    stamp_file = target / ".git" / "torch-scaffold-stamp"
    if stamp_file.is_file() and stamp_file.read_text() == stamp:
        return target
    require_git()
    target.parent.mkdir(parents=True, exist_ok=True)
    build = Path(tempfile.mkdtemp(prefix=".templates-", dir=target.parent))
    try:
        _build_repo(build, version, template_dir, history)
        (build / ".git" / "torch-scaffold-stamp").write_text(stamp)
        _swap_in(build, target)
    finally:
        shutil.rmtree(build, ignore_errors=True)
    return target


def _build_repo(build: Path, version: str, template_dir: Path, history: Path) -> None:
    git("init", "-q", "-b", "main", cwd=build)
    tag = f"v{version}"
    if history.is_file():
        git("fetch", "-q", str(history), "refs/tags/*:refs/tags/*", cwd=build)
    if tag in _tags(build):
        # A released version: its template is already in the history, exactly as shipped then.
        git("checkout", "-q", "-B", "main", tag, cwd=build, env=_COMMIT_ENV)
        return
    shutil.copytree(
        template_dir,
        build,
        dirs_exist_ok=True,
        ignore=shutil.ignore_patterns("__pycache__", "*.pyc"),
    )
    git("add", "-A", cwd=build)
    git("commit", "-q", "--allow-empty", "-m", f"templates {tag}", cwd=build, env=_COMMIT_ENV)
    git("tag", tag, cwd=build, env=_COMMIT_ENV)


def _swap_in(build: Path, target: Path) -> None:
    """Replace ``target`` with ``build``; a concurrent reader sees the old or the new repo."""
    old = None
    if target.exists():
        old = target.with_name(f"{target.name}.old-{os.getpid()}")
        os.replace(target, old)
    try:
        os.replace(build, target)
    except OSError:
        if old is not None and not target.exists():
            os.replace(old, target)
        raise
    finally:
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)


def release_tags(repo: Path | None = None) -> list[str]:
    """The template versions the bundled repository holds (``v0.1.0``, ...)."""
    return _tags(repo or Path(CACHE_SRC).expanduser())
