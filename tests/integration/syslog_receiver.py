"""A loopback RFC 5425 syslog receiver for the audit tests: stopped and started at will."""

import asyncio
import ssl
import xml.etree.ElementTree as ET
from collections.abc import Callable
from dataclasses import dataclass

BOM = b"\xef\xbb\xbf"


@dataclass(frozen=True, slots=True)
class Received:
    """One syslog message: its RFC 5424 header and the audit message XML."""

    header: str
    xml: ET.Element

    @property
    def key(self) -> tuple[str, str]:
        """(EventID code, EventDateTime): what identifies an event across the two sinks."""
        identification = self.xml.find("EventIdentification")
        assert identification is not None
        event_id = identification.find("EventID")
        assert event_id is not None
        return event_id.get("csd-code", ""), identification.get("EventDateTime", "")


def parse(message: bytes) -> Received:
    header, _, xml = message.partition(BOM)
    return Received(header.decode("ascii"), ET.fromstring(xml))


class SyslogReceiver:
    """Reads octet-counted frames on a loopback port; keeps the port across restarts."""

    def __init__(self, tls: ssl.SSLContext | None = None) -> None:
        self._tls = tls
        self.tls_versions: set[str] = set()  # of the connections that delivered messages
        self.client_subjects: list[object] = []  # the client certificates' subjects
        self.port = 0
        self.messages: list[Received] = []
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self._arrived = asyncio.Condition()

    async def start(self) -> None:
        self._server = await asyncio.start_server(
            self._on_client, "127.0.0.1", self.port, reuse_address=True, ssl=self._tls
        )
        self.port = self._server.sockets[0].getsockname()[1]

    async def _on_client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._writers.add(writer)
        if (tls := writer.get_extra_info("ssl_object")) is not None:
            self.tls_versions.add(tls.version())
            if (certificate := tls.getpeercert()) is not None:
                self.client_subjects.append(certificate.get("subject"))
        try:
            while True:
                length = await reader.readuntil(b" ")
                message = await reader.readexactly(int(length[:-1]))
                async with self._arrived:
                    self.messages.append(parse(message))
                    self._arrived.notify_all()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            self._writers.discard(writer)
            writer.close()

    async def stop(self) -> None:
        """Stop listening and drop every connection, as a receiver that goes down does."""
        assert self._server is not None
        self._server.close()
        for writer in list(self._writers):
            writer.close()
        await self._server.wait_closed()
        self._server = None

    async def wait_for(self, done: Callable[[list[Received]], bool], timeout: float) -> None:
        async with asyncio.timeout(timeout), self._arrived:
            await self._arrived.wait_for(lambda: done(self.messages))

    def keys(self) -> set[tuple[str, str]]:
        return {message.key for message in self.messages}
