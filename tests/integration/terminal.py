"""Running a `pacs` command with stderr on a pseudo-terminal, as an admin at a console would."""

import asyncio
import fcntl
import os
import pty
import struct
import sys
import termios


def read_all(fd: int) -> str:
    """Everything written to a pseudo-terminal whose other end is closed."""
    chunks = []
    while True:
        try:
            chunk = os.read(fd, 65536)
        except OSError:  # EIO: the writing end is closed and nothing is left
            break
        if not chunk:
            break
        chunks.append(chunk)
    return b"".join(chunks).decode(errors="replace")


async def run_on_terminal(*args: str) -> tuple[int, str, str]:
    """Run `python -m pacs ARGS` with stderr on an 80-column pseudo-terminal; return its
    exit code, stdout, and what it drew on the terminal."""
    terminal, stderr = pty.openpty()
    # A new pseudo-terminal is 0 columns wide, too narrow for any bar: make it 80.
    fcntl.ioctl(stderr, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 80, 0, 0))
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "pacs", *args, stdout=asyncio.subprocess.PIPE, stderr=stderr
    )
    os.close(stderr)
    try:
        # Read while it runs: Linux may drop what is unread once the last writer is gone.
        reading = asyncio.create_task(asyncio.to_thread(read_all, terminal))
        out, _ = await process.communicate()
        drawn = await reading
    finally:
        os.close(terminal)
    return process.returncode or 0, out.decode(), drawn
