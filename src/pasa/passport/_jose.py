"""Strict base64url, JSON and compact-JWS helpers (ES256 only) shared by the passport modules.

Decoding is strict on purpose: no padding, only the URL-safe alphabet and canonical encodings
(the unused low bits of the last character must be zero), so a one-character change to any
segment can never decode to the same bytes. JSON objects with duplicate member names are
rejected, as are ``NaN``/``Infinity``.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from dataclasses import dataclass
from typing import Any

from joserfc import jws
from joserfc.jwk import ECKey
from joserfc.jws import JWSRegistry

from pasa.passport.errors import VerificationError

ALLOWED_ALGS = ("ES256",)
_REGISTRY = JWSRegistry(algorithms=list(ALLOWED_ALGS))
_ES256 = _REGISTRY.get_alg("ES256")
_B64URL = re.compile(r"[A-Za-z0-9_-]*")
MAX_TOKEN_CHARS = 1_000_000


def b64url_encode(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def b64url_decode(text: str) -> bytes:
    """Decode unpadded base64url strictly; :class:`ValueError` on anything non-canonical."""
    if not _B64URL.fullmatch(text) or len(text) % 4 == 1:
        raise ValueError("not base64url")
    try:
        data = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except binascii.Error as exc:  # pragma: no cover - the regex already screens this
        raise ValueError("not base64url") from exc
    if b64url_encode(data) != text:
        raise ValueError("non-canonical base64url")
    return data


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise ValueError(f"duplicate member name {key!r}")
        out[key] = value
    return out


def _no_constants(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def json_loads(data: bytes | str) -> Any:
    """Parse JSON, rejecting duplicate member names and NaN/Infinity (:class:`ValueError`)."""
    try:
        return json.loads(data, object_pairs_hook=_no_duplicates, parse_constant=_no_constants)
    except RecursionError as exc:
        raise ValueError("JSON nested too deeply") from exc


def json_dumps(value: Any) -> bytes:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def sign_jws(header: dict[str, Any], payload: dict[str, Any], key: ECKey) -> str:
    """A compact JWS over ``payload`` (compact JSON), ES256 only."""
    if header.get("alg") not in ALLOWED_ALGS:
        raise ValueError(f"only {', '.join(ALLOWED_ALGS)} may be used to sign")
    return jws.serialize_compact(header, json_dumps(payload), key, registry=_REGISTRY)


@dataclass(frozen=True, slots=True)
class ParsedJws:
    """A compact JWS split and decoded, signature not yet checked."""

    header: dict[str, Any]
    payload: dict[str, Any]
    signing_input: bytes
    signature: bytes


def parse_jws(token: str, *, what: str, prefix: str) -> ParsedJws:
    """Split and decode a compact JWS whose payload is a JSON object.

    Raises :class:`VerificationError` ``{prefix}_malformed`` if it is not one, and
    ``{prefix}_alg`` if its ``alg`` is not in the allow-list (``none``, ``HS256``, ...),
    before any key is looked at.
    """
    parts = token.split(".")
    if len(parts) != 3:
        raise VerificationError(f"{prefix}_malformed", f"The {what} is not a compact JWS.")
    try:
        header = json_loads(b64url_decode(parts[0]))
        payload = json_loads(b64url_decode(parts[1]))
        signature = b64url_decode(parts[2])
    except (ValueError, UnicodeDecodeError) as exc:
        raise VerificationError(
            f"{prefix}_malformed", f"The {what} is not valid base64url-encoded JSON."
        ) from exc
    if not isinstance(header, dict) or not isinstance(payload, dict):
        raise VerificationError(
            f"{prefix}_malformed", f"The {what}'s header and payload must be JSON objects."
        )
    alg = header.get("alg")
    if alg not in ALLOWED_ALGS:
        shown = alg if isinstance(alg, str) and len(alg) <= 20 else "(invalid)"
        raise VerificationError(
            f"{prefix}_alg",
            f"The {what} uses algorithm {shown}; only {', '.join(ALLOWED_ALGS)} is accepted.",
        )
    if "crit" in header:
        raise VerificationError(
            f"{prefix}_malformed", f"The {what} has critical header parameters we do not support."
        )
    signing_input = (parts[0] + "." + parts[1]).encode("ascii")
    return ParsedJws(header, payload, signing_input, signature)


def signature_valid(parsed: ParsedJws, key: ECKey) -> bool:
    """True when ``parsed`` carries a valid ES256 signature by ``key`` (a P-256 key)."""
    if not isinstance(key, ECKey) or key.curve_name != "P-256":
        return False
    return bool(_ES256.verify(parsed.signing_input, parsed.signature, key))


def public_key_from_jwk(jwk: Any) -> ECKey:
    """Import a public P-256 JWK (:class:`ValueError` if it is anything else or has ``d``)."""
    if not isinstance(jwk, dict) or jwk.get("kty") != "EC" or jwk.get("crv") != "P-256":
        raise ValueError("not a P-256 EC JWK")
    if "d" in jwk:
        raise ValueError("a private key was supplied where a public key belongs")
    try:
        key = ECKey.import_key({k: jwk[k] for k in ("kty", "crv", "x", "y")})
    except Exception as exc:  # joserfc/cryptography raise assorted types on bad points
        raise ValueError("not a valid P-256 public key") from exc
    return key


def public_jwk(key: ECKey) -> dict[str, Any]:
    """The public JWK of ``key`` (kty, crv, x, y only)."""
    full = key.as_dict(private=False)
    return {k: full[k] for k in ("kty", "crv", "x", "y")}
