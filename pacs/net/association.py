"""One established association (PS3.8): receiving PDUs, DIMSE send and receive in either role.

The connection (`wire.py`) parses received PDUs in the callback that read them and
calls this object back: P-DATA fragments go to `assembly.py`, which turns them into
messages; responses are routed to whoever awaits them, C-CANCELs noted and requests
queued for the dispatcher. Sends are serialised by a lock so two messages never
interleave; their PDUs are framed by `pdu.py` and written by `direct_write.py` where it
can. Opening an association (as acceptor or requestor) lives in `handshake.py`; the
handlers it dispatches to are registered in `handlers.py`.
"""

import asyncio
import contextlib
import itertools
import logging
import time
from collections.abc import AsyncIterable, AsyncIterator, Mapping, Sequence

from pacs.errors import ProtocolError
from pacs.metrics.recorder import PeerTally
from pacs.net import status
from pacs.net.assembly import AcceptedContext, MessageAssembly
from pacs.net.command_set import encode_command
from pacs.net.dimse import (
    DATA_SET_PRESENT,
    NO_DATA_SET,
    Command,
    CommandFields,
    DimseMessage,
    is_response,
    make_response,
)
from pacs.net.direct_write import DirectWriter
from pacs.net.handlers import Handlers
from pacs.net.negotiation import Agreement
from pacs.net.operation_log import finish_operation, log_association_end, operation_name
from pacs.net.pdu import (
    PDV_HEADER_LENGTH,
    AbortReason,
    AbortSource,
    PduError,
    PduType,
    decode_abort,
    describe_abort,
    encode_abort,
    encode_release_rp,
    encode_release_rq,
    message_parts,
    pdata_parts,
)
from pacs.net.timeouts import Timeouts
from pacs.net.tls import peer_subject
from pacs.net.wire import Wire

log = logging.getLogger(__name__)

# Largest PDV we send when the peer sets no limit: keeps each write bounded.
UNLIMITED_PDV = 1024 * 1024
REQUEST_QUEUE_DEPTH = 16  # requests queued for the dispatcher before the socket is left unread
# How long an A-ABORT may take to leave before the connection is dropped regardless.
ABORT_GRACE = 1.0
# A data set to send: whole, or an async stream of chunks.
DataSet = bytes | memoryview | AsyncIterable[bytes | memoryview] | AsyncIterable[bytes]


class AssociationClosed(ProtocolError):
    """The association ended (released, aborted or dropped) before the operation finished."""


def _encoded(command: CommandFields, has_data_set: bool) -> bytes:
    """A command set to send, saying whether a data set follows it."""
    command["CommandDataSetType"] = DATA_SET_PRESENT if has_data_set else NO_DATA_SET
    return encode_command(command)


