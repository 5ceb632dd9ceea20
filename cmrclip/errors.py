"""Model-library errors (one line each: what is wrong and what to do)."""

from cmrsearch.errors import CmrSearchError


class ModelError(CmrSearchError):
    """A model or checkpoint cannot be built or loaded."""
