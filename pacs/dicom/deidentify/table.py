"""PS3.15 Table E.1-1, the Basic Profile's action per attribute, as the union of two releases.

The rows come from the packages pacs.dicom.deidentify.sources reads: release 2020, with
the option columns, and release 2026c, the Basic Profile's codes only. Every attribute
either lists is in the table. Its Basic Profile code is 2026c's where that release
lists it, else 2020's; where the two (or two rows of one release) give different codes
the stricter is kept, as pacs.dicom.deidentify.codes orders them, and the disagreement
recorded. Option columns are 2020's: an attribute that release does not list is
retained by no option, which keeps the profile at least as strict as the Basic one.
Nothing here is typed by hand but the names of the table's columns; the table is built
at first use, not at import.
"""

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from functools import cache

from pacs.dicom.deidentify.codes import stricter
from pacs.dicom.deidentify.sources import Source, release_2026c, standard_2020

_TAG = re.compile(r"\(([0-9A-F]{4}),([0-9A-F]{4})\)")
# Rows whose tag is a pattern: repeating groups and the private attributes.
CURVE_PATTERN = "(50XX,XXXX)"
OVERLAY_PATTERNS = ("(60XX,3000)", "(60XX,4000)")
PRIVATE_PATTERN = "(GGGG,EEEE) WHERE GGGG IS ODD"
_KNOWN_PATTERNS = {CURVE_PATTERN, *OVERLAY_PATTERNS, PRIVATE_PATTERN}


class Option(StrEnum):
    """The table's option columns (PS3.15 E.3), named by their column in the 2020 file."""

    RETAIN_SAFE_PRIVATE = "rtnSafePrivOpt"
    RETAIN_UIDS = "rtnUIDsOpt"
    RETAIN_DEVICE_IDENTITY = "rtnDevIdOpt"
    RETAIN_INSTITUTION_IDENTITY = "rtnInstIdOpt"
    RETAIN_PATIENT_CHARACTERISTICS = "rtnPatCharsOpt"
    RETAIN_FULL_DATES = "rtnLongFullDatesOpt"
    RETAIN_MODIFIED_DATES = "rtnLongModifDatesOpt"
    CLEAN_DESCRIPTORS = "cleanDescOpt"
    CLEAN_STRUCTURED_CONTENT = "cleanStructContOpt"
    CLEAN_GRAPHICS = "cleanGraphOpt"


@dataclass(frozen=True, slots=True)
class Row:
    """One attribute of Table E.1-1: its Basic Profile action code (such as "X/Z/D") and the
    action code ("K", "C", or "X") of each option that changes it."""

    tag: str
    name: str
    basic: str
    options: Mapping[Option, str]


@dataclass(frozen=True, slots=True)
class Disagreement:
    """An attribute given two codes: the older (or first) row's, the newer's, the one kept,
    and where: one release (an attribute it lists twice) or the releases compared."""

    tag: str
    name: str
    older: str
    newer: str
    kept: str
    where: str


@dataclass(frozen=True, slots=True)
class ActionTable:
    """Table E.1-1 split into rows for single tags (keyed by tag as int) and pattern rows."""

    by_tag: Mapping[int, Row]
    patterns: Mapping[str, Row]
    sources: Mapping[str, int]  # attributes each release lists, by release
    disagreements: tuple[Disagreement, ...]

    @property
    def attribute_count(self) -> int:
        """Attributes in the table, pattern rows included."""
        return len(self.by_tag) + len(self.patterns)

    def rows(self) -> list[tuple[int | str, Row]]:
        """Every row with its key: the tag as int, or the pattern."""
        return [*self.by_tag.items(), *self.patterns.items()]


def _key(tag: str) -> int | str:
    if match := _TAG.fullmatch(tag):
        return int(match[1] + match[2], 16)
    if tag in _KNOWN_PATTERNS:
        return tag
    raise ValueError(f"Table E.1-1 row with an unknown tag form: {tag}")


def _row(entry: Mapping[str, str]) -> Row:
    options = {option: entry[option.value] for option in Option if option.value in entry}
    return Row(entry["tag"], entry["name"], entry["basicProfile"], options)


def _split(rows: Mapping[int | str, Row]) -> tuple[dict[int, Row], dict[str, Row]]:
    by_tag = {key: row for key, row in rows.items() if isinstance(key, int)}
    return by_tag, {key: row for key, row in rows.items() if isinstance(key, str)}


def _code(older: Row, newer: Row, where: str, disagreements: list[Disagreement]) -> str:
    """The newer row's code unless the older's is stricter; a difference is recorded."""
    if older.basic == newer.basic:
        return newer.basic
    kept = stricter(older.basic, newer.basic)
    disagreement = Disagreement(newer.tag, older.name, older.basic, newer.basic, kept, where)
    disagreements.append(disagreement)
    return kept


def parse(entries: Iterable[Mapping[str, str]], source: str = "") -> ActionTable:
    """One release's table from its rows; every tag must be a tag or a known pattern. An
    attribute listed twice keeps the stricter code and only the options both rows give."""
    rows: dict[int | str, Row] = {}
    disagreements: list[Disagreement] = []
    for entry in entries:
        row = _row(entry)
        key = _key(row.tag)
        if (first := rows.get(key)) is not None:
            options = {o: c for o, c in first.options.items() if row.options.get(o) == c}
            row = Row(first.tag, first.name, _code(first, row, source, disagreements), options)
        rows[key] = row
    by_tag, patterns = _split(rows)
    return ActionTable(by_tag, patterns, {source: len(rows)}, tuple(disagreements))


def merge(older: ActionTable, newer: ActionTable) -> ActionTable:
    """The union of two releases' tables (see the module's docstring)."""
    old_rows = dict(older.rows())
    disagreements = [*older.disagreements, *newer.disagreements]
    where = " vs ".join([*older.sources, *newer.sources])
    rows: dict[int | str, Row] = {}
    for key, row in newer.rows():
        if (old := old_rows.get(key)) is None:
            rows[key] = Row(row.tag, row.name, row.basic, {})  # no option retains it
        else:
            rows[key] = Row(old.tag, old.name, _code(old, row, where, disagreements), old.options)
    for key, row in old_rows.items():
        rows.setdefault(key, row)
    by_tag, patterns = _split(rows)
    sources = {**older.sources, **newer.sources}
    return ActionTable(by_tag, patterns, sources, tuple(disagreements))


def _parse_source(source: Source) -> ActionTable:
    return parse(source.entries, source.name)


@cache
def action_table() -> ActionTable:
    """Table E.1-1, the union of releases 2020 and 2026c, built once at first use."""
    return merge(_parse_source(standard_2020()), _parse_source(release_2026c()))
