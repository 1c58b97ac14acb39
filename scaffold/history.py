"""Release step: pack the bundled template of every torch-scaffold release into a git bundle.

``python -m scaffold.history [OUT]`` (run in a torch-scaffold checkout, after tagging the
release) reads ``templates/`` at each ``vX.Y.Z`` tag and writes one commit per release, tagged
with the release's version, with a fixed identity and date, so rebuilding gives the same hashes.
The wheel ships the result as ``scaffold/_data/template-history.bundle``; ``catalog`` serves it
to copier, which needs the version a project was made from as the base of its 3-way merge.
"""

from __future__ import annotations

import io
import shutil
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

from scaffold.catalog import _COMMIT_ENV, HISTORY_BUNDLE
from scaffold.gitutil import git


def release_tags(source_repo: Path) -> list[str]:
    from packaging.version import InvalidVersion, Version

    versions = []
    for tag in git("tag", "--list", "v*", cwd=source_repo).split():
        try:
            versions.append((Version(tag[1:]), tag))
        except InvalidVersion:
            continue
    return [tag for _, tag in sorted(versions)]


def _extract(source_repo: Path, tag: str, subdir: str, into: Path) -> bool:
    proc = subprocess.run(
        ["git", "archive", "--format=tar", f"{tag}:{subdir}"],
        cwd=source_repo,
        capture_output=True,
    )
    if proc.returncode != 0:
        return False  # the release predates the templates
    with tarfile.open(fileobj=io.BytesIO(proc.stdout)) as archive:
        safe = {"filter": "data"} if hasattr(tarfile, "data_filter") else {}
        archive.extractall(into, **safe)
    return True


def build_history_bundle(source_repo: Path, out: Path, subdir: str = "templates") -> list[str]:
    """Writes ``out``; returns the tags it holds (oldest first)."""
    work = Path(tempfile.mkdtemp(prefix="scaffold-history-"))
    packed: list[str] = []
    try:
        git("init", "-q", "-b", "main", cwd=work)
        for tag in release_tags(source_repo):
            for child in work.iterdir():
                if child.name != ".git":
                    shutil.rmtree(child) if child.is_dir() else child.unlink()
            if not _extract(source_repo, tag, subdir, work):
                continue
            git("add", "-A", cwd=work)
            git(
                "commit", "-q", "--allow-empty", "-m", f"templates {tag}", cwd=work, env=_COMMIT_ENV
            )
            git("tag", tag, cwd=work, env=_COMMIT_ENV)
            packed.append(tag)
        if packed:
            out.parent.mkdir(parents=True, exist_ok=True)
            tmp = out.with_name(out.name + ".tmp")
            git("bundle", "create", "-q", str(tmp), "--tags", cwd=work)
            tmp.replace(out)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return packed


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    out = Path(args[0]) if args else HISTORY_BUNDLE
    tags = build_history_bundle(Path.cwd(), out)
    print(f"wrote {out} with {', '.join(tags) or 'no releases'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
