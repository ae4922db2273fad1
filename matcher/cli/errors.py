"""The command line's own failure: reported as one line on stderr and a non-zero exit."""

from __future__ import annotations


class CliError(Exception):
    """A failure to report as one line and a non-zero exit."""

    def __init__(self, message: str, code: int = 1) -> None:
        super().__init__(message)
        self.code = code
