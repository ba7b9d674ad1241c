"""docs/conformance-statement.md against the code's own lists, both ways, so it cannot go stale.

Each table the statement marks with `<!-- table: NAME -->` is read here and compared with
what the code accepts, proposes, matches and defaults to.
"""

import re
from pathlib import Path

import pytest
from pydicom.charset import python_encoding
from pydicom.datadict import tag_for_keyword
from pydicom.uid import UID

import pacs
from pacs.codec.syntaxes import DECODED
from pacs.config import ServerSettings
from pacs.dicom.identity import IMPLEMENTATION_CLASS_UID
from pacs.dicom.levels import PATIENT_KEYWORDS, SERIES_KEYWORDS, STUDY_KEYWORDS
from pacs.dicom.matching import COMPUTED, RANGE_VRS, UNIQUE_KEYS, WILDCARD_VRS
from pacs.net.contexts import (
    QUERY_RETRIEVE_FIND,
    QUERY_RETRIEVE_GET,
    QUERY_RETRIEVE_MOVE,
    STORAGE_COMMITMENT,
    UNCOMPRESSED,
    VERIFICATION,
    commitment_contexts,
    query_contexts,
    retrieve_contexts,
    storage_sop_classes,
    storage_transfer_syntaxes,
    verification_contexts,
)
from pacs.net.suboperations import sub_association_contexts

STATEMENT = Path(__file__).parents[2] / "docs" / "conformance-statement.md"
# pydicom's names for character sets that are no DICOM Defined Terms (PS3.3 C.12.1.1.2).
PYDICOM_ALIASES = {"", "ISO 2022 58", "ISO 2022 GBK"}

Row = dict[str, str]


def _tables() -> dict[str, list[Row]]:
    """Every marked table: its rows as {header: cell}."""
    tables: dict[str, list[Row]] = {}
    lines = STATEMENT.read_text(encoding="utf-8").splitlines()
    for n, line in enumerate(lines):
        if match := re.fullmatch(r"<!-- table: ([\w-]+) -->", line):
            header = [cell.strip() for cell in lines[n + 1].strip("|").split("|")]
            rows = []
            for row in lines[n + 3 :]:
                if not row.startswith("|"):
                    break
                cells = [cell.strip() for cell in row.strip("|").split("|")]
                rows.append(dict(zip(header, cells, strict=True)))
            tables[match[1]] = rows
    return tables


TABLES = _tables()


def _column(table: str, header: str) -> list[str]:
    return [row[header] for row in TABLES[table]]


def test_storage_sop_classes_are_those_accepted_and_named_as_pydicom_names_them() -> None:
    rows = TABLES["storage-sop-classes"]

    assert [row["SOP Class UID"] for row in rows] == storage_sop_classes()
    for row in rows:
        assert row["SOP Class"] == UID(row["SOP Class UID"]).name
        assert (row["SCU"], row["SCP"]) == ("Yes", "Yes")


def test_the_other_sop_classes_are_those_the_server_registers() -> None:
    offered = {
        VERIFICATION,
        *QUERY_RETRIEVE_FIND,
        *QUERY_RETRIEVE_MOVE,
        *QUERY_RETRIEVE_GET,
        STORAGE_COMMITMENT,
    }
    accepted = {
        str(cx.abstract_syntax)
        for cx in [
            *verification_contexts(),
            *query_contexts(),
            *retrieve_contexts(),
            *commitment_contexts(),
        ]
    }
    assert accepted == offered

    assert set(_column("sop-classes", "SOP Class UID")) == offered
    assert all(row["SCP"] == "Yes" for row in TABLES["sop-classes"])
    overview = {u for u in _column("network-services", "SOP Class UID") if u}
    assert overview == offered


def test_transfer_syntaxes_accepted_for_storage_in_the_order_of_preference() -> None:
    rows = TABLES["storage-transfer-syntaxes"]

    assert [row["UID"] for row in rows] == storage_transfer_syntaxes()
    assert all(row["Transfer Syntax"] == UID(row["UID"]).name for row in rows)


