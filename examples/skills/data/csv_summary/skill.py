"""csv_summary: column statistics for CSV text, with the standard csv module."""

import csv
import io
import math

from skillware.core.base_skill import BaseSkill


def _number(cell):
    try:
        n = float(cell)
    except ValueError:
        return None
    return n if math.isfinite(n) else None  # "nan" and "inf" are text here


def _column(name, cells):
    values = [c.strip() for c in cells]
    filled = [v for v in values if v]
    out = {
        "name": name,
        "empty": len(values) - len(filled),
        "distinct": len(set(filled)),
    }
    numbers = [_number(v) for v in filled]
    if not filled:
        out["type"] = "empty"
    elif all(n is not None for n in numbers):
        out["type"] = "number"
        out["min"] = min(numbers)
        out["max"] = max(numbers)
        out["mean"] = round(sum(numbers) / len(numbers), 4)
    else:
        out["type"] = "text"
    return out


class CsvSummarySkill(BaseSkill):
    @property
    def manifest(self):
        return {
            "name": "csv_summary",
            "version": "1.0.0",
            "description": "Column-by-column summary of CSV text.",
        }

    def execute(self, params):
        delimiter = params.get("delimiter", ",")
        rows = list(csv.reader(io.StringIO(params.get("csv", "")), delimiter=delimiter))
        rows = [r for r in rows if r]
        if not rows:
            return {"rows": 0, "columns": []}
        header, body = rows[0], rows[1:]
        columns = []
        for i, name in enumerate(header):
            cells = [r[i] if i < len(r) else "" for r in body]
            columns.append(_column(name, cells))
        return {"rows": len(body), "columns": columns}
