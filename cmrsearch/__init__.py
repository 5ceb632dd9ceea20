"""cmr-search: settings, the shared error type and the `cmrsearch` console script."""
