"""What `reprogbench report` prints: a few columns of each task's efficiency table (method, original, seeds, test
accuracy, the gain over scratch and the compute beside scratch's), the cell counts, and where the report is. The
full tables are in the report's files; a terminal is for knowing whether to open them."""
from __future__ import annotations

from tabulate import tabulate

from analysis.render import Table, text_rows

COMPACT = ("method", "original", "seeds", "test acc %", "Δ vs scratch (points)", "compute ÷ scratch")


def compact(table: Table) -> str:
    """The table's COMPACT columns (those it has), as plain text under its title."""
    names = [c.name for c in table.columns]
    keep = [names.index(n) for n in COMPACT if n in names]
    rows = [[row[i] for i in keep] for row in text_rows(table)]
    body = tabulate(rows, headers=[names[i] for i in keep], disable_numparse=True) if rows else "(no rows)"
    return f"{table.title}\n{body}"


def terminal_summary(tables: list[Table], counts: str, report_path: str) -> str:
    efficiency = [t for t in tables if t.slug.startswith("efficiency_")]
    return "\n\n".join([*(compact(t) for t in efficiency), counts, f"report: {report_path}"])
