"""Digital Staff Passport micro-benchmark: credentials issued/s and presentations verified/s.

Pure, in-memory, one process (one core): ES256 signing and verification dominate. Measures

- ``issue``: build an employment SD-JWT VC (pydantic model -> disclosures -> ES256 signature);
- ``present``: holder picks 2 of 3 personal claims and signs a KB-JWT;
- ``verify``: full verifier path (issuer signature, disclosures, KB-JWT, nonce, vct);
- ``es256 sign`` / ``es256 verify``: the raw joserfc/cryptography limit measured in the same run.

Run: ``.venv/bin/python bench/passport.py [--count N]``.
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=2000, help="operations per row")
    args = parser.parse_args()
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})  # one core
    rows = run(args.count)
    print(f"passport micro-benchmark, one core, {args.count} operations per row")
    print(f"{'step':<44} {'per second':>12} {'µs each':>10}")
    for name, per_second, micros in rows:
        print(f"{name:<44} {per_second:>12,.0f} {micros:>10,.0f}")


if __name__ == "__main__":
    main()
