"""Digital Staff Passport micro-benchmark: credentials issued/s and presentations verified/s.

Pure, in-memory, one process (one core): ES256 signing and verification dominate. Measures

- ``issue``: build an employment SD-JWT VC (pydantic model -> disclosures -> ES256 signature);
- ``present``: holder picks 2 of 3 personal claims and signs a KB-JWT;
- ``verify``: full verifier path (issuer signature, disclosures, KB-JWT, nonce, vct);
- ``verify via OpenID4VP pipeline``: a direct_post body through the verifier's pipeline
  (parse, trust registry, DCQL claims, cached status list token re-verified);
- ``es256 sign`` / ``es256 verify``: the raw joserfc/cryptography limit measured in the same run.

Run: ``.venv/bin/python bench/passport.py [--count N]``, or ``python -m bench.run --only passport``
to write its section of docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import time
from collections.abc import Callable

from joserfc.jwk import ECKey

from pasa.passport._jose import parse_jws, public_jwk, sign_jws, signature_valid
from pasa.passport.keys import KeyRing
from pasa.passport.sdjwt import present
from pasa.passport.vc import (
    EmploymentCredential,
    StatusReference,
    build_credential,
    verify_credential,
)

ISSUER = "https://trust-a.nhs.uk/passport"
AUD = "x509_san_dns:verifier.trust-b.nhs.uk"
NOW = dt.datetime(2030, 3, 1, 9, 0, tzinfo=dt.UTC)

CLAIMS = EmploymentCredential(
    given_name="Ada",
    family_name="Lovelace",
    assignment_number="12345678-2",
    organisation_code="RR8",
    organisation_name="Leeds Teaching Hospitals NHS Trust",
    position_title="Specialty Registrar, Cardiology",
    staff_group="Medical and Dental",
    job_role="Specialty Registrar",
    assignment_category="fixed_term",
    start_date=dt.date(2029, 8, 1),
    end_date=dt.date(2031, 8, 5),
)


def _rate(count: int, step: Callable[[int], object]) -> tuple[float, float]:
    started = time.perf_counter()
    for i in range(count):
        step(i)
    seconds = time.perf_counter() - started
    return count / seconds, seconds / count * 1e6


def _pipeline(count: int, ring: KeyRing, holder: ECKey) -> tuple[float, float]:
    """The verifier's whole check per direct_post response: parse, trust registry, issuer
    signature, disclosures, KB-JWT (aud = our client id, session nonce), DCQL claims, and
    the status list token from the cache (re-verified each time, as the service does)."""
    from urllib.parse import urlencode

    from pasa.passport.openid4vp import QUERIES, client_id, parse_response, verify_presentations
    from pasa.passport.status_list import StatusList, sign_status_list, verify_status_list
    from pasa.passport.trust import TrustedIssuer, TrustRegistry

    audience = client_id("https://trust-b.nhs.uk/passport/verifier/response")
    status_uri = ISSUER + "/status/1"
    cached = sign_status_list(
        StatusList(65_536, 2),
        uri=status_uri,
        key=ring.current.private_key,
        kid=ring.current.kid,
        iat=NOW,
    )
    registry = TrustRegistry([TrustedIssuer(ISSUER, "RR8", EmploymentCredential.vct)])
    resolver = ring.resolver(NOW, issuer=ISSUER)
    public = ring.current.public_key
    paths = [(name,) for name in QUERIES["employment"].claims]
    bodies = []
    for i in range(count):
        credential = build_credential(
            CLAIMS,
            issuer=ISSUER,
            key=ring.current,
            holder_jwk=public_jwk(holder),
            status=StatusReference(status_uri, i),
            iat=NOW,
        )
        vp = present(
            credential, holder_key=holder, audience=audience, nonce=f"n{i}", iat=NOW, paths=paths
        )
        bodies.append(urlencode({"state": f"s{i}", "vp_token": f'{{"employment": ["{vp}"]}}'}))

    def one(i: int) -> object:
        return verify_presentations(
            parse_response(bodies[i]),
            ["employment"],
            issuer_keys=resolver,
            registry=registry,
            status_lookup=lambda uri, _iss: verify_status_list(
                cached, key=public, expected_uri=uri, now=NOW
            ),
            nonce_check=lambda n: n == f"n{i}",
            audience=audience,
            now=NOW,
        )

    return _rate(count, one)


def run(count: int) -> list[tuple[str, float, float]]:
    ring = KeyRing.new(NOW - dt.timedelta(days=1))
    holder = ECKey.generate_key("P-256", private=True)
    holder_jwk = public_jwk(holder)
    rows: list[tuple[str, float, float]] = []

    def issue_one(i: int) -> str:
        return build_credential(
            CLAIMS,
            issuer=ISSUER,
            key=ring.current,
            holder_jwk=holder_jwk,
            status=StatusReference(ISSUER + "/status/1", i),
            iat=NOW,
        )

    rows.append(("issue (employment SD-JWT VC)", *_rate(count, issue_one)))
    credentials = [issue_one(i) for i in range(count)]

    def present_one(i: int) -> str:
        return present(
            credentials[i],
            holder_key=holder,
            audience=AUD,
            nonce=f"nonce-{i}",
            iat=NOW,
            paths=[("given_name",), ("family_name",)],
        )

    rows.append(("present (2 of 3 disclosures + KB-JWT)", *_rate(count, present_one)))
    presentations = [present_one(i) for i in range(count)]
    nonces = {f"nonce-{i}" for i in range(count)}
    resolver = ring.resolver(NOW, issuer=ISSUER)

    def consume(nonce: str) -> bool:
        if nonce in nonces:
            nonces.remove(nonce)
            return True
        return False

    def verify_one(i: int) -> object:
        return verify_credential(
            presentations[i],
            issuer_keys=resolver,
            now=NOW,
            audience=AUD,
            nonce_check=consume,
            expected_vct={EmploymentCredential.vct},
        )

    rows.append(("verify (issuer sig + disclosures + KB-JWT)", *_rate(count, verify_one)))
    rows.append(("verify via OpenID4VP pipeline (status cached)", *_pipeline(count, ring, holder)))

    key = ring.current.private_key

    def raw_sign(i: int) -> str:
        return sign_jws({"alg": "ES256"}, {"i": i}, key)

    rows.append(("limit: raw ES256 sign", *_rate(count, raw_sign)))
    token = parse_jws(sign_jws({"alg": "ES256"}, {"i": 0}, key), what="t", prefix="t")
    public = ring.current.public_key

    def raw_verify(_i: int) -> bool:
        return signature_valid(token, public)

    rows.append(("limit: raw ES256 verify", *_rate(count, raw_verify)))
    return rows


START = "<!-- passport:start -->"
END = "<!-- passport:end -->"


def _pin_one_core() -> None:
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})


def section(count: int, command: str) -> list[str]:
    """The benchmark's section of docs/benchmarks.md (run pinned to one core, then unpinned)."""
    before = os.sched_getaffinity(0) if hasattr(os, "sched_getaffinity") else None
    _pin_one_core()
    try:
        rows = run(count)
    finally:
        if before is not None:
            os.sched_setaffinity(0, before)
    by_name = {name: per_second for name, per_second, _ in rows}
    raw_sign = by_name["limit: raw ES256 sign"]
    raw_verify = by_name["limit: raw ES256 verify"]
    out = [
        START,
        "## Digital Staff Passport: credentials issued and presentations verified (one core)",
        "",
        f"`{command}` — pure, in memory, pinned to one core, {count:,} operations per row. "
        "Each row is compared with the raw ES256 operation it is bound by, measured in the same "
        "run (issuing signs once; verifying checks two signatures: the issuer's and the KB-JWT).",
        "",
        "| step | per second | µs each | vs raw ES256 |",
        "|---|---:|---:|---:|",
    ]
    for name, per_second, micros in rows:
        limit = raw_sign if name.startswith(("issue", "present")) else raw_verify
        ratio = "—" if name.startswith("limit") else f"{per_second / limit:.2f}"
        out.append(f"| {name} | {per_second:,.0f} | {micros:,.0f} | {ratio} |")
    out += [
        "",
        "- The OpenID4VP row is the verifier's whole pipeline for one `direct_post` body: parse, "
        "trust registry, issuer signature, disclosures, KB-JWT (nonce, audience, `sd_hash`), DCQL "
        "claims and the cached status list token re-verified.",
        "",
        END,
        "",
    ]
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=2000, help="operations per row")
    args = parser.parse_args()
    _pin_one_core()
    rows = run(args.count)
    print(f"passport micro-benchmark, one core, {args.count} operations per row")
    print(f"{'step':<44} {'per second':>12} {'µs each':>10}")
    for name, per_second, micros in rows:
        print(f"{name:<44} {per_second:>12,.0f} {micros:>10,.0f}")


if __name__ == "__main__":
    main()
