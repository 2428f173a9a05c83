"""The one exception type for errors a user can cause (bad input, bad options, unwritable output).

Its message is fit to print on one line; the CLI prints it and exits non-zero without a traceback.
"""


class BrushworkError(Exception):
    """An error caused by the user's input or options, with a one-line message."""