class Association:
    """An established association; the same object serves the acceptor and the requestor role."""

    def __init__(
        self,
        wire: Wire,
        agreement: Agreement,
        timeouts: Timeouts,
        *,
        is_requestor: bool,
        purpose: str = "",
    ) -> None:
        self.agreement = agreement
        self.timeouts = timeouts
        self.is_requestor = is_requestor
        host, port = wire.get_extra_info("peername")[:2]
        title = agreement.called_ae_title if is_requestor else agreement.calling_ae_title
        self.peer = f"{title}@{host}:{port}"
        self.peer_host = str(host)
        # The peer's verified certificate subject (RFC 4514) on a TLS association, else None.
        self.peer_certificate_subject = peer_subject(wire)
        direction = "to" if is_requestor else "from"
        self.label = f"association {direction} {self.peer}" + (f" for {purpose}" if purpose else "")
        self._wire = wire
        self._send_lock = asyncio.Lock()
        self._direct = DirectWriter(wire)  # the send path's writes (see _write_parts)
        self._requests: asyncio.Queue[DimseMessage | None] = asyncio.Queue()
        self._waiting: dict[int, asyncio.Queue[DimseMessage | None]] = {}
        self._cancelled: set[int] = set()
        # Looked up for every message and every sub-operation; the agreement never changes.
        self._contexts = {
            context_id: AcceptedContext(
                context_id, str(cx.abstract_syntax), str(cx.transfer_syntax[0]), bool(cx.as_scu)
            )
            for context_id, cx in agreement.accepted.items()
        }
        self._by_abstract_syntax: dict[str, list[AcceptedContext]] = {}
        for accepted in self._contexts.values():
            self._by_abstract_syntax.setdefault(accepted.abstract_syntax, []).append(accepted)
        self._message_ids = itertools.count()
        self._assembly = MessageAssembly(self._contexts, wire)
        self._release_rp = asyncio.Event()
        self._outstanding = 0  # requests received and not yet answered
        self.release_requested = False
        self.closed = False
        self.aborted = False
        self.started = time.monotonic()
        self.operations = 0  # requests answered (acceptor) or made (requestor)
        self.tally: PeerTally | None = None  # the calling AE's metrics, set by the server
        self._ending: tuple[str, str] | None = None  # how it ended, and why
        self._reading_ended = asyncio.Event()
        wire.start_pdus(self, timeouts.network)

    @property
    def max_pdv_data(self) -> int:
        limit = self.agreement.peer_max_pdu_length
        return limit - PDV_HEADER_LENGTH if limit else UNLIMITED_PDV

    @property
    def sent_bytes_are_free(self) -> bool:
        """True when send() keeps no hold on a data set's buffers (plain TCP; TLS may)."""
        return self._direct.plain

    def context_for(self, abstract_syntax: str, transfer_syntax: str | None = None) -> int | None:
        """ID of an accepted context for the abstract (and, if given, transfer) syntax."""
        for cx in self.contexts_for(abstract_syntax):
            if transfer_syntax is None or cx.transfer_syntax == transfer_syntax:
                return cx.context_id
        return None

    def contexts_for(self, abstract_syntax: str) -> list["AcceptedContext"]:
        """The accepted contexts of an abstract syntax, in context ID order."""
        return self._by_abstract_syntax.get(abstract_syntax, [])

    def next_message_id(self) -> int:
        return next(self._message_ids) % 0xFFFF + 1

    def cancelled(self, message_id: int) -> bool:
        """True once the peer sent a C-CANCEL for the request with this Message ID."""
        return message_id in self._cancelled

    # -- reading ---------------------------------------------------------------

    # Called by the wire as PDUs arrive (wire.Receiver); none of them awaits.

    def fragment(self, context_id: int, control: int, is_last: bool, data: memoryview) -> None:
        if (message := self._assembly.take(context_id, control, is_last, data)) is not None:
            self._route(message)

    def control_pdu(self, pdu_type: int, body: bytes) -> bool:
        if pdu_type == PduType.RELEASE_RQ:
            self.release_requested = True
            self._note_ending("released by the peer")
            self._requests.put_nowait(None)
            return True
        if pdu_type == PduType.RELEASE_RP and self.is_requestor:
            self._note_ending("released")
            self._release_rp.set()
        elif pdu_type == PduType.ABORT:
            self._note_ending("aborted by the peer", describe_abort(*decode_abort(body)))
            self.aborted = True
        else:
            raise PduError(f"unexpected PDU type 0x{pdu_type:02X}", AbortReason.UNEXPECTED_PDU)
        self._stop_reading()
        return False

    def expects_silence(self) -> bool:
        # A peer waiting for our answers (a long C-MOVE, a big C-FIND) is silent, not
        # gone; one in the middle of sending a data set owes us the rest.
        busy = self._outstanding > 0 or bool(self._waiting)
        return busy and not self._assembly.receiving

    def timed_out(self) -> None:
        why = f"no data for {self.timeouts.network} s"
        self._send_abort(AbortSource.SERVICE_PROVIDER, AbortReason.NOT_SPECIFIED, why)
        self._stop_reading()

    def failed(self, error: PduError) -> None:
        why = f"protocol error: {error}"
        self._send_abort(AbortSource.SERVICE_PROVIDER, error.reason, why)
        self._stop_reading()

    def ended(self, error: BaseException | None) -> None:
        # Also how a connection that pacs closed ends here: the first ending noted stands.
        self._note_ending("closed by the peer", "the connection ended without release")
        self._stop_reading()

    def _stop_reading(self) -> None:
        if not self._reading_ended.is_set():
            self._reading_ended.set()
            self._wire.stop()
            self._end()
            self._log_ending()

    def _note_ending(self, how: str, why: str = "") -> None:
        if self._ending is None:
            self._ending = (how, why)

    def _log_ending(self) -> None:
        how, why = self._ending or ("closed", "")
        log_association_end(self.label, how, why, time.monotonic() - self.started, self.operations)

    def _route(self, message: DimseMessage) -> None:
        if message.command_field == Command.C_CANCEL_RQ:
            self._cancelled.add(int(message.command.MessageIDBeingRespondedTo))
        elif is_response(message.command_field):
            waiting = self._waiting.get(message.message_id)
            if waiting is None:
                log.warning("%s: response to unknown message %d", self.peer, message.message_id)
                message.ignore()
            else:
                waiting.put_nowait(message)
        else:
            self._outstanding += 1
            self._requests.put_nowait(message)
            if self._requests.qsize() >= REQUEST_QUEUE_DEPTH:
                self._wire.hold(self._requests)

    def _end(self) -> None:
        self.closed = True
        self._direct.close()
        self._assembly.cut_short()
        for waiting in self._waiting.values():
            waiting.put_nowait(None)
        self._requests.put_nowait(None)
        self._release_rp.set()
        if not self._wire.is_closing():
            self._wire.close()

    # -- writing ---------------------------------------------------------------

    async def _drain(self) -> None:
        if not self._wire.is_closing() and not self._wire.write_buffer_size():
            # The kernel took every byte: nothing to wait for, and no timer to arm (arming
            # one per message cost as much as a C-FIND match's whole encoding).
            return
        async with asyncio.timeout(self.timeouts.network):
            await self._wire.drain()

    async def send(
        self,
        context_id: int,
        command: CommandFields,
        data_set: DataSet | None = None,
    ) -> None:
        """Send one DIMSE message; a data set may be bytes or an async stream of chunks."""
        await self._send_encoded(context_id, _encoded(command, data_set is not None), data_set)

    async def _send_encoded(
        self, context_id: int, encoded: bytes, data_set: DataSet | None
    ) -> None:
        async with self._sending():
            if isinstance(data_set, bytes | bytearray | memoryview):
                # Command and data set in one send(): each costs a system call, more
                # than encoding a small message.
                await self._write_parts(
                    message_parts(context_id, encoded, data_set, self.max_pdv_data)
                )
            else:
                # A streamed data set's command goes first, on its own: the receiver
                # starts on it while the first chunk is read. Sent with that chunk, C-GET
                # of CT or of small instances was no faster (same-run A/B, 8 runs each).
                await self._write_parts(
                    pdata_parts(context_id, 0x01, encoded, last=True, max_pdv=self.max_pdv_data)
                )
                if data_set is not None:
                    await self._send_stream(context_id, data_set)
            await self._drain()

    async def _write_parts(self, parts: list[bytes | memoryview]) -> None:
        """Write PDUs (under the send lock): straight to the socket when it is plain TCP
        with nothing queued in the transport, else through the transport."""
        if self._direct.can_write():
            await self._direct.write(parts, self.timeouts.network)
        else:
            self._wire.writelines(parts)

    @contextlib.asynccontextmanager
    async def _sending(self) -> AsyncIterator[None]:
        """Hold the send lock for one message (or a run of them); a failed send closes."""
        async with self._send_lock:
            if self.closed:
                raise AssociationClosed(f"{self.peer}: association already closed")
            try:
                yield
            except (ConnectionError, TimeoutError) as exc:
                if isinstance(exc, TimeoutError):
                    why = f"the peer took no data for {self.timeouts.network} s"
                    self._note_ending("closed by pacs", why)
                else:
                    self._note_ending("closed by the peer", f"sending failed: {exc}")
                self._wire.close()
                raise AssociationClosed(f"{self.peer}: sending failed: {exc}") from exc

    async def _send_stream(
        self, context_id: int, chunks: AsyncIterable[bytes | memoryview]
    ) -> None:
        held: bytes | memoryview | None = None
        async for chunk in chunks:
            if held is not None:
                await self._write_parts(
                    pdata_parts(context_id, 0x00, held, last=False, max_pdv=self.max_pdv_data)
                )
                await self._drain()
            held = chunk
        await self._write_parts(
            pdata_parts(context_id, 0x00, held or b"", last=True, max_pdv=self.max_pdv_data)
        )

    async def respond(
        self,
        request: DimseMessage,
        status_code: int,
        comment: str | None = None,
        identifier: bytes | None = None,
        elements: Mapping[str, object] | None = None,
        *,
        detail: str = "",
        stored: int = 0,
        sent: int = 0,
    ) -> None:
        """Answer `request`; a final status is logged as the operation's one line, with
        `detail` saying what the operation was about (level, destination, counts), and
        counted in the metrics with the bytes of instances it `stored` or `sent`."""
        response = make_response(request.command, status_code, comment, **(elements or {}))
        await self.send(request.context_id, response, identifier)
        if status.is_final(status_code):
            self.operations += 1
            request.answered = True
            finish_operation(
                self.peer,
                request,
                status_code,
                comment,
                detail,
                tally=self.tally,
                stored=stored,
                sent=sent,
            )

    async def respond_pending(self, request: DimseMessage, identifiers: Sequence[bytes]) -> None:
        """Send a Pending response per identifier, as a C-FIND does per match.

        Every Pending response to a request has the same command set: it is encoded once.
        The responses go out in one send(): a system call per response cost more than
        encoding its identifier.
        """
        if request.pending_command is None:
            response = make_response(request.command, status.PENDING)
            request.pending_command = _encoded(response, has_data_set=True)
        command, context_id = request.pending_command, request.context_id
        async with self._sending():
            parts: list[bytes | memoryview] = []
            for identifier in identifiers:
                parts += message_parts(context_id, command, identifier, self.max_pdv_data)
            await self._write_parts(parts)
            await self._drain()

    # -- requesting (either role) -------------------------------------------------

    async def request(
        self,
        context_id: int,
        command: CommandFields,
        data_set: DataSet | None = None,
    ) -> AsyncIterator[DimseMessage]:
        """Send a request and yield its responses, ending with the final one."""
        message_id = self.next_message_id()
        command["MessageID"] = message_id
        waiting: asyncio.Queue[DimseMessage | None] = asyncio.Queue()
        self._waiting[message_id] = waiting
        try:
            await self.send(context_id, command, data_set)
            while True:
                try:
                    async with asyncio.timeout(self.timeouts.dimse):
                        response = await waiting.get()
                except TimeoutError:
                    # A peer that stops answering mid-operation leaves the protocol state
                    # unknown: abort, as PS3.8 does when a timer expires.
                    await self.abort(f"no response within {self.timeouts.dimse} s")
                    raise AssociationClosed(
                        f"{self.peer}: no response within {self.timeouts.dimse} s"
                    ) from None
                if response is None:
                    raise AssociationClosed(f"{self.peer}: closed while awaiting a response")
                yield response
                if status.is_final(response.status):
                    if self.is_requestor:
                        self.operations += 1
                    return
        finally:
            del self._waiting[message_id]

    async def request_final(
        self,
        context_id: int,
        command: CommandFields,
        data_set: DataSet | None = None,
    ) -> DimseMessage:
        """Send a request that has exactly one response (C-ECHO, C-STORE, N-*) and return it."""
        final: DimseMessage | None = None
        async for response in self.request(context_id, command, data_set):
            final = response
        assert final is not None
        return final

    # -- serving (acceptor) ------------------------------------------------------

    async def serve(self, handlers: Handlers) -> None:
        """Answer requests until the peer releases or either side aborts."""
        while (message := await self._requests.get()) is not None:
            if self._requests.qsize() < REQUEST_QUEUE_DEPTH:
                self._wire.release(self._requests)
            await self._dispatch(handlers, message)
        if self.release_requested and not self.closed:
            async with self._send_lock:
                self._wire.write(encode_release_rp())
                await self._drain()
            self.closed = True
            self._wire.close()
        await self.wait_closed()

    async def _dispatch(self, handlers: Handlers, message: DimseMessage) -> None:
        handler = handlers.lookup(message.command_field, message.abstract_syntax)
        try:
            if handler is None:
                await message.discard()
                await self.respond(
                    message,
                    status.UNRECOGNIZED_OPERATION,
                    f"{Command(message.command_field).name} not supported for this SOP Class",
                )
                return
            await handler(self, message)
        except AssociationClosed as exc:
            name, why = operation_name(message.command_field), str(exc).removeprefix(self.peer)
            log.warning("%s from %s not answered%s", name, self.peer, why)
        except Exception:
            log.exception("%s: %s failed", self.peer, Command(message.command_field).name)
            await message.discard()
            if not message.answered and not self.closed:
                await self.respond(message, status.PROCESSING_FAILURE, "internal error, see log")
        finally:
            self._outstanding -= 1
            await message.discard()

    # -- ending ------------------------------------------------------------------

    async def release(self) -> None:
        """Requestor side: A-RELEASE-RQ, then wait (ARTIM) for the reply and close."""
        if self.closed:
            return
        async with self._send_lock:
            self._wire.write(encode_release_rq())
            await self._drain()
        try:
            async with asyncio.timeout(self.timeouts.acse):
                await self._release_rp.wait()
        except TimeoutError:
            await self.abort(f"no A-RELEASE-RP within {self.timeouts.acse} s")
            return
        self.closed = True
        self._wire.close()
        await self.wait_closed()

    async def abort(self, why: str) -> None:
        """Send A-ABORT (service user) and drop the connection; `why` goes to the log."""
        self._send_abort(AbortSource.SERVICE_USER, AbortReason.NOT_SPECIFIED, why)
        self._stop_reading()
        await self.wait_closed()

    def _send_abort(self, source: AbortSource, reason: AbortReason, why: str) -> None:
        self._note_ending("aborted by pacs", why)
        self.aborted = True
        if self._direct.close() and not self._wire.is_closing():
            self._wire.close()  # an A-ABORT in the middle of a PDU would be read as its data
        if not self._wire.is_closing():
            self._wire.write(encode_abort(source, reason))
            self._wire.close(grace=ABORT_GRACE)

    async def wait_closed(self) -> None:
        """Wait until the association has ended and the connection is closed."""
        await self._reading_ended.wait()
        await self._wire.wait_closed()
