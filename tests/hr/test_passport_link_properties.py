"""Properties of the pure pre-hire ↔ ESR matching: it never links anyone twice, never links
what it reports as ambiguous, and links only people who really match."""

from __future__ import annotations

import datetime as dt

from hypothesis import given
from hypothesis import strategies as st

from pasa.hr.passport_link import BY_REGISTRATION, NewRow, PreHire, match

DAYS = [dt.date(2026, 8, 5), dt.date(2026, 8, 6)]
NAMES = ["Lovelace", "LOVELACE ", "Byron"]
REGS = [None, ("nmc", "1"), ("nmc", "2"), ("gmc", "1")]

pre_hires = st.lists(
    st.builds(
        lambda i, org, name, dob, start, reg: PreHire(
            state=f"s{i}",
            organisation_id=org,
            person_id=i,
            provisional=f"PP{i}",
            start_date=start,
            family_name=name,
            birth_date=dob,
            registrations=frozenset([reg] if reg else []),
        ),
        st.integers(0, 10_000),
        st.sampled_from([1, 2]),
        st.sampled_from(NAMES),
        st.sampled_from([None, *DAYS]),
        st.sampled_from(DAYS),
        st.sampled_from(REGS),
    ),
    max_size=5,
    unique_by=lambda p: p.person_id,
)
rows = st.lists(
    st.builds(
        lambda n, org, emp, name, dob, start, reg: NewRow(
            row_number=n,
            organisation_id=org,
            employee_number=f"E{emp}",
            assignment_number=f"A{n}",
            is_primary=True,
            family_name=name,
            birth_date=dob,
            start_date=start,
            registration=reg,
        ),
        st.integers(1, 10_000),
        st.sampled_from([1, 2]),
        st.integers(0, 4),
        st.sampled_from(NAMES),
        st.sampled_from(DAYS),
        st.sampled_from(DAYS),
        st.sampled_from(REGS),
    ),
    max_size=6,
    unique_by=lambda r: r.row_number,
)


@given(pre_hires, rows)
def test_links_are_one_to_one_real_matches_and_never_ambiguous(
    pres: list[PreHire], news: list[NewRow]
) -> None:
    links, ambiguous = match(pres, news)
    linked_people = [link.pre_hire.person_id for link in links]
    linked_employees = [(lk.row.organisation_id, lk.row.employee_number) for lk in links]
    assert len(set(linked_people)) == len(linked_people)
    assert len(set(linked_employees)) == len(linked_employees)
    unsure = {p.person_id for a in ambiguous for p in a.pre_hires}
    assert not unsure & set(linked_people)
    for link in links:
        pre = link.pre_hire
        assert pre.organisation_id == link.row.organisation_id
        # An employee links through their primary row; the match may be on any of their rows.
        theirs = [
            r
            for r in news
            if (r.organisation_id, r.employee_number)
            == (link.row.organisation_id, link.row.employee_number)
        ]
        if link.matched_on == BY_REGISTRATION:
            assert any(r.registration in pre.registrations for r in theirs)
        else:
            assert any(
                " ".join(r.family_name.split()).casefold()
                == " ".join(pre.family_name.split()).casefold()
                and (r.birth_date, r.start_date) == (pre.birth_date, pre.start_date)
                for r in theirs
            )
