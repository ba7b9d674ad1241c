"""The upper layer against crafted PDUs: garbage, stalls, protocol errors (PS3.8 9, Annex D).

Each test ends by proving the server still answers C-ECHO.
"""

import asyncio
import struct

from pydicom.dataset import Dataset
from pydicom.uid import CTImageStorage, ExplicitVRLittleEndian, ImplicitVRLittleEndian

from pacs.net.command_set import encode_command
from pacs.net.contexts import VERIFICATION, proposal
from pacs.net.dimse import Command, decode_command
from pacs.net.handshake import number_contexts
from pacs.net.negotiation import build_request
from pacs.net.pdu import pdata_header
from tests.integration import scu
from tests.integration.conftest import PacsAddress, StartPacs

SUCCESS = 0x0000
A_ASSOCIATE_AC = 0x02
A_RELEASE_RP = 0x06
A_ABORT = 0x07
P_DATA_TF = 0x04


async def _echo_still_works(address: PacsAddress) -> None:
    assert await asyncio.to_thread(scu.echo, address) == SUCCESS


async def _read_pdu(reader: asyncio.StreamReader) -> tuple[int, bytes]:
    async with asyncio.timeout(10):
        pdu_type, length = struct.unpack(">BxL", await reader.readexactly(6))
        return pdu_type, await reader.readexactly(length)


async def _associate(address: PacsAddress) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    reader, writer = await asyncio.open_connection(address.host, address.port)
    contexts = number_contexts([proposal(VERIFICATION, [ImplicitVRLittleEndian])])
    writer.write(build_request("RAW", address.ae_title, contexts, 0))
    pdu_type, _ = await _read_pdu(reader)
    assert pdu_type == A_ASSOCIATE_AC
    return reader, writer


def _echo_command(message_id: int = 7) -> bytes:
    command = Dataset()
    command.CommandField = Command.C_ECHO_RQ
    command.MessageID = message_id
    command.AffectedSOPClassUID = VERIFICATION
    command.CommandDataSetType = 0x0101
    return encode_command(command)


async def test_garbage_bytes_are_answered_with_an_abort(running_pacs: PacsAddress) -> None:
    reader, writer = await asyncio.open_connection(running_pacs.host, running_pacs.port)
    writer.write(b"GET / HTTP/1.1\r\nHost: pacs\r\n\r\n")

    pdu_type, body = await _read_pdu(reader)
    assert pdu_type == A_ABORT
    assert body[2:4] == bytes([0x02, 0x01])  # service provider, unrecognised PDU
    assert await reader.read() == b""
    writer.close()
    await _echo_still_works(running_pacs)


