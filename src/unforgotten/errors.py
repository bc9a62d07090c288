"""Exceptions with a meaning the CLI maps to exit codes (2 = bad input, 1 = failure)."""

from __future__ import annotations


class UnforgottenError(Exception):
    """Base class for errors this library raises on purpose."""


class UserInputError(UnforgottenError):
    """Bad input from the user: a config, a file, a name, a value. CLI exit code 2."""


class DataError(UserInputError):
    """A data file or record is malformed. The message names the file, line/row and field."""

    def __init__(self, message: str, problems: list[str] | None = None):
        super().__init__(message)
        self.problems = problems or [message]


class ConfigError(UserInputError):
    """A config key or value is wrong."""


class TrainingDiverged(UnforgottenError):
    """The loss or the gradient stopped being finite. Training stops at that step, before the
    optimizer applies it: the last checkpoint stays good and no weights are saved. CLI exit 1."""


class OutputInUse(UserInputError):
    """Another process holds the output directory's lock."""
