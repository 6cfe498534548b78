"""Export writers: JSON lines and CSV over query.export_rows."""
from __future__ import annotations

import csv
import json

from pipeline.query import EXPORT_KEYS

# Spreadsheets run cells that start with these as formulas.
FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")


def csv_cell(value) -> str:
    if value is None:
        return ""
    if isinstance(value, list):
        value = json.dumps(value, ensure_ascii=False)
    text = str(value)
    if text.startswith(FORMULA_PREFIXES):
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
