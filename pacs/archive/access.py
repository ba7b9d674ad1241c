"""Who may do what: the permissions of calling AEs, from the configured peers and [access].

Pure values, no I/O: `net/` asks the policy before serving and refuses in protocol words.
"""

import ipaddress
from collections.abc import Collection, Iterable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Protocol

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


class Operation(StrEnum):
    """What a calling AE can ask of the archive; the names are those of `allow` in the config."""

    ECHO = "echo"
    STORE = "store"
    FIND = "find"
    GET = "get"
    MOVE = "move"
    COMMIT = "commit"


ALL_OPERATIONS = frozenset(Operation)
NOTHING: frozenset[Operation] = frozenset()


class PeerRules(Protocol):
    """What the policy needs to know of a configured peer (config's Peer has these fields)."""

    @property
    def ae_title(self) -> str: ...
    @property
    def allow(self) -> frozenset[Operation]: ...
    @property
    def hosts(self) -> tuple[Network, ...]: ...
    @property
    def move_destinations(self) -> frozenset[str] | None: ...


@dataclass(frozen=True, slots=True)
class PeerAccess:
    """One peer's permissions: operations, source networks (empty: any) and move destinations."""

    ae_title: str
    allow: frozenset[Operation] = ALL_OPERATIONS
    hosts: tuple[Network, ...] = ()
    move_destinations: frozenset[str] | None = None  # None: any configured peer

    def admits(self, address: str) -> bool:
        """True when `address` (an IP address) is one the peer may connect from."""
        if not self.hosts:
            return True
        ip = _ip(address)
        return ip is not None and any(ip in network for network in self.hosts)


def _ip(address: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    """The address as an IP address; an IPv4-mapped IPv6 address counts as its IPv4 address."""
    try:
        ip = ipaddress.ip_address(address.split("%", maxsplit=1)[0])
    except ValueError:
        return None
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    return ip


def _strip(ae_title: str) -> str:
    # Titles arrive space-padded from the wire (PS3.5 6.2, AE); padding is not significant.
    return ae_title.strip(" ")


@dataclass(frozen=True, slots=True)
class AccessPolicy:
    """The permissions of every calling AE: configured peers by title, and everyone else."""

    peers: dict[str, PeerAccess] = field(default_factory=dict)
    unknown_peers: frozenset[Operation] = frozenset({Operation.ECHO, Operation.STORE})

    @classmethod
    def build(
        cls, peers: Iterable[PeerRules], unknown_peers: Collection[Operation]
    ) -> "AccessPolicy":
        """Build the policy from the configured peers and what unknown AEs may do."""
        return cls(
            {
                peer.ae_title: PeerAccess(
                    peer.ae_title, peer.allow, peer.hosts, peer.move_destinations
                )
                for peer in peers
            },
            frozenset(unknown_peers),
        )

    def operations_for(self, ae_title: str, address: str) -> frozenset[Operation]:
        """What `ae_title` connecting from `address` may do; empty: it may not associate.

        A peer connecting from outside its `hosts` may do nothing: its title is
        not trusted from there, and it is not treated as an unknown AE either.
        """
        peer = self.peers.get(_strip(ae_title))
        if peer is None:
            return self.unknown_peers
        return peer.allow if peer.admits(address) else NOTHING

    def allowed(self, ae_title: str, address: str, operation: Operation) -> bool:
        """True when `ae_title` connecting from `address` may perform `operation`."""
        return operation in self.operations_for(ae_title, address)

    def outside_hosts(self, ae_title: str, address: str) -> bool:
        """True when `ae_title` is a peer and `address` is not one of its hosts."""
        peer = self.peers.get(_strip(ae_title))
        return peer is not None and not peer.admits(address)

    def may_move_to(self, requester: str, destination: str) -> bool:
        """True when `requester` may send a C-MOVE's images to the peer `destination`.

        The destination must be a configured peer; an unknown requester (allowed
        `move` through `unknown_peers`) may use any of them.
        """
        destination = _strip(destination)
        if destination not in self.peers:
            return False
        peer = self.peers.get(_strip(requester))
        if peer is None or peer.move_destinations is None:
            return True
        return destination in peer.move_destinations
