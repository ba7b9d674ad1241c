"""The one translation of database failures into the domain's StoreUnavailable."""

from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy.exc import DBAPIError
from sqlalchemy.exc import TimeoutError as PoolTimeout

from pacs.errors import StoreUnavailable


def reason(exc: BaseException) -> str:
    """The first line of what the driver said."""
    orig = getattr(exc, "orig", None)
    cause = orig if orig is not None else exc
    lines = str(cause).strip().splitlines()
    # A timeout says nothing of itself (str(TimeoutError()) is empty): name it.
    return lines[0] if lines else type(cause).__name__


@contextmanager
def index_errors() -> Iterator[None]:
    """Turn "the database cannot do it now" into StoreUnavailable."""
    try:
        yield
    except (DBAPIError, PoolTimeout, OSError) as exc:
        raise StoreUnavailable(f"index database unavailable: {reason(exc)}") from exc
