"""A C-FIND client on one kept-open association (pynetdicom), timing each round trip.

DCMTK's findscu opens an association per invocation, so its process start
dominates a sub-millisecond query. Here one association per server stays
open and a round trip runs from sending the C-FIND-RQ to receiving the final
response, every Pending response included. pynetdicom's reactor polls every
millisecond when idle: C-ECHO's round trip on the same association measures
that floor, reported next to the figures. The client sets TCP_NODELAY, as the
servers do.
"""

import logging
import socket
import time
from types import TracebackType
from typing import Any

from pydicom.dataset import Dataset
from pynetdicom import AE
from pynetdicom.sop_class import StudyRootQueryRetrieveInformationModelFind, Verification

from benchmarks.runs import CALLING_AE_TITLE

PENDING = frozenset({0xFF00, 0xFF01})
SUCCESS = 0x0000
TIMEOUT = 600.0


class FindFailed(RuntimeError):
    """The association could not be opened, or a C-FIND did not end in Success."""


class FindClient:
    """One association to a Query/Retrieve SCP on 127.0.0.1, kept open until `close`."""

    def __init__(self, port: int, called_ae_title: str) -> None:
        logging.getLogger("pynetdicom").setLevel(logging.CRITICAL)
        ae = AE(ae_title=CALLING_AE_TITLE)
        ae.acse_timeout = ae.dimse_timeout = ae.network_timeout = TIMEOUT
        ae.add_requested_context(StudyRootQueryRetrieveInformationModelFind)
        ae.add_requested_context(Verification)
        self._assoc: Any = ae.associate("127.0.0.1", port, ae_title=called_ae_title)
        if not self._assoc.is_established:
            raise FindFailed(f"association to {called_ae_title} at port {port} was not accepted")
        # pynetdicom sends a request's command and identifier as two PDUs; with Nagle on,
        # the second waits for the server's delayed ACK of the first (40 ms on Linux).
        self._assoc.dul.socket.socket.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def __enter__(self) -> "FindClient":
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        if self._assoc.is_established:
            self._assoc.release()

    def echo(self) -> float:
        """Seconds for one C-ECHO round trip."""
        started = time.perf_counter()
        status = self._assoc.send_c_echo()
        elapsed = time.perf_counter() - started
        if status.get("Status") != SUCCESS:
            raise FindFailed(f"C-ECHO answered {status.get('Status')!r}")
        return elapsed

    def find(self, identifier: Dataset) -> tuple[float, list[Dataset]]:
        """Seconds from request to final response, and the identifiers of the Pending ones."""
        responses: list[Dataset] = []
        started = time.perf_counter()
        for status, match in self._assoc.send_c_find(
            identifier, StudyRootQueryRetrieveInformationModelFind
        ):
            code = status.get("Status")
            if code in PENDING:
                responses.append(match)
                continue
            elapsed = time.perf_counter() - started
            if code != SUCCESS:
                comment = status.get("ErrorComment", "")
                raise FindFailed(f"C-FIND ended with status {code!r} {comment}".strip())
            return elapsed, responses
        raise FindFailed("C-FIND got no final response (association aborted?)")
