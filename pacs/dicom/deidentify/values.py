"""Replacement values: a dummy per VR (the D action) and dates moved by a whole number of days.

Dates move by whole days so that times of day stay as they are and every interval
between two date-times of one patient, across studies, is kept exactly.
"""

from datetime import date, timedelta
from typing import Any

from pydicom.multival import MultiValue

DUMMY_TEXT = "ANONYMIZED"
DUMMY_BY_VR: dict[str, Any] = {
    "AE": DUMMY_TEXT,
    "AS": "000Y",
    "CS": DUMMY_TEXT,
    "DA": "19000101",
    "DT": "19000101000000",
    "TM": "000000",
    "DS": "0",
    "IS": "0",
    "LO": DUMMY_TEXT,
    "LT": DUMMY_TEXT,
    "PN": DUMMY_TEXT,
    "SH": DUMMY_TEXT,
    "ST": DUMMY_TEXT,
    "UC": DUMMY_TEXT,
    "UT": DUMMY_TEXT,
    "UR": DUMMY_TEXT,
    "AT": 0,
    "FL": 0.0,
    "FD": 0.0,
    "SL": 0,
    "SS": 0,
    "SV": 0,
    "UL": 0,
    "US": 0,
    "UV": 0,
}
DUMMY_BYTES = b"\x00\x00"  # OB, OD, OF, OL, OV, OW, UN: non-zero length, even
DATE_VRS = frozenset({"DA", "DT", "TM"})


def dummy(vr: str) -> Any:
    """A non-empty value consistent with `vr` that says nothing about anyone."""
    return DUMMY_BY_VR.get(vr, DUMMY_BYTES)


def _shift_date(text: str, days: int) -> str | None:
    """YYYYMMDD moved by `days`; None when `text` does not start with a full date."""
    if len(text) < 8 or not text[:8].isdigit():
        return None
    try:
        moved = date(int(text[:4]), int(text[4:6]), int(text[6:8])) + timedelta(days=days)
    except (ValueError, OverflowError):
        return None
    return f"{moved.year:04d}{moved.month:02d}{moved.day:02d}{text[8:]}"


def _shift_one(text: str, vr: str, days: int) -> str:
    text = text.strip()
    if vr == "TM" or not text:  # whole days leave the time of day as it is
        return text
    # DA is exactly YYYYMMDD; DT carries time and offset after it, which stay as they are.
    # A value too partial to shift (a year alone) is emptied rather than kept.
    return _shift_date(text, days) or ""


def shift_dates(value: Any, vr: str, days: int) -> Any:
    """A DA, DT or TM value (one or several) with each date moved by `days`."""
    if isinstance(value, MultiValue | list | tuple):
        return [_shift_one(str(item), vr, days) for item in value]
    if value is None:
        return value
    return _shift_one(str(value), vr, days)
