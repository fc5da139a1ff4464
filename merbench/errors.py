"""The one exception type for user errors.

The CLI catches it at the top, prints its message on one line and exits 2. Every other
exception is a bug and keeps its traceback.
"""


class MerbenchError(Exception):
    """Bad input from the user: a file, key or value, and what was expected."""
