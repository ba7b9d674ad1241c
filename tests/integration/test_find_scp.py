"""C-FIND against the real server: the three models at their levels, over pynetdicom and DCMTK."""

import asyncio
from pathlib import Path

import pytest
from pydicom.dataset import Dataset
from pydicom.uid import ExplicitVRLittleEndian, generate_uid

from pacs.net.command_set import encode_command
from pacs.net.contexts import proposal
from pacs.net.dimse import Command, decode_command
from pacs.net.handshake import number_contexts
from pacs.net.identifier import encode_identifier
from pacs.net.negotiation import build_request
from pacs.net.pdu import pdata_header
from tests.conftest import make_instance
from tests.integration import scu
from tests.integration.conftest import PacsAddress, StartPacs, run_dcmtk
from tests.integration.test_upper_layer import _read_pdu

PATIENT_ROOT = "1.2.840.10008.5.1.4.1.2.1.1"
STUDY_ROOT = "1.2.840.10008.5.1.4.1.2.2.1"
PATIENT_STUDY_ONLY = "1.2.840.10008.5.1.4.1.2.3.1"
SUCCESS, CANCEL, NOT_MATCHING = 0x0000, 0xFE00, 0xA900


def _identifier(level: str, **keys: object) -> Dataset:
    ds = Dataset()
    ds.QueryRetrieveLevel = level
    for keyword, value in keys.items():
        setattr(ds, keyword, value)
    return ds


async def find(
    address: PacsAddress, model: str, level: str, **keys: object
) -> tuple[int, list[Dataset]]:
    return await asyncio.to_thread(scu.find, address, model, _identifier(level, **keys))


@pytest.fixture
async def archive(running_pacs: PacsAddress) -> PacsAddress:
    """Two patients: Jane with a CT study (2 series, 3 images), John with an MR study."""
    study, ct1, ct2 = generate_uid(), generate_uid(), generate_uid()
    common = {"StudyInstanceUID": study, "AccessionNumber": "ACC-CT"}
    jane = [
        make_instance(**common, SeriesInstanceUID=ct1, InstanceNumber=1),
        make_instance(**common, SeriesInstanceUID=ct1, InstanceNumber=2),
        make_instance(**common, SeriesInstanceUID=ct2, SeriesNumber=3, Modality="SR"),
    ]
    john = [
        make_instance(
            PatientName="Smith^John",
            PatientID="P-0002",
            Modality="MR",
            StudyDate="20250101",
            AccessionNumber="ACC-MR",
            StudyDescription="MR HEAD",
        )
    ]
    assert await asyncio.to_thread(scu.store, running_pacs, [*jane, *john]) == [SUCCESS] * 4
    return running_pacs


async def test_study_root_study_query_by_patient_id_returns_only_the_requested_keys(
    archive: PacsAddress,
) -> None:
    final, matches = await find(
        archive,
        STUDY_ROOT,
        "STUDY",
        PatientID="P-0001",
        StudyInstanceUID="",
        PatientName="",
        NumberOfStudyRelatedInstances="",
        ModalitiesInStudy="",
    )

    assert final == SUCCESS
    assert len(matches) == 1
    match = matches[0]
    assert match.PatientName == "Doe^Jane"
    assert match.NumberOfStudyRelatedInstances == 3
    assert sorted(match.ModalitiesInStudy) == ["CT", "SR"]
    assert match.QueryRetrieveLevel == "STUDY"
    assert match.RetrieveAETitle == "PACS"
    returned = {element.keyword for element in match}
    assert returned <= {
        "PatientID",
        "StudyInstanceUID",
        "PatientName",
        "NumberOfStudyRelatedInstances",
        "ModalitiesInStudy",
        "QueryRetrieveLevel",
        "RetrieveAETitle",
        "SpecificCharacterSet",
    }


async def test_wildcards_ranges_and_modalities_select_studies(archive: PacsAddress) -> None:
    cases = [
        ({"PatientName": "smi*"}, ["ACC-MR"]),  # case-insensitive by default
        ({"PatientName": "*o*"}, ["ACC-CT", "ACC-MR"]),
        ({"StudyDate": "20250101-20251231"}, ["ACC-MR"]),
        ({"StudyDate": "20260101-"}, ["ACC-CT"]),
        ({"ModalitiesInStudy": "SR"}, ["ACC-CT"]),
        ({"AccessionNumber": "ACC-MR"}, ["ACC-MR"]),
        ({"StudyDescription": '""'}, []),
    ]
    for keys, expected in cases:
        final, matches = await find(archive, STUDY_ROOT, "STUDY", **{"AccessionNumber": "", **keys})
        assert final == SUCCESS, keys
        assert sorted(m.AccessionNumber for m in matches) == expected, keys


