"""The configuration of permissions: [access], and the permission keys of [[peers]]."""

import ipaddress
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from pacs.archive.access import Network, Operation, PeerRules
from pacs.config_values import Invalid, ae_title, boolean, one_of, show, text


@dataclass(frozen=True, slots=True)
class AccessSettings:
    """[access]: what a calling AE that is not a peer may do, and the called AE title check."""

    unknown_peers: frozenset[Operation] = frozenset({Operation.ECHO, Operation.STORE})
    check_called_ae_title: bool = False


def list_of(value: object) -> list[object]:
    if not isinstance(value, list):
        raise Invalid(f"must be a list, got {show(value)}")
    return value


def operations(value: object) -> frozenset[Operation]:
    """Parse a list of operation names (`allow`, `unknown_peers`); [] allows nothing."""
    parse = one_of(list(Operation))
    return frozenset(Operation(parse(item)) for item in list_of(value))


def network(value: object) -> Network:
    """Parse an IP address or CIDR range; host names are refused (no DNS in a permission)."""
    address = text(value)
    try:
        return ipaddress.ip_network(address)
    except ValueError as exc:
        if "has host bits set" in str(exc):
            meant = ipaddress.ip_network(address, strict=False)
            raise Invalid(f"{address!r} has host bits set (did you mean {meant}?)") from None
        raise Invalid(f"must be an IP address or CIDR range, got {show(value)}") from None


def networks(value: object) -> tuple[Network, ...]:
    return tuple(network(item) for item in list_of(value))


def ae_titles(value: object) -> frozenset[str]:
    return frozenset(ae_title(item) for item in list_of(value))


ACCESS_KEYS: Mapping[str, Callable[[object], object]] = {
    "unknown_peers": operations,
    "check_called_ae_title": boolean,
}
PEER_ACCESS_KEYS: Mapping[str, Callable[[object], object]] = {
    "allow": operations,
    "hosts": networks,
    "move_destinations": ae_titles,
}


def check_move_destinations(peers: Sequence[PeerRules]) -> None:
    """Refuse a move destination that is not a configured peer: C-MOVE could never use it."""
    titles = {peer.ae_title for peer in peers}
    for n, peer in enumerate(peers, 1):
        for title in sorted(peer.move_destinations or ()):
            if title not in titles:
                raise Invalid(
                    f"[[peers]][{n}] move_destinations: {title!r} is not a configured peer"
                )


def moved_called_ae_check(document: dict[str, object]) -> tuple[str, ...]:
    """Accept [server] check_called_ae_title as an alias of [access]'s; say it is deprecated."""
    server, access = document.get("server"), document.get("access", {})
    if not isinstance(server, dict) or "check_called_ae_title" not in server:
        return ()
    if not isinstance(access, dict):
        return ()  # [access] is refused with its own message
    if "check_called_ae_title" in access:
        raise Invalid(
            "[server] check_called_ae_title: moved to [access] check_called_ae_title, "
            "which is also set; remove the one in [server]"
        )
    try:
        check = boolean(server["check_called_ae_title"])
    except Invalid as exc:
        raise Invalid(f"[server] check_called_ae_title: {exc}") from None
    document["server"] = {k: v for k, v in server.items() if k != "check_called_ae_title"}
    document["access"] = {**access, "check_called_ae_title": check}
    return (
        "[server] check_called_ae_title is deprecated: "
        "set check_called_ae_title in [access] instead",
    )
