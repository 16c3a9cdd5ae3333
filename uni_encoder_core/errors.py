"""The project's family of user-facing errors: bad input that a person can fix, reported in one line.

Every loader and command raises a subclass of :class:`UserError` for input it cannot use (a corrupt checkpoint,
an invalid configuration, an output directory that is in use); the message names the file, the problem and the
fix. The ``uni-encoder`` command line prints such errors as one line without a traceback.
"""

from __future__ import annotations


class UserError(Exception):
    """Input a person can fix: the message names the file, what is wrong with it and what to do."""


class OutputExistsError(UserError, FileExistsError):
    """An output path already holds something that a write would replace or mix with."""


class UsageError(UserError, ValueError):
    """A command-line argument is out of range or names something that does not exist."""


class ConfigError(UserError, ValueError):
    """A configuration file or value does not match its schema; the message names the file, the key and the fix."""
