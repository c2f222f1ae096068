"""CSV that is safe to open in a spreadsheet: a text cell starting with =, +, -, @, a tab or
a carriage return would run as a formula there (CSV injection), so it gets a leading
quote and stays text. Used by every CSV VUR writes."""

from __future__ import annotations

import re

# Matched at the start of a cell. Also given to Polars (`str.contains`) by vectorised writers.
FORMULA_START = r"^[=+\-@\t\r]"
_FORMULA = re.compile(FORMULA_START)


def neutralise(text: str) -> str:
    return "'" + text if _FORMULA.match(text) else text
