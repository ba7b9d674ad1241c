"""An HTTP proxy on loopback that passes each request to a real server and notes its headers.

moto accepts an upload's checksum headers without checking them, as a real S3 would; the
proxy lets a test see that pacs sends them, and with which values.
"""

import http.client
import http.server
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field


@dataclass
class Recorded:
    """The requests seen so far: (method, path, headers with lower-case names)."""

    requests: list[tuple[str, str, dict[str, str]]] = field(default_factory=list)


def _handler(upstream_port: int, recorded: Recorded) -> type[http.server.BaseHTTPRequestHandler]:
    class Forward(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def _forward(self) -> None:
            length = int(self.headers.get("content-length", 0))
            body = self.rfile.read(length) if length else None
            headers = {name.lower(): value for name, value in self.headers.items()}
            recorded.requests.append((self.command, self.path, headers))
            upstream = http.client.HTTPConnection("127.0.0.1", upstream_port, timeout=30)
            try:
                upstream.request(self.command, self.path, body, dict(self.headers.items()))
                response = upstream.getresponse()
                payload = response.read()
            finally:
                upstream.close()
            self.send_response(response.status)
            for name, value in response.getheaders():
                if name.lower() not in ("content-length", "transfer-encoding", "connection"):
                    self.send_header(name, value)
            self.send_header("content-length", str(len(payload)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(payload)

        do_GET = do_PUT = do_HEAD = do_DELETE = do_POST = _forward

        def log_message(self, format: str, *args: object) -> None:
            pass

    return Forward


@contextmanager
def recording_proxy(upstream_port: int) -> Iterator[tuple[str, Recorded]]:
    """The proxy's URL and what it records, while the block runs."""
    recorded = Recorded()
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _handler(upstream_port, recorded))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", recorded
    finally:
        server.shutdown()
        server.server_close()
        thread.join()
