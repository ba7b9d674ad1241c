"""Parsers for TOML values shared by the configuration's tables; errors say what was expected."""

import reprlib
from collections.abc import Callable, Sequence
from typing import TypeVar

S = TypeVar("S", bound=str)


class Invalid(Exception):
    """A value failed validation; the message locates it and says why."""


def show(value: object) -> str:
    """Render a rejected value for a message, in TOML's spelling where it differs."""
    if isinstance(value, bool):
        return str(value).lower()
    return "a table" if isinstance(value, dict) else reprlib.repr(value)


def text(value: object, padding: str | None = None) -> str:
    """Return a string with `padding` (default: whitespace) stripped; refuse blank ones."""
    if not isinstance(value, str) or not (stripped := value.strip(padding)):
        raise Invalid(f"must be a non-blank string, got {show(value)}")
    return stripped


def boolean(value: object) -> bool:
    if not isinstance(value, bool):
        raise Invalid(f"must be true or false, got {show(value)}")
    return value


def ae_title(value: object) -> str:
    """Validate an AE title (PS3.5 6.2, AE): spaces around it are padding, not part of it."""
    title = text(value, " ")
    if len(title) > 16:
        reason = "must be at most 16 characters"
    elif not all(" " <= char <= "~" and char != "\\" for char in title):
        reason = "must be printable ASCII without backslash or control characters"
    else:
        return title
    raise Invalid(f"{reason}, got {show(value)}")


def one_of(choices: Sequence[S]) -> Callable[[object], S]:
    """Build a case-insensitive parser that returns the matching choice itself."""
    by_name = {choice.casefold(): choice for choice in choices}

    def parse(value: object) -> S:
        if (choice := by_name.get(text(value).casefold())) is None:
            raise Invalid(f"must be one of {', '.join(choices)}, got {show(value)}")
        return choice

    return parse
