"""The one exception the wallet raises: a specific ``code`` and a sentence for a person."""

from __future__ import annotations

from pasa.domain.errors import PasaError


class WalletError(PasaError):
    """Why the wallet could not do what was asked. ``code`` is stable (tests, scripts)."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
