"""The scaffold error hierarchy. Every message says what was received, what is allowed and
what to do; the CLI prints it and exits with ``exit_code``."""

from __future__ import annotations


class ScaffoldError(Exception):
    """A problem the user can fix. ``hint`` says how."""

    exit_code = 1

    def __init__(self, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return self.message if not self.hint else f"{self.message}\n  hint: {self.hint}"


class UsageError(ScaffoldError):
    """Bad command-line usage (exit code 2, as click uses)."""

    exit_code = 2


class ConflictError(ScaffoldError):
    """`scaffold update` merged, but some files hold conflict markers (exit code 3)."""

    exit_code = 3

    def __init__(self, message: str, files: list[str], hint: str | None = None) -> None:
        super().__init__(message, hint)
        self.files = files
