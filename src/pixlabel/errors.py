"""Errors users can act on. The CLI prints their message (no traceback) and exits with ``exit_code``."""


class PixlabelError(Exception):
    """Bad input or an impossible request; the message names the file/row and what was expected."""

    exit_code = 2


class InputError(PixlabelError, ValueError):
    """A user file is malformed: the message says which file, which row/id, what was expected."""
