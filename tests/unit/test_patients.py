"""Which patient attributes contradict a patient row (pacs.index.patients)."""

import pytest

from pacs.index.patients import contradicts
from pacs.index.records import PatientColumns

KEPT = PatientColumns("P1", "HOSP", "Doe^Jane", "19700101", "F")


@pytest.mark.parametrize(
    "received",
    [
        PatientColumns("P2", "HOSP", "Doe^Jane", "19700101", "F"),
        PatientColumns("P1", "OTHER", "Doe^Jane", "19700101", "F"),
        PatientColumns("P1", "HOSP", "Roe^Jane", "19700101", "F"),
        PatientColumns("P1", "HOSP", "Doe^Jane", "19700102", "F"),
        PatientColumns("P1", "HOSP", "Doe^Jane", "19700101", "M"),
        PatientColumns("P1", "HOSP", "Doe^Janet=Doe^Jane", "19700101", "F"),
    ],
)
def test_a_different_value_on_both_sides_contradicts(received: PatientColumns) -> None:
    assert contradicts(KEPT, received)


@pytest.mark.parametrize(
    "received",
    [
        KEPT,
        PatientColumns("P1", "HOSP", "DOE^JANE", "19700101", "F"),
        PatientColumns("P1", "HOSP", "Doe^Jane^^^", "19700101", "F"),
        PatientColumns("P1", "HOSP", "Doe^Jane=ドウ^ジェーン", "19700101", "F"),
        PatientColumns("", "", None, None, None),
        PatientColumns("P1", "", "Doe^Jane", "", None),
    ],
)
def test_the_same_or_a_missing_value_does_not_contradict(received: PatientColumns) -> None:
    assert not contradicts(KEPT, received)