async def test_patient_root_levels_down_to_images(archive: PacsAddress) -> None:
    final, patients = await find(
        archive,
        PATIENT_ROOT,
        "PATIENT",
        PatientID="P-0001",
        NumberOfPatientRelatedStudies="",
        NumberOfPatientRelatedInstances="",
    )
    assert final == SUCCESS
    assert [
        (p.NumberOfPatientRelatedStudies, p.NumberOfPatientRelatedInstances) for p in patients
    ] == [(1, 3)]

    final, studies = await find(
        archive, PATIENT_ROOT, "STUDY", PatientID="P-0001", StudyInstanceUID=""
    )
    assert final == SUCCESS
    study = studies[0].StudyInstanceUID

    final, series = await find(
        archive,
        PATIENT_ROOT,
        "SERIES",
        PatientID="P-0001",
        StudyInstanceUID=study,
        SeriesInstanceUID="",
        Modality="",
        NumberOfSeriesRelatedInstances="",
    )
    assert final == SUCCESS
    assert sorted((s.Modality, s.NumberOfSeriesRelatedInstances) for s in series) == [
        ("CT", 2),
        ("SR", 1),
    ]

    ct = next(s.SeriesInstanceUID for s in series if s.Modality == "CT")
    final, images = await find(
        archive,
        PATIENT_ROOT,
        "IMAGE",
        PatientID="P-0001",
        StudyInstanceUID=study,
        SeriesInstanceUID=ct,
        SOPInstanceUID="",
        InstanceNumber="",
    )
    assert final == SUCCESS
    assert sorted(i.InstanceNumber for i in images) == [1, 2]


async def test_patient_study_only_model_answers_study_queries(archive: PacsAddress) -> None:
    final, studies = await find(
        archive, PATIENT_STUDY_ONLY, "STUDY", PatientID="P-0002", StudyDescription=""
    )

    assert final == SUCCESS
    assert [s.StudyDescription for s in studies] == ["MR HEAD"]


@pytest.mark.parametrize(
    ("model", "level", "keys"),
    [
        (STUDY_ROOT, "PATIENT", {}),  # no patient level in Study Root
        (PATIENT_STUDY_ONLY, "SERIES", {"StudyInstanceUID": "1.2.3"}),
        (STUDY_ROOT, "SERIES", {"SeriesInstanceUID": ""}),  # StudyInstanceUID missing
        (PATIENT_ROOT, "STUDY", {"PatientName": "Doe*"}),  # non-unique key above the level
        (STUDY_ROOT, "STUDY", {"Modality": "CT"}),  # series key below the level
        (STUDY_ROOT, "NOTALEVEL", {}),
    ],
)
async def test_identifiers_that_break_the_hierarchy_get_a900_with_a_reason(
    archive: PacsAddress, model: str, level: str, keys: dict[str, str]
) -> None:
    final, matches = await find(archive, model, level, **keys)

    assert (final, matches) == (NOT_MATCHING, [])
    assert await asyncio.to_thread(scu.echo, archive) == SUCCESS


async def test_an_unsupported_model_is_rejected_at_negotiation(running_pacs: PacsAddress) -> None:
    worklist = "1.2.840.10008.5.1.4.31"

    def rejected() -> bool:
        assoc = scu.associate(running_pacs, ["1.2.840.10008.1.1", worklist])
        try:
            return any(
                cx.abstract_syntax == worklist and cx.result == 3 for cx in assoc.rejected_contexts
            )
        finally:
            assoc.release()

    assert await asyncio.to_thread(rejected)


