"""How log lines word statuses, aborts, retrieve selections and sub-operation counts."""

import logging

import pytest

from pacs.dicom.levels import QueryLevel
from pacs.dicom.selection import Selection
from pacs.net.operation_log import outcome
from pacs.net.pdu import describe_abort
from pacs.net.suboperations import Counts, describe_selection


@pytest.mark.parametrize(
    ("code", "level", "word"),
    [
        (0x0000, logging.INFO, "status"),
        (0xFE00, logging.INFO, "status"),
        (0xB000, logging.WARNING, "warning"),
        (0xB007, logging.WARNING, "warning"),
        (0x0001, logging.WARNING, "warning"),
        (0x0107, logging.WARNING, "warning"),
        (0x0111, logging.WARNING, "refused"),
        (0x0122, logging.WARNING, "refused"),
        (0x0124, logging.WARNING, "refused"),
        (0xA700, logging.WARNING, "refused"),
        (0xA702, logging.WARNING, "refused"),
        (0xA801, logging.WARNING, "refused"),
        (0xA900, logging.WARNING, "refused"),
        (0xC000, logging.WARNING, "refused"),
        (0xC123, logging.WARNING, "refused"),
    ],
)
def test_only_success_and_cancel_are_info(code: int, level: int, word: str) -> None:
    assert outcome(code) == (level, word)


def test_aborts_are_described_by_who_sent_them() -> None:
    assert describe_abort(0, 0) == "A-ABORT from the peer's application"
    assert describe_abort(2, 2) == "A-P-ABORT: unexpected PDU"
    assert describe_abort(2, 3) == "A-ABORT source 2, reason 3"


def test_a_selection_names_its_level_and_uids_but_never_a_patient_id() -> None:
    assert describe_selection(Selection(QueryLevel.STUDY, study_uids=("1.2",))) == "STUDY 1.2"
    series = Selection(QueryLevel.SERIES, study_uids=("1.2",), series_uids=("1.3", "1.4", "1.5"))
    assert describe_selection(series) == "SERIES 1.3 and 2 more"
    patient = Selection(QueryLevel.PATIENT, patient_ids=("SECRET-ID",))
    assert describe_selection(patient) == "PATIENT level"


def test_counts_read_as_words_with_what_remains_after_a_cancel() -> None:
    counts = Counts(remaining=4)
    counts.record(0x0000, "1.1")
    counts.record(0xA700, "1.2")
    assert counts.describe() == "1 completed, 1 failed, 0 warning, 2 remaining"
    counts.record(0xB000, "1.3")
    counts.record(0x0000, "1.4")
    assert counts.describe() == "2 completed, 1 failed, 1 warning"
