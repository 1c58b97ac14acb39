"""Turns copier's exceptions into ScaffoldErrors that name the problem and the fix."""

from __future__ import annotations

import contextlib
import re
import subprocess
from collections.abc import Iterator

from scaffold.errors import ScaffoldError


@contextlib.contextmanager
def translate(src: str, vcs_ref: str | None = None, recorded: str | None = None) -> Iterator[None]:
    """``recorded``: the template version the project's answers file names (``scaffold update``):
    a revision that cannot be found is reported as that file's problem when it is that one."""
    from copier import errors as ce

    try:
        yield
    except ce.UnsafeTemplateError as err:
        raise ScaffoldError(
            f"template {src!r} runs code on your machine ({_after_colon(err)}); it was not run "
            "and nothing was written.",
            "read the template's copier.yml; if you trust it, rerun with --trust.",
        ) from None
    except ce.InteractiveSessionError:
        raise ScaffoldError(
            "the template asked a question, but this is not an interactive terminal.",
            "pass --defaults, and -d KEY=VALUE for questions without a default.",
        ) from None
    except ce.CopierError as err:
        raise ScaffoldError(f"template {src!r}: {err}") from None
    except ValueError as err:
        raise _recorded(src, recorded, str(err)) or _value_error(src, vcs_ref, str(err)) from None
    except (subprocess.CalledProcessError, OSError) as err:
        raise _recorded(src, recorded, _detail(err)) or _git_error(src, vcs_ref, err) from None
    except Exception as err:  # plumbum's ProcessExecutionError (git clone/checkout failures)
        if type(err).__name__ == "ProcessExecutionError":
            raise _recorded(src, recorded, _detail(err)) or _git_error(src, vcs_ref, err) from None
        raise


def _detail(err: BaseException) -> str:
    return " ".join(str(getattr(err, "stderr", "") or err).split())[-400:]


def _recorded(src: str, recorded: str | None, text: str) -> ScaffoldError | None:
    lowered = text.lower()
    missing = "unknown revision" in lowered or "did not match" in lowered
    if recorded is None or not missing or recorded not in text:
        return None
    return ScaffoldError(
        f"the project's .copier-answers.yml records template version {recorded!r}, which "
        f"{src!r} does not have (the file was edited, or that tag was deleted from the "
        "template), so there is no base for a 3-way merge.",
        "restore .copier-answers.yml from git history (`git log -p .copier-answers.yml`), or "
        "ask the template's owners to restore the tag.",
    )


def _after_colon(err: Exception) -> str:
    text = str(err)
    return text.split(":", 1)[1].strip() if ":" in text else text


def _value_error(src: str, vcs_ref: str | None, text: str) -> ScaffoldError:
    found = re.match(r"Validation error for question '([^']+)': (.*)", text, re.S)
    if found:
        question, message = found.group(1), " ".join(found.group(2).split())
        return ScaffoldError(
            f"invalid answer for {question!r}: {message}; nothing was written.",
            f"pass a valid value with -d {question}=VALUE.",
        )
    found = re.match(r"Invalid choice for '([^']+)': (.*)", text, re.S)
    if found:
        return ScaffoldError(
            f"invalid answer for {found.group(1)!r}: {' '.join(found.group(2).split())}; "
            "nothing was written.",
            f"pass one of the allowed values with -d {found.group(1)}=VALUE.",
        )
    found = re.match(r'Question "([^"]+)" is required', text)
    if found:
        return ScaffoldError(
            f"question {found.group(1)!r} has no default and no answer was given.",
            f"pass -d {found.group(1)}=VALUE (or run in a terminal without --defaults).",
        )
    if "Unknown revision" in text or "did not match any" in text:
        return ScaffoldError(
            f"template {src!r} has no version {vcs_ref or 'HEAD'!r}.",
            "list the template's tags with `git ls-remote --tags <url>` and pass one with "
            "--vcs-ref.",
        )
    return ScaffoldError(f"template {src!r}: {text}")


def _git_error(src: str, vcs_ref: str | None, err: BaseException) -> ScaffoldError:
    detail = " ".join(str(getattr(err, "stderr", "") or err).split())[-400:]
    errno = getattr(err, "errno", None)
    if errno == 28 or "No space left on device" in detail:
        return ScaffoldError(
            f"no space left on the device while fetching or rendering template {src!r}; "
            "nothing was written.",
            "free some disk space (the template is copied to a temporary folder), then rerun.",
        )
    if isinstance(err, OSError) and errno in (13, 30):
        return ScaffoldError(
            f"cannot write {err.filename or 'the project'}: {err.strerror}; nothing was written.",
            "choose a destination you can write to.",
        )
    if vcs_ref and ("did not match" in detail or "unknown revision" in detail.lower()):
        return ScaffoldError(
            f"template {src!r} has no version {vcs_ref!r}.",
            "pass an existing tag or branch with --vcs-ref.",
        )
    return ScaffoldError(
        f"could not fetch template {src!r}: {detail or type(err).__name__}.",
        "check the URL and your network or credentials (`git ls-remote <url>` must work).",
    )
