"""A C-FIND client on one kept-open association, timing each round trip.

DCMTK's findscu opens an association per invocation, so its process start
dominates a query of a few milliseconds. pynetdicom's AE keeps an association
open, but its reactor threads poll every millisecond between PDUs (a floor of
about 3 ms per C-ECHO here) and, when a response arrives within microseconds,
its association thread can take the response off the queue before
send_c_find() does, and drop it ("Received unexpected C-FIND service message"):
a lost match. So this client is a plain blocking socket with pynetdicom's PDU
codecs and pydicom's data set codec, one request in flight. A round trip runs
from writing the C-FIND-RQ (command and identifier in one write, TCP_NODELAY)
to reading the final response; identifiers are decoded after the clock stops.
"""

import socket
import struct
import time
from io import BytesIO
from types import TracebackType

from pydicom.dataset import Dataset
from pydicom.uid import UID, ExplicitVRLittleEndian, ImplicitVRLittleEndian
from pynetdicom import PYNETDICOM_IMPLEMENTATION_UID
from pynetdicom.dsutils import decode, encode
from pynetdicom.pdu import A_ASSOCIATE_AC, A_ASSOCIATE_RQ
from pynetdicom.pdu_primitives import (
    A_ASSOCIATE,
    ImplementationClassUIDNotification,
    MaximumLengthNotification,
)
from pynetdicom.presentation import build_context

from benchmarks.runs import CALLING_AE_TITLE

APPLICATION_CONTEXT = "1.2.840.10008.3.1.1.1"
STUDY_ROOT_FIND = UID("1.2.840.10008.5.1.4.1.2.2.1")
VERIFICATION = UID("1.2.840.10008.1.1")
MAX_PDU = 262_144  # what we tell the server we accept
TIMEOUT = 120.0  # seconds of silence before a read gives up: a hung server fails the run
FIND_CONTEXT, ECHO_CONTEXT = 1, 3
C_ECHO_RQ, C_FIND_RQ = 0x0030, 0x0020
NO_DATA_SET = 0x0101
PENDING = frozenset({0xFF00, 0xFF01})
SUCCESS = 0x0000
_PDU_HEADER = struct.Struct(">BxI")
_PDV_HEADER = struct.Struct(">IBB")
P_DATA_TF, A_ASSOCIATE_AC_TYPE, A_RELEASE_RQ, A_RELEASE_RP, A_ABORT = 0x04, 0x02, 5, 6, 7


class FindFailed(RuntimeError):
    """The association could not be opened, or a C-FIND did not end in Success."""


def _associate_rq(called_ae_title: str) -> bytes:
    primitive = A_ASSOCIATE()
    primitive.application_context_name = APPLICATION_CONTEXT
    primitive.calling_ae_title = CALLING_AE_TITLE
    primitive.called_ae_title = called_ae_title
    contexts = []
    syntaxes: list[str | UID] = [ExplicitVRLittleEndian, ImplicitVRLittleEndian]
    for context_id, abstract in (
        (FIND_CONTEXT, STUDY_ROOT_FIND),
        (ECHO_CONTEXT, VERIFICATION),
    ):
        context = build_context(abstract, syntaxes)
        context.context_id = context_id
        contexts.append(context)
    primitive.presentation_context_definition_list = contexts
    length, implementation = MaximumLengthNotification(), ImplementationClassUIDNotification()
    length.maximum_length_received = MAX_PDU
    implementation.implementation_class_uid = PYNETDICOM_IMPLEMENTATION_UID
    primitive.user_information = [length, implementation]
    return bytes(A_ASSOCIATE_RQ(primitive).encode())


def _pdv(context_id: int, control: int, data: bytes) -> bytes:
    """One P-DATA-TF PDU holding one whole PDV (our requests are far below any max PDU)."""
    item = _PDV_HEADER.pack(len(data) + 2, context_id, control) + data
    return _PDU_HEADER.pack(P_DATA_TF, len(item)) + item


def _command(**elements: object) -> bytes:
    """A command set in Implicit VR Little Endian, with its group length (PS3.7 6.3.1)."""
    ds = Dataset()
    for keyword, value in elements.items():
        setattr(ds, keyword, value)
    body = encode(ds, True, True)
    assert body is not None
    head = Dataset()
    head.CommandGroupLength = len(body)
    prefix = encode(head, True, True)
    assert prefix is not None
    return prefix + body


