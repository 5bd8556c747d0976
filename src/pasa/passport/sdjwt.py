"""SD-JWT, written to RFC 9901 (Selective Disclosure for JSON Web Tokens). Pure: no I/O.

Three roles, one module:

- **Issuer** — :func:`issue` turns a claims structure in which selectively disclosable parts
  are wrapped in :class:`SD` (object members, nested objects, array elements) into an
  issuer-signed JWT plus Disclosures: 128-bit salts from :mod:`secrets`, ``_sd_alg``
  ``sha-256``, digests sorted, optional decoy digests, ``cnf.jwk`` with the holder's key.
- **Holder** — :func:`held_disclosures` lists what a credential can disclose (with the path of
  each claim), :func:`present` picks a subset and appends a Key Binding JWT (``kb+jwt``,
  ``iat``, ``aud``, ``nonce``, ``sd_hash`` over the presentation).
- **Verifier** — :func:`verify` runs RFC 9901 section 7 and the Key Binding checks and either
  returns :class:`VerifiedSdJwt` or raises :class:`~pasa.passport.errors.VerificationError`
  with a specific code. It never raises anything else for any text it is given.

Serialisation: ``<issuer-JWT>~<disclosure>~...~<disclosure>~[<KB-JWT>]``. Only ES256 (P-256)
is accepted anywhere; ``alg: none``, HMAC and every other algorithm are refused before a key
is looked at.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import secrets
from collections.abc import Callable, Collection, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from joserfc.jwk import ECKey

from pasa.passport._jose import (
    MAX_TOKEN_CHARS,
    b64url_decode,
    b64url_encode,
    json_dumps,
    json_loads,
    parse_jws,
    public_jwk,
    public_key_from_jwk,
    sign_jws,
    signature_valid,
)
from pasa.passport.errors import VerificationError

SD_ALG = "sha-256"
KB_TYP = "kb+jwt"
VC_TYP = "dc+sd-jwt"
SALT_BYTES = 16  # 128 bits, RFC 9901 section 9.3
_RESERVED_NAMES = frozenset({"_sd", "..."})
_TOP_LEVEL_NEVER_SD = frozenset({"_sd_alg", "cnf"})

Path = tuple[str | int, ...]
"""Where a claim sits in the fully disclosed payload: member names and array indexes."""


# --------------------------------------------------------------------------- common pieces


@dataclass(frozen=True, slots=True)
class SD:
    """Marks a value as selectively disclosable when passed to :func:`issue`.

    ``{"given_name": SD("Ada")}`` makes an object member disclosable; ``[SD("GB"), "FR"]``
    an array element. Values may themselves contain further :class:`SD` markers (nested).
    """

    value: Any


@dataclass(frozen=True, slots=True)
class Disclosure:
    """One Disclosure: ``[salt, name, value]`` (object member) or ``[salt, value]`` (element)."""

    encoded: str
    salt: str
    name: str | None
    value: Any

    @property
    def digest(self) -> str:
        return digest(self.encoded)


def digest(encoded: str) -> str:
    """base64url(SHA-256(ASCII bytes of the encoded Disclosure)), as RFC 9901 section 4.2.3."""
    return b64url_encode(hashlib.sha256(encoded.encode("ascii")).digest())


def make_disclosure(name: str | None, value: Any, *, salt: str | None = None) -> Disclosure:
    """A new Disclosure with a fresh 128-bit salt (``name`` None for an array element)."""
    if name in _RESERVED_NAMES:
        raise ValueError(f"{name!r} cannot be a selectively disclosable claim name")
    salt = salt if salt is not None else b64url_encode(secrets.token_bytes(SALT_BYTES))
    array = [salt, value] if name is None else [salt, name, value]
    return Disclosure(b64url_encode(json_dumps(array)), salt, name, value)


def _decoy_digest() -> str:
    return b64url_encode(hashlib.sha256(secrets.token_bytes(32)).digest())


def sd_hash(presentation_without_kb: str) -> str:
    """``sd_hash`` of a presentation: the hash of ``<JWT>~<D1>~...~<Dn>~`` (ASCII)."""
    return digest(presentation_without_kb)


def epoch(instant: dt.datetime | int | float) -> int:
    """Seconds since the epoch of an aware datetime (or a number, truncated)."""
    if isinstance(instant, dt.datetime):
        if instant.tzinfo is None:
            raise ValueError("a naive datetime has no instant; pass an aware one")
        return int(instant.timestamp())
    return int(instant)


@dataclass(frozen=True, slots=True)
class SdJwt:
    """An SD-JWT in parts: issuer-signed JWT, Disclosures (as sent) and an optional KB-JWT."""

    jwt: str
    disclosures: tuple[str, ...]
    kb_jwt: str | None = None

    def without_kb(self) -> str:
        """``<JWT>~<D1>~...~<Dn>~``: the string ``sd_hash`` is computed over."""
        return "".join([self.jwt, "~", *(d + "~" for d in self.disclosures)])

    def serialize(self) -> str:
        return self.without_kb() + (self.kb_jwt or "")

    def __str__(self) -> str:
        return self.serialize()

    @classmethod
    def parse(cls, text: str) -> SdJwt:
        """Split the compact serialisation (structure only; nothing is verified)."""
        if not isinstance(text, str) or not text.isascii() or len(text) > MAX_TOKEN_CHARS:
            raise VerificationError("malformed", "The SD-JWT is not a compact ASCII string.")
        parts = text.split("~")
        if len(parts) < 2 or not parts[0]:
            raise VerificationError(
                "malformed", "The SD-JWT is not of the form <JWT>~<Disclosures>~[<KB-JWT>]."
            )
        disclosures = tuple(parts[1:-1])
        if any(not d for d in disclosures):
            raise VerificationError("malformed", "The SD-JWT contains an empty Disclosure.")
        return cls(parts[0], disclosures, parts[-1] or None)


# --------------------------------------------------------------------------- issuer


def _pack(value: Any, out: list[Disclosure], max_decoys: int) -> Any:
    if isinstance(value, SD):
        raise ValueError("SD() may only wrap an object member's value or an array element")
    if isinstance(value, Mapping):
        packed: dict[str, Any] = {}
        digests: list[str] = []
        for name, member in value.items():
            if not isinstance(name, str):
                raise ValueError("claim names must be strings")
            if name in _RESERVED_NAMES:
                raise ValueError(f"{name!r} is reserved by RFC 9901 and cannot be a claim name")
            if isinstance(member, SD):
                disclosure = make_disclosure(name, _pack(member.value, out, max_decoys))
                out.append(disclosure)
                digests.append(disclosure.digest)
            else:
                packed[name] = _pack(member, out, max_decoys)
        if digests:
            digests.extend(_decoy_digest() for _ in range(secrets.randbelow(max_decoys + 1)))
            packed["_sd"] = sorted(digests)
        return packed
    if isinstance(value, list | tuple):
        elements: list[Any] = []
        any_sd = False
        for element in value:
            if isinstance(element, SD):
                any_sd = True
                disclosure = make_disclosure(None, _pack(element.value, out, max_decoys))
                out.append(disclosure)
                elements.append({"...": disclosure.digest})
            else:
                elements.append(_pack(element, out, max_decoys))
        if any_sd:
            for _ in range(secrets.randbelow(max_decoys + 1)):
                elements.insert(secrets.randbelow(len(elements) + 1), {"...": _decoy_digest()})
        return elements
    return value


def issue(
    claims: Mapping[str, Any],
    *,
    issuer_key: ECKey,
    holder_jwk: Mapping[str, Any] | None = None,
    kid: str | None = None,
    typ: str = VC_TYP,
    max_decoys: int = 0,
) -> SdJwt:
    """Sign ``claims`` as an SD-JWT; parts wrapped in :class:`SD` become Disclosures.

    ``holder_jwk`` (a public P-256 JWK) goes into ``cnf.jwk`` so presentations can be
    key-bound. Each object or array holding disclosable parts gets between 0 and
    ``max_decoys`` decoy digests. ``_sd_alg``, ``cnf``, ``_sd`` and ``...`` cannot be claims.
    """
    for name in _TOP_LEVEL_NEVER_SD:
        if name in claims:
            raise ValueError(f"{name!r} is set by issue(), not passed in claims")
    if max_decoys < 0:
        raise ValueError("max_decoys cannot be negative")
    disclosures: list[Disclosure] = []
    payload = _pack(claims, disclosures, max_decoys)
    payload["_sd_alg"] = SD_ALG
    if holder_jwk is not None:
        payload["cnf"] = {"jwk": public_jwk(public_key_from_jwk(dict(holder_jwk)))}
    header: dict[str, Any] = {"alg": "ES256", "typ": typ}
    if kid is not None:
        header["kid"] = kid
    jwt = sign_jws(header, payload, issuer_key)
    return SdJwt(jwt, tuple(d.encoded for d in disclosures))


# --------------------------------------------------------------------------- disclosure processing


def _decode_disclosure(encoded: str) -> Disclosure:
    try:
        array = json_loads(b64url_decode(encoded))
    except (ValueError, UnicodeDecodeError) as exc:
        raise VerificationError(
            "disclosure_malformed", "A Disclosure is not valid base64url-encoded JSON."
        ) from exc
    if not isinstance(array, list) or len(array) not in (2, 3) or not isinstance(array[0], str):
        raise VerificationError(
            "disclosure_malformed",
            "A Disclosure is not a JSON array of [salt, name, value] or [salt, value].",
        )
    if len(array) == 2:
        return Disclosure(encoded, array[0], None, array[1])
    name = array[1]
    if not isinstance(name, str):
        raise VerificationError(
            "disclosure_malformed", "A Disclosure's claim name is not a string."
        )
    if name in _RESERVED_NAMES:
        raise VerificationError(
            "sd_reserved_name", f"A Disclosure uses the reserved claim name {name!r}."
        )
    return Disclosure(encoded, array[0], name, array[2])


@dataclass(slots=True)
class _Resolver:
    by_digest: dict[str, Disclosure]
    seen: set[str] = field(default_factory=set)
    used: dict[str, Path] = field(default_factory=dict)

    def _see(self, value: str) -> Disclosure | None:
        if value in self.seen:
            raise VerificationError(
                "digest_duplicate", "The same digest appears more than once in the SD-JWT."
            )
        self.seen.add(value)
        return self.by_digest.get(value)

    def resolve(self, node: Any, path: Path) -> Any:
        if isinstance(node, dict):
            return self._object(node, path)
        if isinstance(node, list):
            return self._array(node, path)
        return node

    def _object(self, node: dict[str, Any], path: Path) -> dict[str, Any]:
        if "..." in node:
            raise VerificationError(
                "sd_misuse", "The key '...' may only appear in an array element digest."
            )
        digests = node.get("_sd", [])
        if not isinstance(digests, list) or not all(isinstance(d, str) for d in digests):
            raise VerificationError("sd_misuse", "An _sd member is not an array of digests.")
        out = {
            name: self.resolve(value, (*path, name))
            for name, value in node.items()
            if name != "_sd" and not (name == "_sd_alg" and not path)
        }
        for value in digests:
            disclosure = self._see(value)
            if disclosure is None:
                continue  # a decoy, or a claim the holder did not disclose
            if disclosure.name is None:
                raise VerificationError(
                    "sd_misuse", "An array-element Disclosure is referenced from an _sd array."
                )
            if disclosure.name in out:
                raise VerificationError(
                    "claim_collision",
                    f"The disclosed claim {disclosure.name!r} already exists at its level.",
                )
            here = (*path, disclosure.name)
            self.used[disclosure.encoded] = here
            out[disclosure.name] = self.resolve(disclosure.value, here)
        return out

    def _array(self, node: list[Any], path: Path) -> list[Any]:
        out: list[Any] = []
        for element in node:
            if isinstance(element, dict) and "..." in element:
                value = element["..."]
                if len(element) != 1 or not isinstance(value, str):
                    raise VerificationError(
                        "sd_misuse", "An array element digest must be exactly {'...': digest}."
                    )
                disclosure = self._see(value)
                if disclosure is None:
                    continue
                if disclosure.name is not None:
                    raise VerificationError(
                        "sd_misuse", "An object-member Disclosure is referenced from an array."
                    )
                here = (*path, len(out))
                self.used[disclosure.encoded] = here
                out.append(self.resolve(disclosure.value, here))
            else:
                out.append(self.resolve(element, (*path, len(out))))
        return out


@dataclass(frozen=True, slots=True)
class HeldDisclosure:
    """A Disclosure the holder can choose to present, with where its claim sits."""

    disclosure: Disclosure
    path: Path


def _process(
    payload: dict[str, Any], encoded: Iterable[str]
) -> tuple[dict[str, Any], list[HeldDisclosure]]:
    """RFC 9901 section 7.1 steps 3-5: the disclosed payload and each Disclosure's path."""
    alg = payload.get("_sd_alg", SD_ALG)
    if alg != SD_ALG:
        raise VerificationError(
            "sd_alg_unsupported", f"Only _sd_alg {SD_ALG} is supported for disclosure digests."
        )
    by_digest: dict[str, Disclosure] = {}
    order: list[Disclosure] = []
    for item in encoded:
        disclosure = _decode_disclosure(item)
        key = disclosure.digest
        if key in by_digest:
            raise VerificationError("disclosure_duplicate", "A Disclosure is presented twice.")
        by_digest[key] = disclosure
        order.append(disclosure)
    resolver = _Resolver(by_digest)
    claims = resolver.resolve(payload, ())
    for disclosure in order:
        if disclosure.encoded not in resolver.used:
            raise VerificationError(
                "disclosure_unreferenced",
                "A Disclosure matches no digest in the credential: it was altered or does not"
                " belong to this credential.",
            )
    held = [HeldDisclosure(d, resolver.used[d.encoded]) for d in order]
    return claims, held


