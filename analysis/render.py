"""A report table and its three renderings: Markdown, HTML and CSV (a figure across seeds: mean, sd, n)."""
from __future__ import annotations

import csv
import html
import io
from dataclasses import dataclass, field
from typing import Any

from tabulate import tabulate

from analysis.stats import Stat

MISSING = "-"


@dataclass(frozen=True)
class Column:
    name: str
    fmt: str = ""  # format spec of the number, e.g. ".2f"
    stat: bool = False  # holds Stat values: CSV gives `name`, `name sd`, `name n`


@dataclass
class Table:
    title: str
    slug: str  # file name stem of its CSV
    columns: list[Column]
    rows: list[list[Any]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)  # definitions and caveats printed under the table


def _number(value: float, fmt: str) -> str:
    return format(value, fmt) if fmt else str(value)


def cell_text(value: Any, column: Column) -> str:
    if value is None:
        return MISSING
    if isinstance(value, Stat):
        text = _number(value.mean, column.fmt)
        return text + (f" ± {_number(value.sd, column.fmt)}" if value.sd is not None else "")
    if isinstance(value, float):
        return _number(value, column.fmt)
    if isinstance(value, int) and not isinstance(value, bool) and column.fmt:
        return _number(value, column.fmt)
    return str(value)


def text_rows(table: Table) -> list[list[str]]:
    return [[cell_text(v, c) for v, c in zip(row, table.columns, strict=True)] for row in table.rows]


def to_markdown(table: Table) -> str:
    body = tabulate(text_rows(table), headers=[c.name for c in table.columns], tablefmt="github",
                    disable_numparse=True) if table.rows else "(no rows)"
    notes = "".join(f"\n- {n}" for n in table.notes)
    return f"### {table.title}\n\n{body}\n" + (f"{notes}\n" if notes else "")


def to_html(table: Table) -> str:
    head = "".join(f"<th>{html.escape(c.name)}</th>" for c in table.columns)
    rows = "".join("<tr>" + "".join(f"<td>{html.escape(t)}</td>" for t in row) + "</tr>\n" for row in text_rows(table))
    notes = "".join(f"<li>{html.escape(n)}</li>" for n in table.notes)
    return (f"<h3>{html.escape(table.title)}</h3>\n<table>\n<thead><tr>{head}</tr></thead>\n<tbody>\n{rows}</tbody>"
            f"\n</table>\n" + (f"<ul class=\"notes\">{notes}</ul>\n" if notes else ""))


def to_csv(table: Table) -> str:
    """Numbers as numbers (not rounded); a Stat column as mean, sd and n; missing as empty."""
    header = []
    for c in table.columns:
        header += [c.name, f"{c.name} sd", f"{c.name} n"] if c.stat else [c.name]
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(header)
    for row in table.rows:
        line = []
        for value, c in zip(row, table.columns, strict=True):
            if c.stat:
                line += [value.mean, "" if value.sd is None else value.sd, value.n] if isinstance(value, Stat) \
                    else ["" if value is None else value, "", 0 if value is None else ""]
            elif isinstance(value, Stat):
                line.append(value.mean)
            else:
                line.append("" if value is None else value)
        writer.writerow(line)
    return out.getvalue()
