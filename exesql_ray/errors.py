"""Errors a user can act on.

A UserError is bad input (a path, a file, a setting): the CLI prints its one line on stderr
and exits 2. Anything else is a bug and keeps its traceback.
"""


class UserError(Exception):
    """Bad input named precisely enough to fix: the file, row or setting at fault."""
