"""The one exception a passport verifier raises: a machine code plus one sentence."""

from __future__ import annotations

from pasa.domain.errors import PasaError


class VerificationError(PasaError):
    """A credential, presentation or status list was rejected.

    ``code`` is stable and machine-readable (``kb_nonce``, ``disclosure_unreferenced``, ...;
    the full list is in ``docs/passport.md``); ``message`` is one sentence for people. Neither
    ever contains disclosed personal data or key material.
    """

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message

    def __repr__(self) -> str:
        return f"VerificationError(code={self.code!r}, message={self.message!r})"
