"""Digital Staff Passport: the pure, I/O-free credential core.

- :mod:`pasa.passport.sdjwt`: SD-JWT (RFC 9901) issue, present, verify.
- :mod:`pasa.passport.vc`: SD-JWT VC credential types (one ``vct`` per check).
- :mod:`pasa.passport.status_list`: IETF Token Status List (``statuslist+jwt``).
- :mod:`pasa.passport.keys`: issuer signing keys, encryption at rest, rotation.

Every rejection raises :class:`~pasa.passport.errors.VerificationError` with a machine code
and one sentence. See ``docs/passport.md``.
"""

from pasa.passport.errors import VerificationError

__all__ = ["VerificationError"]
