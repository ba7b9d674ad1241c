"""A listening socket that cannot be opened, as a start-up error that names the key to fix."""

import errno
import socket

from pacs.errors import StartupError


def listen_failure(
    host: str, port: int, port_key: str, exc: OSError, host_key: str = "[server] host"
) -> StartupError:
    """Say which of `host_key` and `port_key` to fix when a listening socket fails."""
    address = f"{host}:{port}"
    if isinstance(exc, socket.gaierror):
        return StartupError(host_key, f"{host!r} does not resolve ({exc.strerror})")
    if exc.errno == errno.EADDRINUSE:
        return StartupError(port_key, f"{address} is already in use by another program")
    if exc.errno == errno.EACCES:
        return StartupError(port_key, f"not permitted to listen on {address}")
    if exc.errno == errno.EADDRNOTAVAIL:
        return StartupError(host_key, f"{host} is not an address of this machine")
    return StartupError(host_key, f"cannot listen on {address}: {exc.strerror or exc}")
