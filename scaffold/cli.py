"""The ``scaffold`` command: parses arguments, calls the public API, prints the result."""

from __future__ import annotations

import click

from scaffold import __version__


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="scaffold")
def main() -> None:
    """Start and modernise PyTorch training code."""


if __name__ == "__main__":
    main()
