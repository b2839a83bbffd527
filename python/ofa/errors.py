"""One error type for every problem a user can fix (bad file, bad column, bad length...).

It subclasses ValueError so Python callers can catch the usual exception; the CLI turns it
into a one-line message and exit status 2.
"""


class OfaError(ValueError):
    """A user-facing problem with the input: the message names it."""


class SeriesTooShort(OfaError):
    """The data have too few rows for the lookback and horizon asked (`--seq-len auto` tries shorter ones)."""