async def test_a_truncated_associate_request_holds_only_its_own_connection(
    start_pacs: StartPacs,
) -> None:
    pacs = await start_pacs(server={"acse_timeout": 1.5})
    reader, writer = await asyncio.open_connection(pacs.host, pacs.port)
    request = build_request("STALL", "PACS", number_contexts([proposal(VERIFICATION)]), 0)
    writer.write(request[: len(request) // 2])

    await _echo_still_works(pacs)  # served while the stalled request is held open
    async with asyncio.timeout(10):
        assert await reader.read() == b""  # ARTIM expiry closes the stalled connection
    writer.close()
    await _echo_still_works(pacs)


async def test_a_command_split_into_many_pdvs_and_pdus_is_reassembled(
    running_pacs: PacsAddress,
) -> None:
    reader, writer = await _associate(running_pacs)
    command = _echo_command()
    pieces = [command[i : i + 5] for i in range(0, len(command), 5)]
    for index, piece in enumerate(pieces):
        control = 0x03 if index == len(pieces) - 1 else 0x01
        writer.write(pdata_header(1, control, len(piece)) + piece)

    pdu_type, body = await _read_pdu(reader)
    assert pdu_type == P_DATA_TF
    assert body[5] == 0x03  # a whole command in one PDV
    response = decode_command(body[6:])
    assert (response.CommandField, response.Status) == (Command.C_ECHO_RSP, SUCCESS)
    assert response.MessageIDBeingRespondedTo == 7
    writer.write(bytes([0x05, 0, 0, 0, 0, 4, 0, 0, 0, 0]))  # A-RELEASE-RQ
    pdu_type, _ = await _read_pdu(reader)
    assert pdu_type == A_RELEASE_RP
    writer.close()
    await _echo_still_works(running_pacs)


async def test_pdata_on_an_unaccepted_context_is_aborted(running_pacs: PacsAddress) -> None:
    reader, writer = await _associate(running_pacs)
    command = _echo_command()
    writer.write(pdata_header(9, 0x03, len(command)) + command)

    pdu_type, body = await _read_pdu(reader)
    assert pdu_type == A_ABORT
    assert body[2] == 0x02  # aborted by the service provider
    writer.close()
    await _echo_still_works(running_pacs)


async def test_an_associate_request_on_an_established_association_is_aborted(
    running_pacs: PacsAddress,
) -> None:
    reader, writer = await _associate(running_pacs)
    writer.write(build_request("AGAIN", "PACS", number_contexts([proposal(VERIFICATION)]), 0))

    pdu_type, body = await _read_pdu(reader)
    assert pdu_type == A_ABORT
    assert body[2:4] == bytes([0x02, 0x02])  # unexpected PDU
    writer.close()
    await _echo_still_works(running_pacs)


async def test_a_peer_stalling_mid_pdu_is_aborted_after_the_network_timeout(
    start_pacs: StartPacs,
) -> None:
    pacs = await start_pacs(server={"network_timeout": 1.0})
    reader, writer = await _associate(pacs)
    command = _echo_command()
    writer.write(pdata_header(1, 0x03, len(command)) + command[:10])

    await _echo_still_works(pacs)
    pdu_type, _ = await _read_pdu(reader)
    assert pdu_type == A_ABORT
    writer.close()
    await _echo_still_works(pacs)


async def test_a_peer_stalling_mid_data_set_is_aborted_after_the_network_timeout(
    start_pacs: StartPacs,
) -> None:
    pacs = await start_pacs(server={"network_timeout": 1.0})
    reader, writer = await asyncio.open_connection(pacs.host, pacs.port)
    contexts = number_contexts([proposal(CTImageStorage, [ExplicitVRLittleEndian])])
    writer.write(build_request("STALL", pacs.ae_title, contexts, 0))
    pdu_type, _ = await _read_pdu(reader)
    assert pdu_type == A_ASSOCIATE_AC
    command = Dataset()
    command.CommandField = Command.C_STORE_RQ
    command.MessageID = 1
    command.AffectedSOPClassUID = CTImageStorage
    command.AffectedSOPInstanceUID = "1.2.3.4"
    command.Priority = 0
    command.CommandDataSetType = 0x0001
    encoded = encode_command(command)
    # The command and the first PDV of its data set, then nothing: the request is being
    # served, but pacs waits for the peer, not the other way round.
    writer.write(pdata_header(1, 0x03, len(encoded)) + encoded)
    writer.write(pdata_header(1, 0x00, 8) + b"\x08\x00\x05\x00CS\x0a\x00")

    await _echo_still_works(pacs)
    pdu_type, body = await _read_pdu(reader)
    assert pdu_type == A_ABORT
    assert body[2] == 0x02  # aborted by the service provider
    writer.close()
    await _echo_still_works(pacs)


async def test_an_operation_the_context_does_not_support_gets_a_failure_status(
    running_pacs: PacsAddress,
) -> None:
    reader, writer = await _associate(running_pacs)
    command = Dataset()
    command.CommandField = Command.C_FIND_RQ
    command.MessageID = 3
    command.AffectedSOPClassUID = VERIFICATION
    command.Priority = 0
    command.CommandDataSetType = 0x0001
    encoded = encode_command(command)
    writer.write(
        pdata_header(1, 0x03, len(encoded)) + encoded + pdata_header(1, 0x02, 4) + b"\x00" * 4
    )

    pdu_type, body = await _read_pdu(reader)
    assert pdu_type == P_DATA_TF
    response = decode_command(body[6:])
    assert response.Status == 0x0211  # unrecognized operation
    assert "C_FIND_RQ" in response.ErrorComment
    writer.close()
    await _echo_still_works(running_pacs)