# --------------------------------------------------------------------------- holder


def held_disclosures(sd_jwt: str | SdJwt) -> list[HeldDisclosure]:
    """Every Disclosure of a credential with the path of its claim (no signature check)."""
    parsed = sd_jwt if isinstance(sd_jwt, SdJwt) else SdJwt.parse(sd_jwt)
    jws = parse_jws(parsed.jwt, what="issuer-signed JWT", prefix="jwt")
    return _process(jws.payload, parsed.disclosures)[1]


def present(
    sd_jwt: str | SdJwt,
    *,
    holder_key: ECKey | None,
    audience: str | None = None,
    nonce: str | None = None,
    iat: dt.datetime | int | None = None,
    paths: Collection[Path] | None = None,
    select: Callable[[HeldDisclosure], bool] | None = None,
) -> str:
    """A presentation disclosing a chosen subset, key-bound when ``holder_key`` is given.

    Choose with ``paths`` (claims to reveal; the Disclosures of their enclosing disclosable
    objects/elements are added automatically, children are not) or with ``select``; with
    neither, nothing is disclosed. With ``holder_key`` a KB-JWT is appended over
    ``audience``, ``nonce`` and ``iat`` (default now).
    """
    parsed = sd_jwt if isinstance(sd_jwt, SdJwt) else SdJwt.parse(sd_jwt)
    held = held_disclosures(parsed)
    wanted = {tuple(p) for p in paths or ()}
    chosen: set[str] = set()
    for item in held:
        if (select is not None and select(item)) or item.path in wanted:
            chosen.add(item.disclosure.encoded)
    # Add each chosen claim's disclosable ancestors, or the verifier could not reach it.
    by_path = {item.path: item.disclosure.encoded for item in held}
    for item in held:
        if item.disclosure.encoded in chosen:
            for cut in range(1, len(item.path)):
                ancestor = by_path.get(item.path[:cut])
                if ancestor is not None:
                    chosen.add(ancestor)
    presented = SdJwt(parsed.jwt, tuple(d for d in parsed.disclosures if d in chosen))
    if holder_key is None:
        return presented.serialize()
    if audience is None or nonce is None:
        raise ValueError("a key-bound presentation needs an audience and a nonce")
    now = epoch(iat if iat is not None else dt.datetime.now(dt.UTC))
    kb_payload = {
        "iat": now,
        "aud": audience,
        "nonce": nonce,
        "sd_hash": sd_hash(presented.without_kb()),
    }
    kb = sign_jws({"alg": "ES256", "typ": KB_TYP}, kb_payload, holder_key)
    return presented.without_kb() + kb


