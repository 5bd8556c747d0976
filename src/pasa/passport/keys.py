"""Issuer signing keys: ES256 generation, encryption at rest, rotation. Pure: no I/O.

- :class:`KeyEncryptionKey` — AES-256-GCM key-encryption key, read from an environment
  variable *by name* (default ``PASA_PASSPORT_KEK``, 32 bytes base64url). Private keys are
  stored only as ``v1.<nonce>.<ciphertext>`` with the ``kid`` as associated data, so a
  ciphertext cannot be moved to another key's record.
- :class:`IssuerKey` — one P-256 key, ``kid`` = its RFC 7638 thumbprint. Its ``repr`` and
  records never contain the private key in clear.
- :class:`KeyRing` — the current key plus retired keys. A retired key stays in the published
  JWKS until every credential it signed has expired (``signed_until`` + a grace period), then
  :meth:`KeyRing.prune` drops it.
"""

from __future__ import annotations

import datetime as dt
import os
import secrets
from collections.abc import Mapping
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from joserfc.jwk import ECKey

from pasa.domain.errors import ConfigurationError
from pasa.passport._jose import b64url_decode, b64url_encode, public_jwk, public_key_from_jwk
from pasa.passport.sdjwt import IssuerKeyResolver

KEK_ENV = "PASA_PASSPORT_KEK"
_BLOB_VERSION = "v1"


class KeyEncryptionKey:
    """An AES-256-GCM key that encrypts issuer private keys at rest."""

    __slots__ = ("_aead",)

    def __init__(self, raw: bytes) -> None:
        if len(raw) != 32:
            raise ConfigurationError("The key-encryption key must be 32 bytes (AES-256).")
        self._aead = AESGCM(raw)

    def __repr__(self) -> str:
        return "KeyEncryptionKey(<hidden>)"

    @staticmethod
    def generate() -> str:
        """A new key-encryption key, base64url, for an operator to put in the environment."""
        return b64url_encode(secrets.token_bytes(32))

    @classmethod
    def from_env(
        cls, name: str = KEK_ENV, environ: Mapping[str, str] | None = None
    ) -> KeyEncryptionKey:
        """Read the key from the variable ``name``; errors name the variable, never its value."""
        env = os.environ if environ is None else environ
        value = env.get(name)
        if not value:
            raise ConfigurationError(
                f"Set {name} to a 32-byte base64url key-encryption key to sign passports."
            )
        try:
            # Padding is tolerated here (an operator may paste a padded key); JOSE's is not.
            raw = b64url_decode(value.strip().rstrip("="))
        except ValueError:
            raise ConfigurationError(f"{name} is not base64url.") from None
        if len(raw) != 32:
            raise ConfigurationError(f"{name} must decode to 32 bytes.")
        return cls(raw)

    def encrypt(self, plaintext: bytes, *, context: str) -> str:
        nonce = secrets.token_bytes(12)
        sealed = self._aead.encrypt(nonce, plaintext, context.encode("utf-8"))
        return f"{_BLOB_VERSION}.{b64url_encode(nonce)}.{b64url_encode(sealed)}"

    def decrypt(self, blob: str, *, context: str) -> bytes:
        try:
            version, nonce, sealed = blob.split(".")
            if version != _BLOB_VERSION:
                raise ValueError(version)
            return self._aead.decrypt(
                b64url_decode(nonce), b64url_decode(sealed), context.encode("utf-8")
            )
        except (ValueError, InvalidTag) as exc:
            raise ConfigurationError(
                "An issuer key could not be decrypted: wrong key-encryption key or altered record."
            ) from exc


def _utc(value: dt.datetime) -> dt.datetime:
    if value.tzinfo is None:
        raise ValueError("a naive datetime has no instant; pass an aware one")
    return value.astimezone(dt.UTC)


def _time(value: str | None) -> dt.datetime | None:
    return None if value is None else _utc(dt.datetime.fromisoformat(value))


