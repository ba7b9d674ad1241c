"""Command sets pacs encodes by hand are the bytes pydicom writes (PS3.7 E.1)."""

from io import BytesIO

import pytest
from pydicom.dataset import Dataset
from pydicom.tag import Tag
from pynetdicom.dsutils import decode, encode

from pacs.errors import ProtocolError
from pacs.net.command_set import ReceivedCommand, encode_command
from pacs.net.dimse import decode_command

CT = "1.2.840.10008.5.1.4.1.1.2"


def _pydicom(command: Dataset) -> bytes:
    if "CommandGroupLength" in command:
        del command.CommandGroupLength
    body = encode(command, True, True)
    assert body is not None
    command.CommandGroupLength = len(body)
    encoded = encode(command, True, True)
    assert encoded is not None
    return bytes(encoded)


def _store_rq() -> Dataset:
    ds = Dataset()
    ds.AffectedSOPClassUID = CT
    ds.CommandField = 0x0001
    ds.MessageID = 7
    ds.Priority = 0
    ds.CommandDataSetType = 0x0000
    ds.AffectedSOPInstanceUID = "1.2.3.45"  # odd length: padded with NUL
    ds.MoveOriginatorApplicationEntityTitle = "WORKSTATION"  # odd: padded with a space
    ds.MoveOriginatorMessageID = 3
    return ds


def _move_pending() -> Dataset:
    ds = Dataset()
    ds.AffectedSOPClassUID = "1.2.840.10008.5.1.4.1.2.2.2"
    ds.CommandField = 0x8021
    ds.MessageIDBeingRespondedTo = 1
    ds.CommandDataSetType = 0x0101
    ds.Status = 0xFF00
    ds.NumberOfRemainingSuboperations = 250
    ds.NumberOfCompletedSuboperations = 6
    ds.NumberOfFailedSuboperations = 0
    ds.NumberOfWarningSuboperations = 0
    return ds


def _failure() -> Dataset:
    ds = Dataset()
    ds.AffectedSOPClassUID = CT
    ds.CommandField = 0x8001
    ds.MessageIDBeingRespondedTo = 2
    ds.CommandDataSetType = 0x0101
    ds.Status = 0xA900
    ds.OffendingElement = [Tag(0x0008, 0x0016), Tag(0x0008, 0x0018)]
    ds.ErrorComment = "SOP Class UID 1.2 in the data set is not the 1.2.3 requested"
    ds.AffectedSOPInstanceUID = ""
    return ds


def test_command_sets_match_pydicom_and_decode_back() -> None:
    for make in (_store_rq, _move_pending, _failure):
        ours = encode_command(make())

        assert ours == _pydicom(make())
        decoded = decode(BytesIO(ours), True, True)
        assert decoded.CommandGroupLength == len(ours) - 12
        assert decoded.CommandField == make().CommandField


def test_the_command_keeps_its_group_length() -> None:
    command = _move_pending()
    encoded = encode_command(command)

    assert command.CommandGroupLength == len(encoded) - 12
    assert encode_command(command) == encoded  # re-encoding replaces the old length


def test_decoding_gives_back_every_element() -> None:
    for make in (_store_rq, _move_pending, _failure):
        original = make()
        decoded = ReceivedCommand(encode_command(make())).dataset()

        assert [(e.tag, e.value) for e in decoded] == [
            (e.tag, e.value) for e in _with_length(original)
        ]


def _with_length(command: Dataset) -> Dataset:
    encode_command(command)  # sets CommandGroupLength
    return command


def test_a_truncated_or_foreign_command_set_is_a_protocol_error() -> None:
    encoded = encode_command(_store_rq())
    data_set_element = b"\x08\x00\x16\x00\x04\x00\x00\x001.2\x00"

    for broken in (encoded[:-3], encoded[:5], encoded + data_set_element):
        with pytest.raises(ProtocolError, match="undecodable command set"):
            ReceivedCommand(broken)


def _fields(command: Dataset) -> dict[str, object]:
    return {element.keyword: element.value for element in command}


def test_a_command_given_as_keywords_encodes_as_its_dataset_does() -> None:
    for make in (_store_rq, _move_pending, _failure):
        assert encode_command(_fields(make())) == _pydicom(make())


def test_a_received_command_reads_every_value_as_pydicom_does() -> None:
    for make in (_store_rq, _move_pending, _failure):
        encoded = encode_command(make())
        received = ReceivedCommand(encoded)
        reference = decode(BytesIO(encoded), True, True)

        for element in reference:
            assert element.keyword in received
            assert received.get(element.keyword) == element.value, element.keyword
            assert getattr(received, element.keyword) == element.value
        assert [e.keyword for e in received.dataset()] == [e.keyword for e in reference]
        assert received.get("MoveDestination", "absent") == "absent"
        with pytest.raises(AttributeError, match="MoveDestination"):
            _ = received.MoveDestination


def test_a_command_whose_message_id_is_not_us_is_a_protocol_error() -> None:
    encoded = encode_command(_store_rq())
    # MessageID (0000,0110) with a 4-byte value where US has 2.
    broken = encoded.replace(
        b"\x00\x00\x10\x01\x02\x00\x00\x00\x07\x00",
        b"\x00\x00\x10\x01\x04\x00\x00\x00\x07\x00\x00\x00",
    )
    assert broken != encoded

    with pytest.raises(ProtocolError, match="undecodable command set"):
        decode_command(broken)
