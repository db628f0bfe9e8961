"""The one user-error type, caught at the CLI and server boundaries only.

Each axis has its own subclass so callers can tell what went wrong; the message is
always one line that names the file (or request), the position, and what was expected.
"""


class AuditorError(Exception):
    """A problem with what the user gave us (exit 2), never a bug in the tool."""


class InputError(AuditorError):
    """A trace file, stream or request body that cannot be read."""


class SchemaError(AuditorError):
    """An attribution schema that does not validate."""


class UsageError(AuditorError):
    """Bad command-line usage (flags, combinations)."""
