"""PS3.15 Table E.1-1 as pacs builds it: the union of release 2020 (dicom-standard, with the
option columns) and release 2026c (dicom_anonymizer, the Basic Profile's codes), worked
out here again from the installed packages; the order of strictness; malformed rows; the
table read at first use; and what the union means for a de-identified data set."""

import importlib
import json
import re
import subprocess
import sys
from importlib import metadata
from pathlib import Path

import pytest
from pydicom.dataset import Dataset

from pacs.dicom.deidentify import Dates, Deidentifier, Profile, action_table
from pacs.dicom.deidentify.codes import BY_TYPE, Action, basic_action, stricter, strictness
from pacs.dicom.deidentify.table import Option, merge, parse

SECRET = b"unit secret"
LISTS = {
    "X_TAGS": "X",
    "Z_TAGS": "Z",
    "D_TAGS": "D",
    "U_TAGS": "U",
    "Z_D_TAGS": "Z/D",
    "X_Z_TAGS": "X/Z",
    "X_D_TAGS": "X/D",
    "X_Z_D_TAGS": "X/Z/D",
    "X_Z_U_STAR_TAGS": "X/Z/U*",
}
PATTERNS_2026C = {
    (0x5000, 0x0000, 0xFF00, 0x0000): "(50XX,XXXX)",
    (0x6000, 0x3000, 0xFF00, 0xFFFF): "(60XX,3000)",
    (0x6000, 0x4000, 0xFF00, 0xFFFF): "(60XX,4000)",
}


def _key(tag: str) -> int | str:
    match = re.fullmatch(r"\(([0-9A-F]{4}),([0-9A-F]{4})\)", tag)
    return int(match[1] + match[2], 16) if match else tag


def _release_2020() -> dict[int | str, list[dict[str, str]]]:
    distribution = metadata.distribution("dicom-standard")
    name = "confidentiality_profile_attributes.json"
    [file] = [f for f in distribution.files or () if f.name == name]
    rows: dict[int | str, list[dict[str, str]]] = {}
    for row in json.loads(Path(str(distribution.locate_file(file))).read_text()):
        rows.setdefault(_key(row["tag"]), []).append(row)
    return rows


def _release_2026c() -> dict[int | str, str]:
    module = importlib.import_module(
        "dicomanonymizer.dicom_anonymization_databases.dicomfields_2026c"
    )
    codes: dict[int | str, str] = {}
    for name, code in LISTS.items():
        for tag in getattr(module, name):
            key = (tag[0] << 16) | tag[1] if len(tag) == 2 else PATTERNS_2026C[tuple(tag)]
            assert key not in codes, f"{tag} is in two of 2026c's lists"
            codes[key] = code
    return codes


def test_the_table_is_the_union_of_both_releases() -> None:
    older, newer = _release_2020(), _release_2026c()
    table = action_table()
    rows = dict(table.rows())
    assert set(rows) == set(older) | set(newer)
    assert table.attribute_count == len(rows) == 656  # the pinned packages' releases
    assert sorted(table.sources.values()) == [len(older), len(newer)]
    disagreed = {_key(d.tag): d for d in table.disagreements}
    for key, row in rows.items():
        codes = [entry["basicProfile"] for entry in older.get(key, [])]
        codes += [newer[key]] if key in newer else []
        expected = codes[0]
        for code in codes[1:]:
            expected = stricter(expected, code)
        assert row.basic == expected, row
        assert (len(set(codes)) > 1) == (key in disagreed), row
        options = {o.value: code for o, code in row.options.items()}
        assert options == {
            k: v for k, v in (older[key][0] if key in older else {}).items() if k.endswith("Opt")
        }, row
    assert {basic_action(row.basic) for row in rows.values()} <= set(Action)


def test_codes_rank_from_removal_to_keeping() -> None:
    ranked = sorted(BY_TYPE, key=strictness, reverse=True)
    assert ranked == ["X", "X/Z", "Z", "X/Z/D", "Z/D", "X/D", "D", "X/Z/U*", "U", "K"]
    assert stricter("X/Z", "X") == stricter("X", "X/Z") == "X"
    assert stricter("Z", "Z/D") == "Z" and stricter("X/D", "D") == "X/D"