class FindClient:
    """One association to a Query/Retrieve SCP on 127.0.0.1, kept open until `close`."""

    def __init__(self, port: int, called_ae_title: str) -> None:
        self._sock = socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT)
        self._sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self._buffer = self._sock.makefile("rb")
        self._message_id = 0
        self._sock.sendall(_associate_rq(called_ae_title))
        pdu_type, body = self._read_pdu()
        if pdu_type != A_ASSOCIATE_AC_TYPE:
            self._sock.close()
            raise FindFailed(f"{called_ae_title} at port {port} answered PDU type {pdu_type}")
        ac = A_ASSOCIATE_AC()
        ac.decode(_PDU_HEADER.pack(pdu_type, len(body)) + body)
        results = ac.to_primitive().presentation_context_definition_results_list
        accepted = {cx.context_id: cx.transfer_syntax[0] for cx in results if cx.result == 0}
        if FIND_CONTEXT not in accepted:
            self.close()
            raise FindFailed(f"{called_ae_title} refused Study Root C-FIND")
        self._syntax = UID(accepted[FIND_CONTEXT])

    def __enter__(self) -> "FindClient":
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def _read_pdu(self) -> tuple[int, bytes]:
        header = self._buffer.read(_PDU_HEADER.size)
        if len(header) < _PDU_HEADER.size:
            raise FindFailed("the server closed the connection")
        pdu_type, length = _PDU_HEADER.unpack(header)
        body = self._buffer.read(length)
        if pdu_type == A_ABORT:
            raise FindFailed("the server aborted the association")
        return pdu_type, body

    def _read_message(self) -> tuple[Dataset, bytes | None]:
        """Read one DIMSE message: its decoded command set and its raw data set, if any."""
        command, data = bytearray(), bytearray()
        has_data: bool | None = None
        while True:
            pdu_type, body = self._read_pdu()
            if pdu_type != P_DATA_TF:
                raise FindFailed(f"PDU type {pdu_type} during a C-FIND")
            offset = 0
            while offset < len(body):
                length, _, control = _PDV_HEADER.unpack_from(body, offset)
                fragment = body[offset + _PDV_HEADER.size : offset + 4 + length]
                offset += 4 + length
                (command if control & 1 else data).extend(fragment)
                if control & 1 and control & 2:  # last fragment of the command set
                    cmd = decode(BytesIO(bytes(command)), True, True)
                    has_data = cmd.get("CommandDataSetType", NO_DATA_SET) != NO_DATA_SET
                    if not has_data:
                        return cmd, None
                elif control & 2 and has_data:  # last fragment of the data set
                    return cmd, bytes(data)

    def close(self) -> None:
        """Release the association (A-RELEASE), then close the connection."""
        try:
            self._sock.sendall(_PDU_HEADER.pack(A_RELEASE_RQ, 4) + bytes(4))
            while self._read_pdu()[0] != A_RELEASE_RP:
                pass
        except (OSError, FindFailed):
            pass
        finally:
            self._buffer.close()
            self._sock.close()

    def _next_id(self) -> int:
        self._message_id = self._message_id % 0xFFFF + 1
        return self._message_id

    def echo(self) -> float:
        """Seconds for one C-ECHO round trip."""
        request = _command(
            AffectedSOPClassUID=VERIFICATION,
            CommandField=C_ECHO_RQ,
            MessageID=self._next_id(),
            CommandDataSetType=NO_DATA_SET,
        )
        started = time.perf_counter()
        self._sock.sendall(_pdv(ECHO_CONTEXT, 0b11, request))
        status, _ = self._read_message()
        elapsed = time.perf_counter() - started
        if status.get("Status") != SUCCESS:
            raise FindFailed(f"C-ECHO answered {status.get('Status')!r}")
        return elapsed

    def find(self, identifier: Dataset) -> tuple[float, list[Dataset]]:
        """Seconds from request to final response, and the identifiers of the Pending ones."""
        command = _command(
            AffectedSOPClassUID=STUDY_ROOT_FIND,
            CommandField=C_FIND_RQ,
            MessageID=self._next_id(),
            Priority=0,
            CommandDataSetType=1,
        )
        explicit = not self._syntax.is_implicit_VR
        query = encode(identifier, not explicit, True)
        assert query is not None
        raw: list[bytes] = []
        started = time.perf_counter()
        self._sock.sendall(_pdv(FIND_CONTEXT, 0b11, command) + _pdv(FIND_CONTEXT, 0b10, query))
        while True:
            status, data = self._read_message()
            code = status.get("Status")
            if code not in PENDING:
                break
            raw.append(data or b"")
        elapsed = time.perf_counter() - started
        if code != SUCCESS:
            comment = status.get("ErrorComment", "")
            raise FindFailed(f"C-FIND ended with status {code!r} {comment}".strip())
        return elapsed, [decode(BytesIO(data), not explicit, True) for data in raw]
