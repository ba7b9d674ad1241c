"""What the peers and [access] of the configuration mean to the running archive.

Read at start and again on SIGHUP: where C-MOVE and commitment reports go, who may do
what, which certificate subjects calling peers must present, which peers get
de-identified instances and under which profiles.
"""

import dataclasses
from dataclasses import dataclass
from pathlib import Path

from pacs.archive.access import AccessPolicy
from pacs.archive.deidentification import KeyedProfile, load_profiles
from pacs.config import Settings, load_settings
from pacs.net.peers import Destination


@dataclass(frozen=True, slots=True)
class PeerConfiguration:
    """The peers part of one reading of the configuration."""

    settings: Settings
    access: AccessPolicy
    destinations: dict[str, Destination]  # by AE title
    bound_subjects: dict[str, str]  # TLS certificate subject a calling peer must present
    deidentified: dict[str, str]  # AE title -> de-identification profile

    @classmethod
    def of(cls, settings: Settings) -> "PeerConfiguration":
        peers = settings.peers
        return cls(
            settings,
            AccessPolicy.build(peers, settings.access.unknown_peers),
            {p.ae_title: Destination(p.host, p.port, p.tls, p.certificate_subject) for p in peers},
            {p.ae_title: p.certificate_subject for p in peers if p.certificate_subject},
            {p.ae_title: p.deidentify for p in peers if p.deidentify is not None},
        )


def reread(
    config_path: Path, store_root: Path
) -> tuple[PeerConfiguration, dict[str, KeyedProfile]]:
    """The configuration file read again, with its de-identification profiles' secrets.

    Raises ConfigError or StartupError: a profile whose secret cannot be read fails the
    whole reading, as its peer must get neither originals nor instances under another
    secret.
    """
    peers = PeerConfiguration.of(load_settings(config_path))
    profiles = load_profiles(peers.settings.deidentify, peers.deidentified.values(), store_root)
    return peers, profiles


def needing_restart(new: Settings, running: Settings) -> list[str]:
    """The configuration tables that differ from the running ones (after a reload took
    what it can): the changes that take effect only at the next start."""
    return [
        f.name
        for f in dataclasses.fields(new)
        if f.name != "warnings" and getattr(new, f.name) != getattr(running, f.name)
    ]
