"""Wallet fixtures (helpers live in wallet_support so tests can import them by name)."""

from wallet_support import live_issuer, serve

__all__ = ["live_issuer", "serve"]