# --------------------------------------------------------------------------- verifier

IssuerKeyResolver = Callable[[Mapping[str, Any], Mapping[str, Any]], ECKey | None]
"""(JOSE header, *unverified* payload) -> the issuer's key, or None if not trusted/known.

``kid`` and ``iss`` are only lookup hints into keys the verifier already trusts; keys
embedded in the token (``jwk``, ``x5c``, ``jku``) must never be returned from here.
"""


def keys_by_kid(keys: Mapping[str, ECKey]) -> IssuerKeyResolver:
    """A resolver over a fixed ``kid -> key`` mapping (tests, a single issuer)."""

    def resolve(header: Mapping[str, Any], _payload: Mapping[str, Any]) -> ECKey | None:
        kid = header.get("kid")
        return keys.get(kid) if isinstance(kid, str) else None

    return resolve


@dataclass(frozen=True, slots=True)
class VerificationPolicy:
    """What the verifier insists on. The defaults are those of the staff passport."""

    typ: str | None = VC_TYP  # expected JOSE typ of the issuer JWT; None skips the check
    require_key_binding: bool = True  # by policy, never "if a KB-JWT happens to be present"
    require_exp: bool = True
    leeway_seconds: int = 60  # clock skew allowed on exp / nbf / KB iat
    kb_max_age_seconds: int = 300  # a KB-JWT older than this (plus leeway) is refused
    not_disclosable: frozenset[str] = frozenset()  # top-level claims that must be plain


