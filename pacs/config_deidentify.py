"""The configuration of de-identification: the [deidentify.NAME] profiles, and the check that
every `deidentify` key of [[peers]] names one (or the built-in "basic")."""

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

from pacs.config_tls import path
from pacs.config_values import Invalid, boolean, one_of, show, text
from pacs.dicom.deidentify import Dates, Profile, SafePrivateTag

BUILT_IN = "basic"  # the Basic Profile, UIDs replaced, no options


@dataclass(frozen=True, slots=True)
class DeidentifyProfile:
    """A named profile and where its keyed hashes take their secret from.

    Neither `secret` nor `secret_file` set: the store's own secret (see
    pacs.store.secret), generated once. The secret is never part of the repr.
    """

    profile: Profile
    secret: str | None = field(default=None, repr=False)
    secret_file: Path | None = None


def _safe_private(value: object) -> frozenset[SafePrivateTag]:
    """Parse ["gggg,creator,ee", ...]: a private group, its block's creator and element byte."""
    if not isinstance(value, list):
        raise Invalid(f"must be a list, got {show(value)}")
    tags = set()
    for item in value:
        parts = text(item).split(",")
        try:
            group, creator, element = int(parts[0], 16), parts[1].strip(), int(parts[2], 16)
        except (IndexError, ValueError):
            raise Invalid(f'must be "gggg,creator,ee" (hexadecimal), got {show(item)}') from None
        if len(parts) != 3 or not group & 1 or not creator or not 0 <= element <= 0xFF:
            raise Invalid(f"{item!r} is not an odd group, a creator and an element byte")
        tags.add(SafePrivateTag(group, creator, element))
    return frozenset(tags)


PROFILE_KEYS: Mapping[str, Callable[[object], object]] = {
    "dates": one_of(list(Dates)),
    "retain_patient_characteristics": boolean,
    "retain_device_identity": boolean,
    "retain_institution_identity": boolean,
    "retain_uids": boolean,
    "clean_descriptors": boolean,
    "safe_private": _safe_private,
    "accept_burned_in_annotation": boolean,
}
SECRET_KEYS: Mapping[str, Callable[[object], object]] = {"secret": text, "secret_file": path}


def parse_profiles(tables: object) -> dict[str, DeidentifyProfile]:
    """Parse [deidentify]: one sub-table per profile name."""
    if not isinstance(tables, dict):
        raise Invalid(f"[deidentify]: must be a table of profiles, got {show(tables)}")
    profiles = {BUILT_IN: DeidentifyProfile(Profile())}
    for name, table in tables.items():
        where = f"[deidentify.{name}]"
        if name == BUILT_IN:
            raise Invalid(f"{where}: {BUILT_IN!r} is built in; give the profile another name")
        if not isinstance(table, dict):
            raise Invalid(f"{where}: must be a table, got {show(table)}")
        profiles[name] = _parse_profile(name, table, where)
    return profiles


def _parse_profile(name: str, table: dict[str, object], where: str) -> DeidentifyProfile:
    known = {**PROFILE_KEYS, **SECRET_KEYS}
    options: dict[str, object] = {}
    for key, raw in table.items():
        if key not in known:
            raise Invalid(f"unknown key {where} {key} (known: {', '.join(known)})")
        try:
            options[key] = known[key](raw)
        except Invalid as exc:
            raise Invalid(f"{where} {key}: {exc}") from None
    if "secret" in options and "secret_file" in options:
        raise Invalid(f"{where}: set secret or secret_file, not both")
    secret = options.pop("secret", None)
    secret_file = options.pop("secret_file", None)
    if "dates" in options:
        options["dates"] = Dates(str(options["dates"]))
    # Each value has been through its key's parser, so it has its field's type.
    profile = replace(Profile(name=name), **options)  # type: ignore[arg-type]
    return DeidentifyProfile(profile, secret, secret_file)  # type: ignore[arg-type]


def check_peer_profiles(
    peers: Sequence[tuple[str, str | None]], profiles: Mapping[str, DeidentifyProfile]
) -> None:
    """Refuse a peer's `deidentify` that names no profile: (peer number from 1, profile)."""
    for n, (_, name) in enumerate(peers, 1):
        if name is not None and name not in profiles:
            defined = ", ".join(sorted(profiles))
            raise Invalid(
                f"[[peers]][{n}] deidentify: no profile {name!r} "
                f"(defined: {defined}; add a [deidentify.{name}] table)"
            )
