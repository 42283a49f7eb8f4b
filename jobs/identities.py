"""Whether two identities name the same person, and whether one is a configured approver.

``strip().casefold()`` lets a second identity be made by look-alike: ``аgent-7`` with a Cyrillic
``а``, ``agent\u200b-7`` with a zero-width space, ``ａgent-7`` in full width. Identities are compared
on a skeleton instead: NFKC, format characters (Unicode category Cf) and spaces removed, case
folded, and every character that Unicode lists as confusable with a Latin one replaced by it (the
confusables data of the ``confusable-homoglyphs`` package). Approvers are configured identities
(``BILLING_APPROVERS``): a name nobody configured cannot approve, however it is spelt.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Iterable
from functools import cache

from confusable_homoglyphs import confusables  # type: ignore[import-untyped]


@cache
def _folded(char: str) -> str:
    """The ASCII look-alike of ``char`` when Unicode lists one, else the smallest of its look-alikes."""
    if char.isascii():
        return char
    homoglyphs: list[str] = [str(entry["c"]) for entry in confusables.confusables_data.get(char, [])]
    ascii_ones = [glyph for glyph in homoglyphs if glyph.isascii()]
    if ascii_ones:
        return min(ascii_ones)
    return min([char, *homoglyphs])


def skeleton(identity: str) -> str:
    """The form identities are compared in (see the module docstring)."""
    text = unicodedata.normalize("NFKC", identity)
    text = "".join(char for char in text if unicodedata.category(char) != "Cf" and not char.isspace())
    text = "".join(_folded(char) for char in text.casefold())
    return unicodedata.normalize("NFKC", text).casefold()


def same_person(one: str, other: str) -> bool:
    return skeleton(one) == skeleton(other)


def configured(identity: str, approvers: Iterable[str]) -> str | None:
    """The configured approver ``identity`` stands for, or None."""
    wanted = skeleton(identity)
    return next((name for name in approvers if skeleton(name) == wanted), None)