class IssuerKey:
    """One issuer signing key (P-256, ES256) and its lifecycle dates."""

    __slots__ = ("_key", "created_at", "kid", "retired_at", "signed_until")

    def __init__(
        self,
        key: ECKey,
        *,
        created_at: dt.datetime,
        retired_at: dt.datetime | None = None,
        signed_until: dt.datetime | None = None,
    ) -> None:
        if not key.is_private or key.curve_name != "P-256":
            raise ValueError("an issuer key is a private P-256 key")
        self._key = key
        self.kid: str = key.thumbprint()
        self.created_at = _utc(created_at)
        self.retired_at = None if retired_at is None else _utc(retired_at)
        self.signed_until = None if signed_until is None else _utc(signed_until)

    @classmethod
    def generate(cls, now: dt.datetime) -> IssuerKey:
        return cls(ECKey.generate_key("P-256", private=True), created_at=now)

    def __repr__(self) -> str:
        state = "retired" if self.retired_at else "current"
        return f"IssuerKey(kid={self.kid!r}, {state})"

    @property
    def private_key(self) -> ECKey:
        """For signing only; never log or serialise it."""
        return self._key

    @property
    def public_key(self) -> ECKey:
        return public_key_from_jwk(public_jwk(self._key))

    def public_jwk(self) -> dict[str, Any]:
        """The JWK to publish: public parameters plus ``kid``, ``alg`` and ``use``."""
        return {**public_jwk(self._key), "kid": self.kid, "alg": "ES256", "use": "sig"}

    def note_signed(self, expires: dt.datetime) -> None:
        """Remember that a credential expiring at ``expires`` was signed with this key."""
        expires = _utc(expires)
        if self.signed_until is None or expires > self.signed_until:
            self.signed_until = expires

    def to_record(self, kek: KeyEncryptionKey) -> dict[str, Any]:
        """A JSON-safe record; the private key only as AES-GCM ciphertext bound to the kid."""
        private = self._key.private_key
        assert private is not None  # checked in __init__
        der = private.private_bytes(
            serialization.Encoding.DER,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        return {
            "kid": self.kid,
            "public_jwk": self.public_jwk(),
            "private_key_encrypted": kek.encrypt(der, context=self.kid),
            "created_at": self.created_at.isoformat(),
            "retired_at": self.retired_at.isoformat() if self.retired_at else None,
            "signed_until": self.signed_until.isoformat() if self.signed_until else None,
        }

    @classmethod
    def from_record(cls, record: Mapping[str, Any], kek: KeyEncryptionKey) -> IssuerKey:
        kid = record["kid"]
        der = kek.decrypt(record["private_key_encrypted"], context=kid)
        private = serialization.load_der_private_key(der, password=None)
        if not isinstance(private, ec.EllipticCurvePrivateKey):
            raise ConfigurationError("An issuer key record does not hold an EC private key.")
        key = cls(
            ECKey.import_key(private),
            created_at=_utc(dt.datetime.fromisoformat(record["created_at"])),
            retired_at=_time(record.get("retired_at")),
            signed_until=_time(record.get("signed_until")),
        )
        if key.kid != kid:
            raise ConfigurationError("An issuer key record's kid does not match its key.")
        return key


class KeyRing:
    """The issuer's current key and the retired keys still needed by verifiers."""

    def __init__(
        self,
        current: IssuerKey,
        retired: list[IssuerKey] | None = None,
        *,
        grace: dt.timedelta = dt.timedelta(days=1),
    ) -> None:
        self.current = current
        self.retired: list[IssuerKey] = list(retired or ())
        self.grace = grace

    def __repr__(self) -> str:
        return f"KeyRing(current={self.current.kid!r}, retired={len(self.retired)})"

    @classmethod
    def new(cls, now: dt.datetime, *, grace: dt.timedelta = dt.timedelta(days=1)) -> KeyRing:
        return cls(IssuerKey.generate(now), grace=grace)

    def rotate(self, now: dt.datetime, new: IssuerKey | None = None) -> IssuerKey:
        """Retire the current key and make ``new`` (or a fresh key) current."""
        old = self.current
        old.retired_at = _utc(now)
        self.retired.append(old)
        self.current = new if new is not None else IssuerKey.generate(now)
        return self.current

    def _still_needed(self, key: IssuerKey, now: dt.datetime) -> bool:
        return key.signed_until is not None and _utc(now) < key.signed_until + self.grace

    def published(self, now: dt.datetime) -> list[IssuerKey]:
        """The current key and each retired key some unexpired credential may rely on."""
        return [self.current, *(k for k in self.retired if self._still_needed(k, now))]

    def prune(self, now: dt.datetime) -> list[str]:
        """Drop retired keys no credential relies on any more; returns their kids."""
        dropped = [k.kid for k in self.retired if not self._still_needed(k, now)]
        self.retired = [k for k in self.retired if self._still_needed(k, now)]
        return dropped

    def jwks(self, now: dt.datetime) -> dict[str, Any]:
        return {"keys": [k.public_jwk() for k in self.published(now)]}

    def jwt_vc_issuer_metadata(self, issuer: str, now: dt.datetime) -> dict[str, Any]:
        """The body of ``/.well-known/jwt-vc-issuer`` (SD-JWT VC issuer metadata)."""
        return {"issuer": issuer, "jwks": self.jwks(now)}

    def resolver(self, now: dt.datetime, issuer: str | None = None) -> IssuerKeyResolver:
        """An :data:`~pasa.passport.sdjwt.IssuerKeyResolver` over the published keys."""
        keys = {k.kid: k.public_key for k in self.published(now)}

        def resolve(header: Mapping[str, Any], payload: Mapping[str, Any]) -> ECKey | None:
            if issuer is not None and payload.get("iss") != issuer:
                return None
            kid = header.get("kid")
            return keys.get(kid) if isinstance(kid, str) else None

        return resolve

    def to_record(self, kek: KeyEncryptionKey) -> dict[str, Any]:
        return {
            "current": self.current.to_record(kek),
            "retired": [k.to_record(kek) for k in self.retired],
            "grace_seconds": int(self.grace.total_seconds()),
        }

    @classmethod
    def from_record(cls, record: Mapping[str, Any], kek: KeyEncryptionKey) -> KeyRing:
        return cls(
            IssuerKey.from_record(record["current"], kek),
            [IssuerKey.from_record(r, kek) for r in record.get("retired", [])],
            grace=dt.timedelta(seconds=int(record.get("grace_seconds", 86400))),
        )


def jwks_resolver(jwks_by_issuer: Mapping[str, Mapping[str, Any]]) -> IssuerKeyResolver:
    """A resolver from trusted ``issuer -> JWKS`` (e.g. each issuer's ``jwt-vc-issuer``).

    The key is found by the credential's ``iss`` *and* header ``kid``; an issuer not in the
    mapping, or a kid not in its JWKS, resolves to None (rejected as ``issuer_key_unknown``).
    """
    table: dict[str, dict[str, ECKey]] = {}
    for issuer, jwks in jwks_by_issuer.items():
        entries: dict[str, ECKey] = {}
        for jwk in jwks.get("keys", []):
            kid = jwk.get("kid")
            if isinstance(kid, str):
                entries[kid] = public_key_from_jwk(
                    {k: v for k, v in jwk.items() if k in ("kty", "crv", "x", "y")}
                )
        table[issuer] = entries

    def resolve(header: Mapping[str, Any], payload: Mapping[str, Any]) -> ECKey | None:
        iss, kid = payload.get("iss"), header.get("kid")
        if not isinstance(iss, str) or not isinstance(kid, str):
            return None
        return table.get(iss, {}).get(kid)

    return resolve
