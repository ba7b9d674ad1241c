"""AccessPolicy: what each calling AE may do, from where, and where its C-MOVEs may go."""

from ipaddress import ip_network

from pacs.archive.access import ALL_OPERATIONS, AccessPolicy, Operation, PeerAccess

FIND_ONLY = frozenset({Operation.FIND})
POLICY = AccessPolicy(
    {
        "WS": PeerAccess("WS", FIND_ONLY | {Operation.MOVE}, move_destinations=frozenset({"WS"})),
        "CT": PeerAccess("CT", hosts=(ip_network("10.1.0.0/16"), ip_network("fd00::/64"))),
        "VIEWER": PeerAccess("VIEWER", frozenset()),
    },
    frozenset({Operation.ECHO, Operation.STORE}),
)


def test_a_peer_gets_its_allow_list_and_padding_from_the_wire_is_ignored() -> None:
    assert POLICY.operations_for("WS  ", "127.0.0.1") == FIND_ONLY | {Operation.MOVE}
    assert POLICY.allowed("WS", "127.0.0.1", Operation.FIND)
    assert not POLICY.allowed("WS", "127.0.0.1", Operation.GET)


def test_an_unknown_ae_gets_what_unknown_peers_allows() -> None:
    assert POLICY.operations_for("STRANGER", "10.9.9.9") == {Operation.ECHO, Operation.STORE}
    assert not POLICY.allowed("ws", "127.0.0.1", Operation.FIND)  # titles are case-sensitive


def test_a_peer_outside_its_hosts_may_do_nothing() -> None:
    assert POLICY.operations_for("CT", "10.1.200.3") == ALL_OPERATIONS
    assert POLICY.operations_for("CT", "::ffff:10.1.0.7") == ALL_OPERATIONS  # IPv4-mapped
    assert POLICY.operations_for("CT", "fd00::12") == ALL_OPERATIONS
    assert POLICY.operations_for("CT", "10.2.0.1") == frozenset()
    assert POLICY.operations_for("CT", "not an address") == frozenset()
    assert POLICY.outside_hosts("CT", "10.2.0.1")
    assert not POLICY.outside_hosts("VIEWER", "10.2.0.1")  # no hosts: allowed nothing anyway
    assert not POLICY.outside_hosts("STRANGER", "10.2.0.1")


def test_moves_go_only_to_configured_peers_the_requester_may_use() -> None:
    assert POLICY.may_move_to("WS", "WS")
    assert not POLICY.may_move_to("WS", "VIEWER")  # a peer, but not in its move_destinations
    assert POLICY.may_move_to("CT", "VIEWER")  # no move_destinations: any peer
    assert POLICY.may_move_to("STRANGER", "VIEWER")
    assert not POLICY.may_move_to("CT", "NOWHERE")


def test_build_takes_peers_from_any_object_with_their_fields() -> None:
    policy = AccessPolicy.build([PeerAccess("A", FIND_ONLY)], [])

    assert policy.operations_for("A", "1.2.3.4") == FIND_ONLY
    assert policy.operations_for("B", "1.2.3.4") == frozenset()
