"""IETF Token Status List (draft-ietf-oauth-status-list), JWT form. Pure: no I/O.

- :class:`StatusList` — ``bits`` (1 or 2) per credential, packed least-significant bit first
  within each byte, bytes in natural order; :meth:`StatusList.encode` gives
  ``{"bits", "lst"}`` with ``lst`` = base64url(ZLIB(DEFLATE) of the bytes), no padding.
- :class:`IndexAllocator` — random, never-reused indexes (herd privacy, HAIP).
- :func:`sign_status_list` / :func:`verify_status_list` — the ``statuslist+jwt`` token
  (``sub`` = the list's URI, ``iat``, ``exp``, ``ttl``), ES256.
- :func:`status_at` — the status of one referenced credential; an index past the end of
  the list is a rejection, never "valid".

Decompression is capped (:data:`MAX_LIST_BYTES`) so a hostile ``lst`` cannot be a zlib bomb.
"""

from __future__ import annotations

import datetime as dt
import secrets
import zlib
from collections.abc import Mapping
from dataclasses import dataclass
from enum import IntEnum
from typing import Any

from joserfc.jwk import ECKey

from pasa.passport._jose import b64url_decode, b64url_encode, parse_jws, sign_jws, signature_valid
from pasa.passport.errors import VerificationError
from pasa.passport.sdjwt import epoch

STATUS_LIST_TYP = "statuslist+jwt"
MAX_LIST_BYTES = 16 * 1024 * 1024  # 128 Mi one-bit entries; anything bigger is refused
SUPPORTED_BITS = (1, 2)


class Status(IntEnum):
    """Status values registered by the draft (0x03 is application-specific)."""

    VALID = 0x00
    INVALID = 0x01  # revoked: permanent
    SUSPENDED = 0x02  # reversible, needs bits >= 2
    APPLICATION_SPECIFIC = 0x03