@dataclass(frozen=True, slots=True)
class VerifiedSdJwt:
    """A verified presentation. ``claims`` is the disclosed view without ``_sd``/``_sd_alg``."""

    header: dict[str, Any]
    claims: dict[str, Any]
    disclosed: tuple[Path, ...]
    key_bound: bool
    kb_payload: dict[str, Any] | None


def _typ_matches(actual: Any, expected: str) -> bool:
    if not isinstance(actual, str):
        return False
    got: str = actual.lower().removeprefix("application/")
    return got == expected.lower().removeprefix("application/")


def _number(payload: Mapping[str, Any], name: str, what: str, prefix: str) -> float | None:
    value = payload.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise VerificationError(f"{prefix}_malformed", f"The {what}'s {name} is not a number.")
    return float(value)


def verify(
    presentation: str,
    *,
    issuer_keys: IssuerKeyResolver,
    now: dt.datetime | int,
    policy: VerificationPolicy = VerificationPolicy(),
    audience: str | None = None,
    nonce_check: Callable[[str], bool] | None = None,
) -> VerifiedSdJwt:
    """Verify an SD-JWT presentation (RFC 9901 sections 7.1-7.3) or raise VerificationError.

    ``nonce_check(nonce)`` is called once, last, after every other check has passed; it must
    return True only for a nonce this verifier issued and has not yet seen, and consume it
    (the caller owns single use). With key binding required, ``audience`` and ``nonce_check``
    are mandatory.
    """
    if policy.require_key_binding and (audience is None or nonce_check is None):
        raise TypeError("key binding is required: pass audience and nonce_check")
    try:
        return _verify(presentation, issuer_keys, epoch(now), policy, audience, nonce_check)
    except RecursionError as exc:
        raise VerificationError("malformed", "The SD-JWT is nested too deeply.") from exc


