"""Keyed pseudonyms for patient identifiers (HMAC-SHA256 with the site secret)."""

import hashlib
import hmac


def pseudonymise(identifier: str, secret: bytes) -> str:
    """A stable, non-reversible id: the same patient maps to the same pseudonym at one site."""
    digest = hmac.new(secret, identifier.strip().encode(), hashlib.sha256).hexdigest()
    return "P" + digest[:15].upper()
