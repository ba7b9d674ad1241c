"""DIMSE messages (PS3.7 9, 10): command sets on pynetdicom's codecs, data sets streamed."""

import asyncio
import time
from collections import deque
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from enum import IntEnum
from functools import cached_property
from typing import Any, Protocol

from pacs.errors import ProtocolError
from pacs.net.command_set import ReceivedCommand

NO_DATA_SET = 0x0101
DATA_SET_PRESENT = 0x0001
RESPONSE_BIT = 0x8000  # set in the Command Field of every response (PS3.7 E.1)
# Data-set bytes that may wait for a slow service before the socket is left unread,
# and what they must fall to before it is read again.
HELD_BYTES = 2 * 1024 * 1024
RELEASE_BYTES = 512 * 1024
ERROR_COMMENT_MAX = 64  # LO


class Command(IntEnum):
    """Command Field values (PS3.7 E.1)."""

    C_STORE_RQ = 0x0001
    C_GET_RQ = 0x0010
    C_FIND_RQ = 0x0020
    C_MOVE_RQ = 0x0021
    C_ECHO_RQ = 0x0030
    N_EVENT_REPORT_RQ = 0x0100
    N_GET_RQ = 0x0110
    N_SET_RQ = 0x0120
    N_ACTION_RQ = 0x0130
    N_CREATE_RQ = 0x0140
    N_DELETE_RQ = 0x0150
    C_CANCEL_RQ = 0x0FFF
    C_STORE_RSP = 0x8001
    C_GET_RSP = 0x8010
    C_FIND_RSP = 0x8020
    C_MOVE_RSP = 0x8021
    C_ECHO_RSP = 0x8030
    N_EVENT_REPORT_RSP = 0x8100
    N_ACTION_RSP = 0x8130


def is_response(command_field: int) -> bool:
    return bool(command_field & RESPONSE_BIT)


CommandFields = dict[str, Any]
"""A command set to send: keyword -> value (encoded by `command_set.encode_command`)."""


def decode_command(data: bytes) -> ReceivedCommand:
    """Decode a received command set; raise ProtocolError when it is not one."""
    command = ReceivedCommand(data)
    try:
        command_field = command.get("CommandField")
        # The reader routes on these: a malformed one must fail here, as a protocol error.
        routing = [command.get(keyword, 0) for keyword in _ROUTING]
    except Exception as exc:
        raise ProtocolError(f"undecodable command set: {exc}") from exc
    if not isinstance(command_field, int):
        raise ProtocolError("undecodable command set: no Command Field")
    if not all(isinstance(value, int) for value in routing):
        raise ProtocolError("undecodable command set: a message ID or data set type is not US")
    if command_field not in Command._value2member_map_:
        raise ProtocolError(f"unknown command field 0x{command_field:04X}")
    return command


_ROUTING = ("MessageID", "MessageIDBeingRespondedTo", "CommandDataSetType")


def make_response(
    request: ReceivedCommand, status: int, comment: str | None = None, **elements: Any
) -> CommandFields:
    """Build the response command set answering `request` (PS3.7 9.3, 10.3)."""
    response: CommandFields = {
        "CommandField": int(request.CommandField) | RESPONSE_BIT,
        "MessageIDBeingRespondedTo": request.get("MessageID"),
    }
    if "AffectedSOPClassUID" in request:
        response["AffectedSOPClassUID"] = request.AffectedSOPClassUID
    elif "RequestedSOPClassUID" in request:
        response["AffectedSOPClassUID"] = request.RequestedSOPClassUID
    if "AffectedSOPInstanceUID" in request:
        response["AffectedSOPInstanceUID"] = request.AffectedSOPInstanceUID
    response["CommandDataSetType"] = NO_DATA_SET
    response["Status"] = status
    if comment:
        response["ErrorComment"] = comment[:ERROR_COMMENT_MAX]
    response.update(elements)
    return response


class ReadFlow(Protocol):
    """The socket's reading, which a data set's consumer holds while it lags behind."""

    def hold(self, reason: object) -> None: ...

    def release(self, reason: object) -> None: ...


@dataclass(eq=False)
class DimseMessage:
    """One received DIMSE message: its command set and, if any, its data set as fragments.

    The reader feeds the data set's fragments (views of the received bytes) as they are
    parsed; the service takes them with `fragments()`. While more than HELD_BYTES wait
    for the service, the socket is left unread (`flow`).
    """

    command: ReceivedCommand
    context_id: int
    abstract_syntax: str
    transfer_syntax: str
    has_data_set: bool
    flow: ReadFlow | None = None
    _chunks: deque[memoryview] = field(default_factory=deque)
    _queued: int = 0  # bytes fed and not yet taken
    _holding: bool = False
    _complete: bool = False  # the data set's last fragment was fed
    _cut: bool = False  # the association ended before it
    _waiter: asyncio.Future[None] | None = None
    _finished: bool = False
    _ignored: bool = False
    answered: bool = False  # a final response has been sent
    pending_command: bytes | None = None  # our Pending response's command set, once encoded
    received_at: float = field(default_factory=time.monotonic)

    @cached_property  # read several times per message
    def command_field(self) -> int:
        return int(self.command.CommandField)

    @cached_property
    def message_id(self) -> int:
        if is_response(self.command_field):
            return int(self.command.MessageIDBeingRespondedTo)
        return int(self.command.MessageID)

    @cached_property
    def status(self) -> int:
        return int(self.command.get("Status", 0))

    async def fragments(self) -> AsyncIterator[memoryview]:
        """Yield the data set's bytes as they arrive; empty when there is no data set.

        The views stay valid once yielded. Raises ProtocolError when the association
        ends before the data set does.
        """
        if not self.has_data_set:
            return
        while not self._finished:
            if self._chunks:
                chunk = self._chunks.popleft()
                self._queued -= len(chunk)
                if self._holding and self._queued <= RELEASE_BYTES:
                    self._release()
                yield chunk
            elif self._cut:
                self._finished = True
                raise ProtocolError("the association ended before the data set was complete")
            elif self._complete:
                self._finished = True
            else:
                self._waiter = asyncio.get_running_loop().create_future()
                try:
                    await self._waiter
                finally:
                    self._waiter = None

    async def read_data_set(self) -> bytes:
        """Collect the whole data set: only for small ones (identifiers, N-ACTION information)."""
        return b"".join([fragment async for fragment in self.fragments()])

    async def discard(self) -> None:
        """Consume what is left of the data set so the next message can be read."""
        try:
            async for _ in self.fragments():
                pass
        except ProtocolError:
            pass

    def feed(self, fragment: memoryview, is_last: bool) -> None:
        """Reader side: hand on one fragment; holds the socket while the service lags."""
        if self._ignored:
            return
        if fragment:
            self._chunks.append(fragment)
            self._queued += len(fragment)
            if self._queued > HELD_BYTES and not self._holding and self.flow is not None:
                self._holding = True
                self.flow.hold(self)
        if is_last:
            self._complete = True
        self._wake()

    def _wake(self) -> None:
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)

    def _release(self) -> None:
        self._holding = False
        if self.flow is not None:
            self.flow.release(self)

    def ignore(self) -> None:
        """Reader side: nobody will read this message's data set; drop it as it arrives."""
        self._ignored = True

    def cut_short(self) -> None:
        """Reader side: the association ended; wake a waiting consumer with an error."""
        self._chunks.clear()
        self._queued = 0
        self._cut = True
        if self._holding:
            self._release()
        self._wake()
