"""Account names from a target's template: ASCII, lower case, unique, never empty.

``{first_initial}{last_name}`` for Siân O'Brien-Nuñez gives ``sobrien-nunez``; a clash gives
``sobrien-nunez2``, ``sobrien-nunez3`` ... . Names are cut to the target's maximum length,
cutting the base further to make room for a numeric suffix.
"""

from __future__ import annotations

import re
import string
import unicodedata
from collections.abc import Iterable, Mapping
from typing import Final

# Letters NFKD does not decompose into an ASCII base letter.
_FOLD: Final[dict[int, str]] = str.maketrans(
    {
        "ß": "ss",
        "æ": "ae",
        "Æ": "ae",
        "ø": "o",
        "Ø": "o",
        "œ": "oe",
        "Œ": "oe",
        "ł": "l",
        "Ł": "l",
        "đ": "d",
        "Đ": "d",
        "ð": "d",
        "Ð": "d",
        "þ": "th",
        "Þ": "th",
        "\u0131": "i",  # dotless i
    }
)
_DISALLOWED: Final[re.Pattern[str]] = re.compile(r"[^a-z0-9._-]+")
_EDGES: Final[str] = "._-"


def fold(text: str) -> str:
    """Lower-case ASCII with only ``a-z 0-9 . _ -`` kept (Siân -> sian, Nuñez -> nunez)."""
    if not text.isascii():
        decomposed = unicodedata.normalize("NFKD", text.translate(_FOLD))
        text = "".join(c for c in decomposed if not unicodedata.combining(c))
    return _DISALLOWED.sub("", text.lower())


class UsernameAllocator:
    """Allocates unique usernames on one target from its template.

    ``taken`` holds the names already used on the target (compared case-insensitively);
    every name allocated is added to it, so a plan never hands out one name twice.
    """

    def __init__(self, template: str, max_length: int, taken: Iterable[str] = ()) -> None:
        if max_length < 2:
            raise ValueError("max_length must leave room for at least one character and a suffix")
        self.template = template
        self.max_length = max_length
        self._taken: set[str] = {t.lower() for t in taken}
        self._next_suffix: dict[str, int] = {}
        self._fields = [f for _, f, _, _ in string.Formatter().parse(template) if f is not None]

    def base(self, fields: Mapping[str, str | None]) -> str:
        """The name before de-duplication (already folded and cut to length)."""
        first = fold(fields.get("first_name") or "")
        values = {
            "first_name": first,
            "last_name": fold(fields.get("last_name") or ""),
            "known_as": fold(fields.get("known_as") or "") or first,
            "first_initial": first[:1],
            "employee_number": fold(fields.get("employee_number") or ""),
        }
        name = fold(self.template.format_map({f: values.get(f, "") for f in self._fields}))
        name = name.strip(_EDGES)
        if not name:
            name = values["employee_number"].strip(_EDGES) or "user"
        return name[: self.max_length].rstrip(_EDGES) or name[: self.max_length]

    def allocate(self, fields: Mapping[str, str | None]) -> str:
        """A name not yet taken on this target; it becomes taken."""
        base = self.base(fields)
        if base not in self._taken:
            self._taken.add(base)
            return base
        n = self._next_suffix.get(base, 2)
        while True:
            suffix = str(n)
            stem = base[: max(self.max_length - len(suffix), 1)].rstrip(_EDGES) or base[:1]
            candidate = stem + suffix
            n += 1
            if candidate not in self._taken:
                self._next_suffix[base] = n
                self._taken.add(candidate)
                return candidate

    def is_taken(self, name: str) -> bool:
        return name.lower() in self._taken
