"""The one exception type every user-facing failure derives from.

Its message is a single line that says what is wrong and what to do; the CLI
prints it without a traceback. It must never contain patient identifiers.
"""


class CmrSearchError(Exception):
    """A failure the user can fix; ``str(error)`` is the one-line explanation."""


class ConfigError(CmrSearchError):
    """A setting (environment variable or path) is invalid."""
