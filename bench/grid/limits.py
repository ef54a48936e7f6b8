"""The grid size limit in a module of its own: the CLI's parser shows it in `--max-cells`'s help, and importing
`bench.grid.guard` for it would pull in YAML and pydantic (a third of `--help`'s start-up)."""

MAX_CELLS = 10_000  # `--max-cells N` raises it
