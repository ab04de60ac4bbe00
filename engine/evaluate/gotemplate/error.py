"""The one error a Go template raises, parsing or executing, with where in the template."""

from __future__ import annotations


class TemplateError(Exception):
    """Go's message (`template: commit message:1:15: executing ...`), and the 1-based line and
    column in the template text it points at (column 0 when Go names only a line)."""

    def __init__(self, message: str, line: int, column: int = 0) -> None:
        super().__init__(message)
        self.message = message
        self.line = line
        self.column = column


def line_column(text: str, pos: int) -> tuple[int, int]:
    """1-based line and column of an offset."""
    line = text.count("\n", 0, pos) + 1
    return line, pos - (text.rfind("\n", 0, pos) + 1) + 1
