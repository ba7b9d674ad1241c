"""Transfer-syntax negotiation from Accept (PS3.18 8.7): what each header asks for."""

import pytest
from pydicom.uid import ExplicitVRLittleEndian, JPEG2000Lossless, JPEGBaseline8Bit

from pacs.errors import TransferUnavailable
from pacs.web.accept import DICOM, OCTET_STREAM, accepted_syntaxes
from pacs.web.errors import BadRequest

J2K = 'multipart/related; type="image/jp2"'


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        (None, ["*"]),
        ("*/*", ["*"]),
        ('multipart/related; type="application/dicom"', [ExplicitVRLittleEndian]),
        ('multipart/related; type="application/dicom"; transfer-syntax=*', ["*"]),
        (
            f'multipart/related; type="application/dicom"; transfer-syntax={JPEG2000Lossless}, '
            'multipart/related; type="application/dicom"; q=0.5',
            [JPEG2000Lossless, ExplicitVRLittleEndian],
        ),
        (
            'multipart/related; type="application/dicom"; q=0.2, '
            'multipart/related; type="application/dicom"; transfer-syntax=*',
            ["*", ExplicitVRLittleEndian],
        ),
    ],
)
def test_instance_accept_headers_name_syntaxes_best_first(
    header: str | None, expected: list[str]
) -> None:
    assert accepted_syntaxes(header, DICOM) == expected


def test_frames_take_what_ohif_sends_and_image_media_types() -> None:
    ohif = "multipart/related; type=application/octet-stream; transfer-syntax=*"

    assert accepted_syntaxes(ohif, OCTET_STREAM, images=True) == ["*"]
    assert accepted_syntaxes(J2K, OCTET_STREAM, images=True) == [
        JPEG2000Lossless,
        "1.2.840.10008.1.2.4.91",
    ]
    jpeg = f'multipart/related; type="image/jpeg"; transfer-syntax={JPEGBaseline8Bit}'
    assert accepted_syntaxes(jpeg, OCTET_STREAM, images=True) == [JPEGBaseline8Bit]


@pytest.mark.parametrize(
    "header",
    [
        f'multipart/related; type="image/jpeg"; transfer-syntax={JPEG2000Lossless}',
        "multipart/related; type=application/dicom; transfer-syntax=1.2.x",
        "multipart/related; type=application/dicom; transfer-syntax=1.2; transfer-syntax=1.3",
        "nonsense",
        "multipart/related; type=application/dicom; q=high",
    ],
)
def test_contradictory_or_malformed_ranges_are_bad_requests(header: str) -> None:
    with pytest.raises(BadRequest):
        accepted_syntaxes(header, OCTET_STREAM, images=True)


def test_ranges_the_resource_cannot_be_are_not_acceptable() -> None:
    with pytest.raises(TransferUnavailable):
        accepted_syntaxes("application/json", DICOM)
    with pytest.raises(TransferUnavailable):
        accepted_syntaxes(J2K, DICOM)  # an image type names frames, not instances
