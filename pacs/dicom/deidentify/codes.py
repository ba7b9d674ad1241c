"""Table E.1-1's action codes: what each does to an attribute of each Type, and which is stricter.

A combined code leaves the choice to the IOD the attribute sits in (PS3.15 E.1.1): X/Z
is "remove unless Type 2", X/D and X/Z/D "remove unless Type 1 or 2", Z/D "empty unless
Type 1", X/Z/U* "remove unless the sequence's UID references are needed". pacs does not
look up IODs, so it applies the member that conforms for every IOD, the Type 1 one: a
dummy value (D) satisfies Types 1, 2 and 3, an empty value (Z) Types 2 and 3, and a
sequence whose UIDs are replaced (U) keeps references resolving. Either way the
original value is gone.

Where two releases of the table give one attribute different codes, the stricter is
kept. Actions rank X > Z > D > U > K, each keeping no more of the original than the
next: removal keeps nothing; an empty value keeps that the attribute was there; a dummy
keeps that and puts a made-up value in (for a UID, a consistently replaced one, so
instances stay linked); U keeps the links and a sequence's items, themselves
de-identified; K keeps the value. A code is compared by its action for a Type 1
attribute (the one pacs applies), then for Type 2, then Type 3, which orders the codes
X > X/Z > Z > X/Z/D > Z/D > X/D > D > X/Z/U* > U > K. So X/Z is stricter than Z (same
action, but a Type 3 attribute may go), and Z stricter than Z/D (an empty value instead
of a dummy), even where the newer release says Z/D: an IOD that needs a value then
reads a de-identified object that lacks one, which leaks nothing.
"""

from enum import StrEnum


class Action(StrEnum):
    """What happens to one attribute."""

    REMOVE = "X"
    EMPTY = "Z"  # zero length; a sequence with no items
    DUMMY = "D"  # a value consistent with the VR; a sequence with one empty item
    KEEP = "K"  # unchanged; a sequence's items are de-identified in turn
    UID = "U"  # UIDs replaced through the UID mapping; a sequence's items in turn
    SHIFT = "S"  # dates moved by the patient's shift (C under Modified Dates)


_X, _Z, _D, _U, _K = Action.REMOVE, Action.EMPTY, Action.DUMMY, Action.UID, Action.KEEP
# Each code's action for an attribute of Type 1, Type 2 and Type 3.
BY_TYPE: dict[str, tuple[Action, Action, Action]] = {
    "X": (_X, _X, _X),
    "Z": (_Z, _Z, _Z),
    "D": (_D, _D, _D),
    "U": (_U, _U, _U),
    "K": (_K, _K, _K),
    "X/Z": (_Z, _Z, _X),
    "X/D": (_D, _D, _X),
    "Z/D": (_D, _Z, _Z),
    "X/Z/D": (_D, _Z, _X),
    "X/Z/U*": (_U, _Z, _X),
}
_RANK = {_K: 0, _U: 1, _D: 2, _Z: 3, _X: 4}


def basic_action(code: str) -> Action:
    """The Basic Profile's action for a table code, a combined code resolved for Type 1."""
    try:
        return BY_TYPE[code][0]
    except KeyError:
        raise ValueError(f"Table E.1-1 action code {code!r} is not one PS3.15 defines") from None


def strictness(code: str) -> tuple[int, int, int]:
    """A sort key: the greater, the less of the original the code keeps (see above)."""
    basic_action(code)  # raises on a code PS3.15 does not define
    type1, type2, type3 = BY_TYPE[code]
    return _RANK[type1], _RANK[type2], _RANK[type3]


def stricter(first: str, second: str) -> str:
    """The stricter of two codes for one attribute."""
    return first if strictness(first) >= strictness(second) else second