class StatusList:
    """A mutable, bit-packed list of ``size`` statuses, every one VALID to start with."""

    __slots__ = ("_data", "bits", "size")

    def __init__(self, size: int, bits: int = 2, *, data: bytes | None = None) -> None:
        if bits not in SUPPORTED_BITS:
            raise ValueError(f"bits must be one of {SUPPORTED_BITS}")
        if size <= 0:
            raise ValueError("a status list holds at least one entry")
        self.bits = bits
        self.size = size
        length = (size * bits + 7) // 8
        if data is not None and len(data) != length:
            raise ValueError("data length does not match size and bits")
        self._data = bytearray(data if data is not None else length)

    def _locate(self, index: int) -> tuple[int, int]:
        if not 0 <= index < self.size:
            raise IndexError(f"index {index} is outside the list (size {self.size})")
        position = index * self.bits
        return position // 8, position % 8

    def get(self, index: int) -> int:
        byte, shift = self._locate(index)
        return (self._data[byte] >> shift) & ((1 << self.bits) - 1)

    def set(self, index: int, status: int) -> None:
        if not 0 <= status < (1 << self.bits):
            raise ValueError(f"status {status} does not fit in {self.bits} bit(s)")
        byte, shift = self._locate(index)
        mask = ((1 << self.bits) - 1) << shift
        self._data[byte] = (self._data[byte] & ~mask & 0xFF) | (status << shift)

    def to_bytes(self) -> bytes:
        return bytes(self._data)

    def encode(self) -> dict[str, Any]:
        """The ``status_list`` claim: ``{"bits": n, "lst": base64url(zlib(bytes))}``."""
        return {"bits": self.bits, "lst": b64url_encode(zlib.compress(self.to_bytes(), 9))}

    @classmethod
    def decode(cls, claim: Any, *, max_bytes: int = MAX_LIST_BYTES) -> StatusList:
        """Read a ``status_list`` claim (:class:`VerificationError` ``status_list_malformed``).

        The size is the decompressed length times 8 / ``bits`` (the list carries no count).
        """
        if not isinstance(claim, Mapping):
            raise _malformed("The status_list claim is not an object.")
        bits, lst = claim.get("bits"), claim.get("lst")
        if isinstance(bits, bool) or bits not in SUPPORTED_BITS or not isinstance(lst, str):
            raise _malformed("The status_list claim needs bits (1 or 2) and lst.")
        try:
            decompressor = zlib.decompressobj()
            data = decompressor.decompress(b64url_decode(lst), max_bytes)
        except (ValueError, zlib.error) as exc:
            raise _malformed("The status list is not base64url-encoded ZLIB data.") from exc
        if decompressor.unconsumed_tail:
            raise _malformed("The status list is larger than this verifier accepts.")
        if not decompressor.eof or decompressor.unused_data:
            raise _malformed("The status list's compressed data is truncated or has extra bytes.")
        if not data:
            raise _malformed("The status list is empty.")
        return cls(len(data) * 8 // bits, bits, data=data)


def _malformed(message: str) -> VerificationError:
    return VerificationError("status_list_malformed", message)


class IndexAllocator:
    """Hands out random, never-reused indexes of a list of ``size`` entries.

    ``used`` is the set already handed out (persisted by the caller); an index is never given
    twice, even after the credential it served is revoked or expires.
    """

    def __init__(self, size: int, used: set[int] | None = None) -> None:
        self.size = size
        self.used: set[int] = set(used or ())

    @property
    def free(self) -> int:
        return self.size - len(self.used)

    def allocate(self) -> int:
        if self.free <= 0:
            raise RuntimeError("the status list is full: start a new list")
        if len(self.used) < self.size // 2:
            while True:  # expected fewer than two draws while at most half full
                index = secrets.randbelow(self.size)
                if index not in self.used:
                    break
        else:  # dense: pick uniformly among the free ones
            free = [i for i in range(self.size) if i not in self.used]
            index = free[secrets.randbelow(len(free))]
        self.used.add(index)
        return index


def sign_status_list(
    status_list: StatusList,
    *,
    uri: str,
    key: ECKey,
    kid: str | None,
    iat: dt.datetime | int,
    lifetime: dt.timedelta = dt.timedelta(hours=24),
    ttl: dt.timedelta = dt.timedelta(hours=1),
) -> str:
    """The Status List Token (``typ: statuslist+jwt``) for ``status_list`` published at ``uri``."""
    issued = epoch(iat)
    payload = {
        "sub": uri,
        "iat": issued,
        "exp": issued + int(lifetime.total_seconds()),
        "ttl": int(ttl.total_seconds()),
        "status_list": status_list.encode(),
    }
    header: dict[str, Any] = {"alg": "ES256", "typ": STATUS_LIST_TYP}
    if kid is not None:
        header["kid"] = kid
    return sign_jws(header, payload, key)


@dataclass(frozen=True, slots=True)
class StatusListToken:
    """A verified Status List Token."""

    uri: str
    iat: int
    exp: int | None
    ttl: int | None
    status_list: StatusList

    def status(self, index: int) -> int:
        return status_at(self, index)


def verify_status_list(
    token: str,
    *,
    key: ECKey,
    expected_uri: str,
    now: dt.datetime | int,
    leeway_seconds: int = 60,
    max_bytes: int = MAX_LIST_BYTES,
) -> StatusListToken:
    """Verify a Status List Token fetched from ``expected_uri`` with the issuer's ``key``.

    Checks, in order: ES256 only, ``typ``, signature, ``sub == expected_uri``, ``iat``,
    ``exp``, then decompresses (capped). ``key`` must come from the caller's trust registry
    for this issuer, never from the token.
    """
    if not isinstance(token, str) or not token.isascii():
        raise VerificationError("status_token_malformed", "The status list token is not ASCII.")
    jws = parse_jws(token, what="status list token", prefix="status_token")
    if jws.header.get("typ") != STATUS_LIST_TYP:
        raise VerificationError("status_token_typ", f"The token's typ is not {STATUS_LIST_TYP}.")
    if not signature_valid(jws, key):
        raise VerificationError(
            "status_token_signature", "The status list token's signature is not valid."
        )
    payload = jws.payload
    if payload.get("sub") != expected_uri:
        raise VerificationError(
            "status_token_sub", "The status list token is not the list it was fetched as (sub)."
        )
    now_s = epoch(now)
    times: dict[str, int | None] = {}
    for name in ("iat", "exp", "ttl"):
        value = payload.get(name)
        if value is not None and (isinstance(value, bool) or not isinstance(value, int)):
            raise VerificationError(
                "status_token_malformed", f"The status list token's {name} is not an integer."
            )
        times[name] = value
    iat, exp = times["iat"], times["exp"]
    if iat is None:
        raise VerificationError("status_token_malformed", "The status list token has no iat.")
    if iat > now_s + leeway_seconds:
        raise VerificationError(
            "status_token_not_yet_valid", "The status list token is dated in the future."
        )
    if exp is not None and now_s >= exp + leeway_seconds:
        raise VerificationError("status_token_expired", "The status list token has expired.")
    status_list = StatusList.decode(payload.get("status_list"), max_bytes=max_bytes)
    return StatusListToken(expected_uri, iat, exp, times["ttl"], status_list)


def status_at(token: StatusListToken, index: Any) -> int:
    """The status of entry ``index``; out of range or not an integer -> rejection."""
    if isinstance(index, bool) or not isinstance(index, int) or index < 0:
        raise VerificationError("status_index_invalid", "The status index is not a whole number.")
    if index >= token.status_list.size:
        raise VerificationError(
            "status_index_out_of_range", "The status index lies outside the status list."
        )
    return token.status_list.get(index)


def check_status(token: StatusListToken, reference: Mapping[str, Any]) -> None:
    """Raise unless the credential's ``status.status_list`` reference reads VALID.

    ``reference`` is the credential's ``status`` claim. INVALID raises ``revoked``,
    SUSPENDED ``suspended``, any other value ``status_unknown``.
    """
    entry = reference.get("status_list") if isinstance(reference, Mapping) else None
    if not isinstance(entry, Mapping) or entry.get("uri") != token.uri:
        raise VerificationError(
            "status_reference_mismatch", "The credential does not refer to this status list."
        )
    value = status_at(token, entry.get("idx"))
    if value == Status.VALID:
        return
    if value == Status.INVALID:
        raise VerificationError("revoked", "The credential has been revoked by its issuer.")
    if value == Status.SUSPENDED:
        raise VerificationError("suspended", "The credential is suspended by its issuer.")
    raise VerificationError("status_unknown", "The credential has a status we do not recognise.")
