"""Errors that carry a message meant for the user (the CLI prints it without a traceback)."""

from __future__ import annotations


class GanreportError(Exception):
    """Base class: an error whose message says what went wrong and what to do."""


class ConfigError(GanreportError, ValueError):
    """Bad parameter, unknown registry name, unknown profile."""


class DataError(GanreportError, ValueError):
    """Missing/empty folder, unreadable image, empty split, wrong shapes."""


class CheckpointError(GanreportError):
    """Missing, corrupt or incompatible checkpoint."""


class TrainingDiverged(GanreportError, FloatingPointError):
    """A loss became NaN/inf; the last good checkpoint is kept."""


class ReportError(GanreportError):
    """A notebook failed while building the report, or the report could not be written."""