def _verify(
    presentation: str,
    issuer_keys: IssuerKeyResolver,
    now: int,
    policy: VerificationPolicy,
    audience: str | None,
    nonce_check: Callable[[str], bool] | None,
) -> VerifiedSdJwt:
    parts = SdJwt.parse(presentation)
    jws = parse_jws(parts.jwt, what="issuer-signed JWT", prefix="jwt")
    if policy.typ is not None and not _typ_matches(jws.header.get("typ"), policy.typ):
        raise VerificationError("jwt_typ", f"The credential's typ is not {policy.typ}.")
    key = issuer_keys(jws.header, jws.payload)
    if key is None:
        raise VerificationError("issuer_key_unknown", "The issuer's signing key is not trusted.")
    if not signature_valid(jws, key):
        raise VerificationError(
            "jwt_signature", "The issuer's signature on the credential is not valid."
        )

    claims, held = _process(jws.payload, parts.disclosures)
    for item in held:
        if len(item.path) == 1 and item.path[0] in policy.not_disclosable:
            raise VerificationError(
                "claim_not_disclosable",
                f"The claim {item.path[0]!r} must not be selectively disclosable.",
            )

    leeway = policy.leeway_seconds
    exp = _number(jws.payload, "exp", "credential", "jwt")
    nbf = _number(jws.payload, "nbf", "credential", "jwt")
    if exp is None and policy.require_exp:
        raise VerificationError("missing_claim", "The credential has no expiry (exp).")
    if exp is not None and now >= exp + leeway:
        raise VerificationError("expired", "The credential has expired.")
    if nbf is not None and now + leeway < nbf:
        raise VerificationError("not_yet_valid", "The credential is not valid yet (nbf).")

    if parts.kb_jwt is None:
        if policy.require_key_binding:
            raise VerificationError(
                "kb_missing", "The presentation has no Key Binding JWT, and one is required."
            )
        return VerifiedSdJwt(jws.header, claims, tuple(h.path for h in held), False, None)
    if audience is None or nonce_check is None:
        # Key binding not required and nothing to check it against: ignored (RFC 9901 7.3).
        return VerifiedSdJwt(jws.header, claims, tuple(h.path for h in held), False, None)

    kb_payload = _verify_kb(parts, jws.payload, now, policy, audience, nonce_check)
    return VerifiedSdJwt(jws.header, claims, tuple(h.path for h in held), True, kb_payload)


