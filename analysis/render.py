"""A report table and its three renderings: Markdown, HTML and CSV (a figure across seeds: mean, sd, n; a paired
difference: mean, sd, n and its 95% interval).

The HTML rendering is made to fit a page: columns with nothing in any row are left out, a table with column
groups (the efficiency table's ratios to scratch) is shown as one table per group, each repeating the key
columns that name its rows, and each table sits in a container that scrolls sideways rather than overflowing.
The CSV keeps every column, empty or not, so its shape does not depend on what has run."""
from __future__ import annotations

import csv
import html
import io
from dataclasses import dataclass, field
from typing import Any

from tabulate import tabulate

from analysis.stats import Paired, Stat

MISSING = "-"


@dataclass(frozen=True)
class Column:
    name: str
    fmt: str = ""  # format spec of the number, e.g. ".2f"
    stat: bool = False  # holds Stat values: CSV gives `name`, `name sd`, `name n`
    key: bool = False  # names the row (method, original, seeds): repeated in each group's HTML table
    group: str = ""  # a column group shown as a table of its own in HTML, e.g. "ratios to from-scratch"
    paired: bool = False  # holds Paired values: CSV gives `name`, `name sd`, `name n`, `name ci low`, `name ci high`


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
    if isinstance(value, Paired):
        text = _number(value.mean, column.fmt)
        if value.low is None:
            return f"{text} (1 pair)"
        return f"{text} [{_number(value.low, column.fmt)}, {_number(value.high, column.fmt)}] n={value.n}"
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


def split_groups(table: Table) -> list[Table]:
    """The table as one table per column group (its key columns in each); a table without groups as it is."""
    groups = list(dict.fromkeys(c.group for c in table.columns if not c.key))
    if len(groups) < 2:
        return [table]
    parts = []
    for group in groups:
        keep = [i for i, c in enumerate(table.columns) if c.key or c.group == group]
        parts.append(Table(f"{table.title}: {group}" if group else table.title, f"{table.slug}_{group or 'main'}",
                           [table.columns[i] for i in keep], [[row[i] for i in keep] for row in table.rows],
                           table.notes if group == groups[-1] else []))
    return parts


def drop_empty_columns(table: Table) -> Table:
    """The table without the columns that are missing in every row (a table with no rows keeps its header)."""
    if not table.rows:
        return table
    texts = text_rows(table)
    keep = [i for i in range(len(table.columns)) if any(row[i] != MISSING for row in texts)]
    return Table(table.title, table.slug, [table.columns[i] for i in keep], [[row[i] for i in keep] for row in
                                                                              table.rows], table.notes)


def to_html(table: Table) -> str:
    """Each column group as its own table, without all-empty columns, in a container that scrolls sideways; a
    group left with its key columns only (nothing computed yet) is not shown, its notes go to the one before."""
    shown: list[Table] = []
    for part in map(drop_empty_columns, split_groups(table)):
        if shown and table.rows and all(c.key for c in part.columns):
            shown[-1].notes = [*shown[-1].notes, *part.notes]
        else:
            shown.append(part)
    return "".join(_html_table(part) for part in shown)


def _html_table(table: Table) -> str:
    head = "".join(f"<th>{html.escape(c.name)}</th>" for c in table.columns)
    rows = "".join("<tr>" + "".join(f"<td>{html.escape(t)}</td>" for t in row) + "</tr>\n" for row in text_rows(table))
    notes = "".join(f"<li>{html.escape(n)}</li>" for n in table.notes)
    return (f"<h3>{html.escape(table.title)}</h3>\n<div class=\"scroll\"><table>\n<thead><tr>{head}</tr></thead>\n"
            f"<tbody>\n{rows}</tbody>\n</table></div>\n" + (f"<ul class=\"notes\">{notes}</ul>\n" if notes else ""))


def to_csv(table: Table) -> str:
    """Numbers as numbers (not rounded); a Stat column as mean, sd and n; missing as empty."""
    header = []
    for c in table.columns:
        header += [c.name, f"{c.name} sd", f"{c.name} n"] if c.stat else [c.name]
        header += [f"{c.name} sd", f"{c.name} n", f"{c.name} ci low", f"{c.name} ci high"] if c.paired else []
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(header)
    for row in table.rows:
        line = []
        for value, c in zip(row, table.columns, strict=True):
            if c.stat:
                line += [value.mean, "" if value.sd is None else value.sd, value.n] if isinstance(value, Stat) \
                    else ["" if value is None else value, "", 0 if value is None else ""]
            elif c.paired:
                line += [value.mean, *("" if v is None else v for v in (value.sd, value.n, value.low, value.high))] \
                    if isinstance(value, Paired) else ["" if value is None else value, "", 0, "", ""]
            elif isinstance(value, Stat):
                line.append(value.mean)
            else:
                line.append("" if value is None else value)
        writer.writerow(line)
    return out.getvalue()
