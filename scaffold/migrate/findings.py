"""What migrate reports: one ``Finding`` per site, ``path:line:col: CODE [status] message``.

The codes and what each covers live in ``scaffold.migrate.rules`` (``scaffold migrate --explain
CODE``); the status says what happened at that site: fixed, manual (left as written), refused
(out of scope) or info.
"""

from __future__ import annotations

from dataclasses import dataclass

FIXED, MANUAL, REFUSED, INFO = "fixed", "manual", "refused", "info"


@dataclass(frozen=True)
class Finding:
    code: str
    status: str
    message: str
    line: int = 1
    col: int = 1

    def format(self, path: str) -> str:
        return f"{path}:{self.line}:{self.col}: {self.code} [{self.status}] {self.message}"

    def as_dict(self, path: str) -> dict:
        return {
            "path": path,
            "line": self.line,
            "col": self.col,
            "code": self.code,
            "status": self.status,
            "message": self.message,
        }


class CannotConvert(Exception):
    """The training loop cannot be converted safely; nothing is written (exit code 3)."""

    def __init__(self, finding: Finding) -> None:
        super().__init__(finding.message)
        self.finding = finding