def _verify_kb(
    parts: SdJwt,
    payload: Mapping[str, Any],
    now: int,
    policy: VerificationPolicy,
    audience: str,
    nonce_check: Callable[[str], bool],
) -> dict[str, Any]:
    cnf = payload.get("cnf")
    if not isinstance(cnf, dict) or "jwk" not in cnf:
        raise VerificationError(
            "cnf_missing", "The credential names no holder key (cnf.jwk) to bind to."
        )
    try:
        holder_key = public_key_from_jwk(cnf["jwk"])
    except ValueError as exc:
        raise VerificationError(
            "cnf_invalid", "The credential's holder key (cnf.jwk) is not a P-256 public key."
        ) from exc
    assert parts.kb_jwt is not None
    kb = parse_jws(parts.kb_jwt, what="Key Binding JWT", prefix="kb")
    if not _typ_matches(kb.header.get("typ"), KB_TYP):
        raise VerificationError("kb_typ", f"The Key Binding JWT's typ is not {KB_TYP}.")
    if not signature_valid(kb, holder_key):
        raise VerificationError(
            "kb_signature", "The Key Binding JWT is not signed by the credential's holder key."
        )
    claims = kb.payload
    iat = _number(claims, "iat", "Key Binding JWT", "kb")
    for name in ("aud", "nonce", "sd_hash"):
        if not isinstance(claims.get(name), str):
            raise VerificationError(
                "kb_malformed", f"The Key Binding JWT's {name} is missing or not a string."
            )
    if iat is None:
        raise VerificationError("kb_malformed", "The Key Binding JWT has no iat.")
    if claims["sd_hash"] != sd_hash(parts.without_kb()):
        raise VerificationError(
            "kb_sd_hash", "The Key Binding JWT's sd_hash does not match the presentation."
        )
    if claims["aud"] != audience:
        raise VerificationError(
            "kb_aud", "The Key Binding JWT is addressed to a different audience."
        )
    if iat > now + policy.leeway_seconds:
        raise VerificationError("kb_iat_future", "The Key Binding JWT is dated in the future.")
    if iat < now - policy.kb_max_age_seconds - policy.leeway_seconds:
        raise VerificationError("kb_too_old", "The Key Binding JWT is too old.")
    if not nonce_check(claims["nonce"]):
        raise VerificationError(
            "kb_nonce", "The Key Binding JWT's nonce is not one we issued, or was already used."
        )
    return dict(claims)
