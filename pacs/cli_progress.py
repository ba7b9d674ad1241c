"""The admin commands' progress bar: tqdm on stderr, drawn only when stderr is a terminal."""

import sys
from types import TracebackType
from typing import Never, Self

from tqdm import tqdm


class ProgressBar:
    """Work done so far, counted in `unit` ("B" is scaled to kB, MB...); tqdm draws
    nothing when stderr is not a terminal, so logs and pipes stay clean."""

    def __init__(self, unit: str, desc: str | None = None, *, leave: bool = False) -> None:
        self._unit, self._desc, self._leave = unit, desc, leave
        self._bar: tqdm[Never] | None = None

    def start(self, total: int) -> None:
        self._bar = tqdm(
            total=total,
            unit=self._unit,
            unit_scale=self._unit == "B",
            desc=self._desc,
            file=sys.stderr,
            disable=None,
            leave=self._leave,
        )

    def advance(self, count: int) -> None:
        if self._bar is not None:
            self._bar.update(count)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()
