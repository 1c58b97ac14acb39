"""Static sweep of `scaffold migrate` over whole repositories: every Python file that calls both
``.backward(`` and ``.step(`` is migrated (``-o`` into a scratch folder, nothing run), and each
outcome is classified: converted (exit 0, the output parses), refused (exit 3, with its rule
codes), error (exit 1: the file itself does not parse, e.g. Python 2), and the two that must never
happen: CRASH (a traceback) and INVALID (exit 0 with output that does not compile).

The repositories come from bare git mirrors (``<mirror>/<owner>+<name>/repo``, as the shared
corpus harness uses); only their ``.py`` files at HEAD are read. Nothing is downloaded here.

usage: python benchmarks/static_sweep.py OWNER/NAME [...] [--mirror DIR] [--work DIR] [--json OUT]
"""

from __future__ import annotations

import argparse
import json
import os
import py_compile
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def _git_dir(mirror: Path, repo: str) -> Path:
    base = mirror / repo.replace("/", "+") / "repo"
    return base if (base / "HEAD").exists() else base / ".git"


def extract(git_dir: Path, dest: Path) -> None:
    """The repository's ``.py`` files at HEAD (blobs a partial mirror lacks are skipped)."""
    names = subprocess.run(
        ["git", "--git-dir", str(git_dir), "ls-tree", "-r", "--name-only", "HEAD"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.splitlines()
    for name in names:
        if not name.endswith(".py"):
            continue
        blob = subprocess.run(
            ["git", "--git-dir", str(git_dir), "show", f"HEAD:{name}"], capture_output=True
        )
        if blob.returncode == 0:
            out = dest / name
            out.parent.mkdir(parents=True, exist_ok=True)
            out.write_bytes(blob.stdout)


def classify(rc: int | str, output: str, written: Path) -> str:
    if "Traceback (most recent call last)" in output:
        return "CRASH"
    if rc == 0 and written.exists():
        try:
            py_compile.compile(str(written), doraise=True)
        except py_compile.PyCompileError:
            return "INVALID"
        return "converted"
    return {0: "unchanged", 1: "error", 3: "refused"}.get(rc, f"exit-{rc}")


def sweep(repos: list[str], mirror: Path, work: Path) -> list[dict]:
    rows = []
    for repo in repos:
        src = work / "src" / repo.replace("/", "+")
        if not src.is_dir():
            extract(_git_dir(mirror, repo), src)
        for path in sorted(src.rglob("*.py")):
            text = path.read_text(encoding="utf-8", errors="replace")
            if ".backward(" not in text or ".step(" not in text:
                continue
            rel = path.relative_to(src)
            out = work / "out" / repo.replace("/", "+") / rel
            out.parent.mkdir(parents=True, exist_ok=True)
            started = time.perf_counter()
            try:
                proc = subprocess.run(
                    [sys.executable, "-m", "scaffold", "migrate", str(path), "-o", str(out)],
                    capture_output=True,
                    text=True,
                    timeout=120,
                )
                rc, output = proc.returncode, proc.stdout + proc.stderr
            except subprocess.TimeoutExpired:
                rc, output = "timeout", ""
            row = {
                "repo": repo,
                "path": str(rel),
                "status": classify(rc, output, out),
                "seconds": round(time.perf_counter() - started, 2),
                "codes": sorted(set(re.findall(r"SCF\d+", output))),
            }
            rows.append(row)
            print(row["status"], f"{row['seconds']:.1f}s", repo, rel, *row["codes"], flush=True)
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "repos",
        nargs="+",
        help="owner/name of each mirrored repository (see corpus/static_sweep_repos.txt)",
    )
    parser.add_argument(
        "--mirror",
        type=Path,
        default=Path(os.environ.get("REALWORLD_MIRROR", Path(__file__).parents[2] / ".mirror")),
    )
    parser.add_argument("--work", type=Path, help="scratch folder (default: a new temporary one)")
    parser.add_argument("--json", type=Path, help="write the rows here")
    args = parser.parse_args()
    work = args.work or Path(tempfile.mkdtemp(prefix="static-sweep-"))
    rows = sweep(args.repos, args.mirror, work)
    counts: dict[str, int] = {}
    for row in rows:
        counts[row["status"]] = counts.get(row["status"], 0) + 1
    summary = " ".join(f"{k} {v}" for k, v in sorted(counts.items()))
    print(f"static sweep: {len(rows)} files of {len(args.repos)} repositories: {summary}")
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1))
    return 1 if counts.get("CRASH") or counts.get("INVALID") else 0


if __name__ == "__main__":
    raise SystemExit(main())