async def test_counts_follow_later_stores_to_the_same_study(archive: PacsAddress) -> None:
    _, before = await find(
        archive,
        STUDY_ROOT,
        "STUDY",
        AccessionNumber="ACC-MR",
        StudyInstanceUID="",
        NumberOfStudyRelatedInstances="",
    )
    study = before[0].StudyInstanceUID
    later = make_instance(
        StudyInstanceUID=study,
        PatientID="P-0002",
        PatientName="Smith^John",
        Modality="MR",
        AccessionNumber="ACC-MR",
    )
    assert await asyncio.to_thread(scu.store, archive, [later]) == [SUCCESS]

    _, after = await find(
        archive,
        STUDY_ROOT,
        "STUDY",
        AccessionNumber="ACC-MR",
        NumberOfStudyRelatedInstances="",
        NumberOfStudyRelatedSeries="",
    )

    assert before[0].NumberOfStudyRelatedInstances == 1
    assert (after[0].NumberOfStudyRelatedInstances, after[0].NumberOfStudyRelatedSeries) == (2, 2)


async def test_utf8_and_latin1_names_are_matched_and_returned(running_pacs: PacsAddress) -> None:
    utf8 = make_instance(
        SpecificCharacterSet="ISO_IR 192", PatientName="Ærøskøbing^Åse", PatientID="UTF8"
    )
    latin1 = make_instance(
        SpecificCharacterSet="ISO_IR 100", PatientName="Müller^Jürgen", PatientID="LATIN1"
    )
    assert await asyncio.to_thread(scu.store, running_pacs, [utf8, latin1]) == [SUCCESS] * 2

    for pattern, expected in (("ÆRØ*", "Ærøskøbing^Åse"), ("Müller*", "Müller^Jürgen")):
        final, matches = await find(
            running_pacs,
            STUDY_ROOT,
            "STUDY",
            SpecificCharacterSet="ISO_IR 192",
            PatientName=pattern,
        )
        assert final == SUCCESS
        assert [str(m.PatientName) for m in matches] == [expected]


async def test_cancel_stops_the_query_with_fe00(archive: PacsAddress) -> None:
    reader, writer = await asyncio.open_connection(archive.host, archive.port)
    contexts = number_contexts([proposal(STUDY_ROOT, [ExplicitVRLittleEndian])])
    writer.write(build_request("CANCELLER", "PACS", contexts, 0))
    assert (await _read_pdu(reader))[0] == 0x02  # A-ASSOCIATE-AC
    find = Dataset()
    find.CommandField = Command.C_FIND_RQ
    find.MessageID = 5
    find.AffectedSOPClassUID = STUDY_ROOT
    find.Priority = 0
    find.CommandDataSetType = 0x0001
    cancel = Dataset()
    cancel.CommandField = Command.C_CANCEL_RQ
    cancel.MessageIDBeingRespondedTo = 5
    cancel.CommandDataSetType = 0x0101
    identifier = encode_identifier(
        _identifier("STUDY", StudyInstanceUID=""), ExplicitVRLittleEndian
    )
    for control, data in (
        (0x03, encode_command(find)),
        (0x02, identifier),
        (0x03, encode_command(cancel)),
    ):
        writer.write(pdata_header(1, control, len(data)) + data)

    statuses: list[int] = []
    while not statuses or statuses[-1] in (0xFF00, 0xFF01):
        pdu_type, body = await _read_pdu(reader)
        if pdu_type == 0x04 and body[5] & 0x01:  # a command PDV
            statuses.append(int(decode_command(body[6:]).Status))
    writer.close()

    assert statuses[-1] == CANCEL
    assert len(statuses) < 3  # the query had 2 matches: it stopped before sending them all
    assert await asyncio.to_thread(scu.echo, archive) == SUCCESS


async def test_max_results_bounds_a_response(start_pacs: StartPacs) -> None:
    pacs = await start_pacs(query={"max_results": 2})
    studies = [make_instance(PatientID="MANY") for _ in range(4)]
    assert await asyncio.to_thread(scu.store, pacs, studies) == [SUCCESS] * 4

    final, matches = await find(pacs, STUDY_ROOT, "STUDY", PatientID="MANY", StudyInstanceUID="")

    assert (final, len(matches)) == (SUCCESS, 2)


async def test_dcmtk_findscu_queries_studies(archive: PacsAddress, tmp_path: Path) -> None:
    code, output = await run_dcmtk(
        "findscu",
        "-v",
        "-S",
        "-k",
        "QueryRetrieveLevel=STUDY",
        "-k",
        "PatientID=P-0002",
        "-k",
        "AccessionNumber",
        "-k",
        "PatientName",
        archive.host,
        str(archive.port),
    )

    assert code == 0, output
    assert "ACC-MR" in output
    assert "Smith^John" in output
    assert "ACC-CT" not in output
