"""One action per attribute for a profile, resolved from Table E.1-1's codes (PS3.15 E.1.1).

The Basic Profile's code gives the action (combined codes resolved as pacs.dicom.
deidentify.codes says). Where options give an attribute several actions, removal (an
option's X) wins over keeping (K), keeping over cleaning (C), and any of them over the
Basic Profile's action.
"""

from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache

from pacs.dicom.deidentify.codes import Action, basic_action
from pacs.dicom.deidentify.profile import Profile
from pacs.dicom.deidentify.table import Option, Row, action_table

__all__ = ["Action", "Resolved", "basic_action", "compile_actions", "resolve"]


@dataclass(frozen=True, slots=True)
class Resolved:
    """An attribute's action; `otherwise` applies when a SHIFT meets a value that is no date."""

    action: Action
    otherwise: Action


def resolve(row: Row, options: tuple[Option, ...]) -> Resolved:
    """The action `row` takes under the chosen options."""
    basic = basic_action(row.basic)
    chosen = {row.options[option] for option in options if option in row.options}
    if "X" in chosen:
        return Resolved(Action.REMOVE, Action.REMOVE)
    if "K" in chosen:
        return Resolved(Action.KEEP, basic)
    if "C" in chosen:
        dated = Option.RETAIN_MODIFIED_DATES in options and (
            Option.RETAIN_MODIFIED_DATES in row.options
        )
        # Cleaning anything but dates keeps the value: pacs cannot tell a name inside
        # free text, so a site choosing Clean Descriptors vouches for its descriptions.
        return Resolved(Action.SHIFT, basic) if dated else Resolved(Action.KEEP, basic)
    return Resolved(basic, basic)


@cache
def compile_actions(profile: Profile) -> Mapping[int, Resolved]:
    """Every single-tag row of Table E.1-1 resolved for `profile`, keyed by tag."""
    options = profile.options()
    return {tag: resolve(row, options) for tag, row in action_table().by_tag.items()}
