"""Errors of bad report input, kept apart so the CLI can name them without importing the plotting stack."""
from __future__ import annotations


class ReportError(ValueError):
    """Bad report input (a format, a carbon intensity); one line naming the fix."""


class StoreUnreadable(RuntimeError):
    """The MLflow store named for the report cannot be read (one line: which store, why, what to do)."""