def test_a_table_with_an_unknown_tag_form_or_code_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown tag form"):
        parse([{"tag": "(00X0,0010)", "name": "?", "basicProfile": "X"}])
    with pytest.raises(ValueError, match=r"not one PS3\.15 defines"):
        basic_action("Q")
    twice = [{"tag": "(0010,0010)", "name": "a", "basicProfile": code} for code in ("Z", "Q")]
    with pytest.raises(ValueError, match=r"not one PS3\.15 defines"):
        parse(twice)


def test_an_attribute_listed_twice_keeps_the_stricter_code_and_the_shared_options() -> None:
    rows = [
        {"tag": "(3008,0105)", "name": "a", "basicProfile": "X/Z", "rtnDevIdOpt": "K"},
        {"tag": "(3008,0105)", "name": "a", "basicProfile": "X", "rtnDevIdOpt": "K"},
        {"tag": "(0010,0010)", "name": "b", "basicProfile": "Z", "cleanDescOpt": "C"},
        {"tag": "(0010,0010)", "name": "b", "basicProfile": "Z"},
    ]
    table = parse(rows, "one release")
    assert table.by_tag[0x30080105].basic == "X"
    assert table.by_tag[0x30080105].options == {Option.RETAIN_DEVICE_IDENTITY: "K"}
    assert table.by_tag[0x00100010].options == {}
    assert table.sources == {"one release": 2}
    [disagreement] = table.disagreements
    assert (disagreement.older, disagreement.newer, disagreement.kept) == ("X/Z", "X", "X")


def test_the_union_takes_the_newer_code_unless_the_older_is_stricter() -> None:
    older = parse(
        [
            {"tag": "(0008,0001)", "name": "only old", "basicProfile": "D", "rtnDevIdOpt": "K"},
            {"tag": "(0008,0002)", "name": "both", "basicProfile": "Z", "rtnDevIdOpt": "K"},
            {"tag": "(0008,0003)", "name": "newer is stricter", "basicProfile": "D"},
        ],
        "old",
    )
    newer = parse(
        [
            {"tag": "(0008,0002)", "name": "both", "basicProfile": "Z/D"},
            {"tag": "(0008,0003)", "name": "newer is stricter", "basicProfile": "X/D"},
            {"tag": "(0008,0004)", "name": "only new", "basicProfile": "U"},
        ],
        "new",
    )
    table = merge(older, newer)
    assert {tag: row.basic for tag, row in table.by_tag.items()} == {
        0x00080001: "D",
        0x00080002: "Z",
        0x00080003: "X/D",
        0x00080004: "U",
    }
    assert table.by_tag[0x00080002].options == {Option.RETAIN_DEVICE_IDENTITY: "K"}
    assert table.by_tag[0x00080004].options == {}
    assert [(d.tag, d.kept, d.where) for d in table.disagreements] == [
        ("(0008,0002)", "Z", "old vs new"),
        ("(0008,0003)", "X/D", "old vs new"),
    ]
    assert table.sources == {"old": 3, "new": 3}


def test_the_table_is_read_at_first_use_not_at_import() -> None:
    script = (
        "import sys; import pacs.dicom.deidentify as d; "
        "print('dicomanonymizer' in sys.modules, d.action_table.cache_info().currsize); "
        "d.action_table(); print('dicomanonymizer' in sys.modules)"
    )
    run = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    assert run.stdout.split() == ["False", "0", "True"]


def test_attributes_newer_than_the_option_columns_are_retained_by_no_option() -> None:
    row = action_table().by_tag[0x00080012]  # Instance Creation Date: not in release 2020
    assert row.options == {}
    source = Dataset()
    source.PatientID = "MRN1"
    source.StudyDate = "20240229"
    source.InstanceCreationDate = "20240229"
    out = Deidentifier(Profile(dates=Dates.KEEP), SECRET)(source)
    assert out.StudyDate == "20240229"  # the option keeps what release 2020 lets it keep
    assert out.InstanceCreationDate == "19000101"  # X/D: a dummy, whatever the option


def test_an_option_that_removes_wins() -> None:
    row = action_table().by_tag[0x00081120]  # Referenced Patient Sequence
    assert row.options == {Option.RETAIN_UIDS: "X"}
    source = Dataset()
    source.PatientID = "MRN1"
    source.StudyInstanceUID = "1.2.3"
    source.ReferencedPatientSequence = [Dataset()]
    source.ReferencedPatientSequence[0].ReferencedSOPInstanceUID = "1.2.3.4"
    out = Deidentifier(Profile(retain_uids=True), SECRET)(source)
    assert out.StudyInstanceUID == "1.2.3" and "ReferencedPatientSequence" not in out
