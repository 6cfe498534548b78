"""Export writers: JSON lines and CSV over query.export_rows."""
from __future__ import annotations

import csv
import json
import unicodedata

from pipeline.query import EXPORT_KEYS

# Spreadsheets run a cell as a formula when it starts with one of these, also
# after leading blanks they skip, and in the full-width and small forms an IME
# types (＝ ＋ － ＠ ﹦ …, which NFKC folds to ASCII), or with the minus sign.
FORMULA_STARTS = frozenset("=+-@\u2212")
# A cell that starts with a control character can break into the next cell or row.
CONTROL_STARTS = ("\t", "\r", "\n")


def _invisible(ch: str) -> bool:
    # Blanks, and format characters (zero-width space, BOM, bidi marks, soft hyphen) that show nothing.
    return ch.isspace() or unicodedata.category(ch) == "Cf"


def formula_like(text: str) -> bool:
    if text.startswith(CONTROL_STARTS):
        return True
    first = next((ch for ch in text if not _invisible(ch)), "")
    return bool(first) and (first in FORMULA_STARTS or unicodedata.normalize("NFKC", first) in FORMULA_STARTS)


def csv_cell(value) -> str:
    if value is None:
        return ""
    if isinstance(value, list):
        value = json.dumps(value, ensure_ascii=False)
    text = str(value)
    if formula_like(text):
        return "'" + text
    return text


def write_jsonl(rows, out) -> int:
    count = 0
    for row in rows:
        out.write(json.dumps(row, ensure_ascii=False) + "\n")
        count += 1
    return count


def write_csv(rows, out) -> int:
    writer = csv.writer(out)
    writer.writerow(EXPORT_KEYS)
    count = 0
    for row in rows:
        writer.writerow([csv_cell(row[k]) for k in EXPORT_KEYS])
        count += 1
    return count
