"""Passport fixtures (helpers live in passport_support so tests can import them by name)."""

from passport_support import credential, keys, nonces

__all__ = ["credential", "keys", "nonces"]
