"""The registry of DIMSE service handlers: one async handler per (command, abstract syntax)."""

from collections.abc import Awaitable, Callable, Iterable
from typing import TYPE_CHECKING

from pacs.net.dimse import Command, DimseMessage

if TYPE_CHECKING:
    from pacs.net.association import Association

Handler = Callable[["Association", DimseMessage], Awaitable[None]]


class Handlers:
    """The async handler for each (command, abstract syntax) this AE serves."""

    def __init__(self) -> None:
        self._table: dict[tuple[int, str], Handler] = {}

    def register(
        self, command: Command, abstract_syntaxes: Iterable[str], handler: Handler
    ) -> None:
        for uid in abstract_syntaxes:
            self._table[(int(command), str(uid))] = handler

    def lookup(self, command_field: int, abstract_syntax: str) -> Handler | None:
        return self._table.get((command_field, abstract_syntax))
