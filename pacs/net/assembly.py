"""Incoming P-DATA fragments become DIMSE messages (PS3.7 6.3.1, PS3.8 9.3.5.1).

A command set is gathered until its last fragment; a message with a data set then
takes that data set's fragments as they arrive, so nothing forces a whole data set
into memory. Fragments that break this order are protocol errors.
"""

from collections.abc import Mapping
from dataclasses import dataclass

from pacs.errors import ProtocolError
from pacs.net.dimse import NO_DATA_SET, DimseMessage, ReadFlow, decode_command
from pacs.net.pdu import AbortReason, PduError


@dataclass(frozen=True, slots=True)
class AcceptedContext:
    """An accepted presentation context: its ID, syntaxes, and whether we may send requests."""

    context_id: int
    abstract_syntax: str
    transfer_syntax: str
    as_scu: bool


class MessageAssembly:
    """The messages of one association's incoming fragments, on its accepted contexts."""

    def __init__(self, contexts: Mapping[int, AcceptedContext], flow: ReadFlow) -> None:
        self._contexts = contexts
        self._flow = flow
        self._command = bytearray()
        self._incoming: DimseMessage | None = None  # message whose data set is arriving

    @property
    def receiving(self) -> bool:
        """True while a data set is partly received."""
        return self._incoming is not None

    def take(
        self, context_id: int, control: int, is_last: bool, data: memoryview
    ) -> DimseMessage | None:
        """Take one PDV fragment; the new message once its command set is complete, else None."""
        if not control & 0x01:
            message = self._incoming
            if message is None or context_id != message.context_id:
                raise PduError("data set fragment without a command on its context")
            message.feed(data, is_last)
            if is_last:
                self._incoming = None
            return None
        if self._incoming is not None:
            raise PduError("command fragment while a data set is still arriving")
        if is_last and not self._command:  # the usual case: a command set in one PDV
            return self._message(context_id, bytes(data))
        self._command += data
        if not is_last:
            return None
        command = bytes(self._command)
        self._command.clear()
        return self._message(context_id, command)

    def _message(self, context_id: int, data: bytes) -> DimseMessage:
        cx = self._contexts.get(context_id)
        if cx is None:
            raise PduError(f"P-DATA on presentation context {context_id}, which was not accepted")
        try:
            command = decode_command(data)
        except ProtocolError as exc:
            raise PduError(str(exc), AbortReason.INVALID_PDU_PARAMETER_VALUE) from exc
        message = DimseMessage(
            command,
            context_id,
            cx.abstract_syntax,
            cx.transfer_syntax,
            has_data_set=int(command.get("CommandDataSetType", NO_DATA_SET)) != NO_DATA_SET,
            flow=self._flow,
        )
        if message.has_data_set:
            self._incoming = message
        return message

    def cut_short(self) -> None:
        """The association ended: a data set still arriving never will."""
        if self._incoming is not None:
            self._incoming.cut_short()
            self._incoming = None
