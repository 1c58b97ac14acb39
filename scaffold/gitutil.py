"""The few git operations scaffold needs, run through the git CLI (copier needs it too)."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
from pathlib import Path

from scaffold.errors import ScaffoldError

# Used only where the user has no git identity configured (fresh machines, CI containers).
FALLBACK_IDENTITY = {"user.name": "torch-scaffold", "user.email": "torch-scaffold@localhost"}


def require_git() -> str:
    exe = shutil.which("git")
    if exe is None:
        raise ScaffoldError(
            "git was not found on PATH; scaffold needs it to version templates and projects.",
            "install git (e.g. `apt install git` or https://git-scm.com), then retry.",
        )
    return exe


def git(*args: str, cwd: str | os.PathLike, check: bool = True, env: dict | None = None) -> str:
    """Runs git; an interruption (Ctrl-C) meanwhile ends git and every process it started
    before it propagates, so that nothing writes into a folder the caller is about to remove."""
    posix = hasattr(os, "killpg")
    with subprocess.Popen(
        ["git", *args],
        cwd=cwd,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, **(env or {}), "GIT_TERMINAL_PROMPT": "0"},
        start_new_session=posix,  # its own process group, ended as a whole below
    ) as proc:
        try:
            out, err = proc.communicate()
        except BaseException:
            if posix:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
            else:
                proc.kill()
            proc.wait()
            raise
    if check and proc.returncode != 0:
        raise ScaffoldError(f"`git {' '.join(args)}` failed in {cwd}: {err.strip()}")
    return out


def work_tree_root(path: str | os.PathLike) -> Path | None:
    """The root of the git work tree containing ``path``, or None."""
    proc = subprocess.run(
        ["git", "rev-parse", "--show-toplevel"], cwd=path, capture_output=True, text=True
    )
    return Path(proc.stdout.strip()) if proc.returncode == 0 else None


def identity_args(cwd: str | os.PathLike) -> list[str]:
    """``-c user.name=... -c user.email=...`` where no identity is configured, else nothing."""
    args: list[str] = []
    for key, value in FALLBACK_IDENTITY.items():
        if not git("config", "--get", key, cwd=cwd, check=False).strip():
            args += ["-c", f"{key}={value}"]
    return args


def init_and_commit(path: Path, message: str, files: list[str] | None = None) -> None:
    """``git init`` + a first commit of ``files`` (paths relative to ``path``; all by default:
    with ``--force`` into a folder holding the user's files, only the rendered ones)."""
    git("init", "-q", "-b", "main", cwd=path)
    if files is None:
        git("add", "-A", cwd=path)
    else:
        # rendered files the template's own .gitignore ignores are skipped by git, as with -A
        git("add", "-A", "--ignore-errors", "--", *files, cwd=path, check=False)
    git(*identity_args(path), "commit", "-q", "--no-verify", "-m", message, cwd=path)


def status_lines(path: Path) -> list[str]:
    """``git status --porcelain`` lines (ignored files excluded), as copier checks them."""
    return [line for line in git("status", "--porcelain", cwd=path).splitlines() if line]


def unmerged_files(path: Path) -> list[str]:
    out = git("diff", "--name-only", "--diff-filter=U", cwd=path)
    return sorted({line for line in out.splitlines() if line})