def test_transfer_syntaxes_of_the_other_contexts_are_the_uncompressed_ones() -> None:
    for cx in [*verification_contexts(), *query_contexts(), *commitment_contexts()]:
        assert [str(ts) for ts in cx.transfer_syntax] == list(UNCOMPRESSED)

    assert _column("other-transfer-syntaxes", "UID") == list(UNCOMPRESSED)


def test_decoded_transfer_syntaxes_are_those_the_codecs_convert() -> None:
    assert set(_column("decoded-transfer-syntaxes", "UID")) == set(DECODED)


def test_proposed_transfer_syntaxes_are_those_of_a_sub_association() -> None:
    [context] = sub_association_contexts({(storage_sop_classes()[0], UNCOMPRESSED[0])})

    proposed = [str(ts) for ts in context.transfer_syntax]
    assert _column("proposed-transfer-syntaxes", "UID") == proposed


@pytest.mark.parametrize(
    ("table", "level", "keywords"),
    [
        ("patient-keys", "PATIENT", PATIENT_KEYWORDS),
        ("study-keys", "STUDY", STUDY_KEYWORDS),
        ("series-keys", "SERIES", SERIES_KEYWORDS),
    ],
)
def test_each_levels_keys_are_those_the_index_keeps_there(
    table: str, level: str, keywords: frozenset[str]
) -> None:
    rows = TABLES[table]

    assert {row["Attribute"] for row in rows} == keywords
    assert {row["Level"] for row in rows} == {level}
    _check_tags(rows)


def test_computed_keys_and_their_levels() -> None:
    rows = TABLES["computed-keys"]

    assert {row["Attribute"]: row["Level"] for row in rows} == {
        keyword: str(level) for keyword, level in COMPUTED.items()
    }
    _check_tags(rows)


def _check_tags(rows: list[Row]) -> None:
    for row in rows:
        tag = tag_for_keyword(row["Attribute"])
        assert tag is not None
        assert row["Tag"] == f"({tag >> 16:04X},{tag & 0xFFFF:04X})"


def test_matching_kinds_and_unique_keys_are_stated_as_the_matcher_applies_them() -> None:
    text = " ".join(STATEMENT.read_text(encoding="utf-8").split())

    wildcard = ", ".join(sorted(WILDCARD_VRS)[:-1]) + f" and {sorted(WILDCARD_VRS)[-1]}"
    assert f"wildcard (`*` and `?`) on keys of VR {wildcard};" in text
    ranges = ", ".join(sorted(RANGE_VRS)[:-1]) + f" and {sorted(RANGE_VRS)[-1]}"
    assert f"range (`-`) on {ranges};" in text
    unique = ", ".join(f"{keyword} ({level})" for level, keyword in UNIQUE_KEYS.items())
    assert f"Unique keys: {unique}." in text


def test_association_defaults_are_the_codes() -> None:
    defaults = ServerSettings()

    for row in TABLES["association-limits"]:
        key = row["Setting"].strip("`")
        assert float(row["Default"]) == getattr(defaults, key), key
    stated = {row["Setting"].strip("`") for row in TABLES["association-limits"]}
    assert stated == {
        "max_pdu_length",
        "max_associations",
        "acse_timeout",
        "dimse_timeout",
        "network_timeout",
    }


def test_implementation_identity() -> None:
    rows = {row["Item"]: row["Value"] for row in TABLES["implementation"]}

    assert rows["Implementation Class UID"] == IMPLEMENTATION_CLASS_UID
    assert f"PACS_{pacs.__version__.replace('.', '')}" in rows["Implementation Version Name"]


def test_character_sets_are_those_pydicom_decodes() -> None:
    stated = set(_column("character-sets", "Defined Term"))

    assert stated == set(python_encoding) - PYDICOM_ALIASES
