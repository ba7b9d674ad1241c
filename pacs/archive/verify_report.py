"""What `pacs verify` found: counts, findings, and the report's JSON form."""

from dataclasses import dataclass
from enum import StrEnum
from typing import Any


class FindingKind(StrEnum):
    """What can be wrong between the index and the store."""

    MISSING = "missing"  # an indexed instance whose blob is not stored
    CORRUPT = "corrupt"  # a stored blob whose bytes no longer hash to its address
    UNREFERENCED = "unreferenced"  # a stored blob that no instance references
    STALE_STAGING = "stale_staging"  # a staging file left behind (a crash mid-store)


@dataclass(frozen=True, slots=True)
class Finding:
    """One thing wrong: `address` is the blob's (a staging file's name for stale_staging)."""

    kind: FindingKind
    address: str
    sop_instance_uid: str | None
    detail: str

    def as_json(self) -> dict[str, Any]:
        return {
            "kind": str(self.kind),
            "address": self.address,
            "sop_instance_uid": self.sop_instance_uid,
            "detail": self.detail,
        }


@dataclass(frozen=True, slots=True)
class VerifyReport:
    """The outcome of one verification. No patient data: addresses, UIDs and counts only."""

    sample_percent: float
    instances_indexed: int
    blobs_stored: int
    blobs_rehashed: int
    bytes_rehashed: int
    staging_in_progress: int  # staging files young enough to be stores under way
    blobs_being_indexed: int  # unreferenced blobs young enough to be stores under way
    seconds: float
    findings: tuple[Finding, ...]

    @property
    def ok(self) -> bool:
        """Nothing wrong was found."""
        return not self.findings

    @property
    def mb_per_s(self) -> float:
        """Re-hashed megabytes (10^6 bytes) per second of the whole run."""
        return self.bytes_rehashed / 1e6 / self.seconds if self.seconds > 0 else 0.0

    def counts_by_kind(self) -> dict[FindingKind, int]:
        """How many findings of each kind, every kind listed."""
        counts = dict.fromkeys(FindingKind, 0)
        for finding in self.findings:
            counts[finding.kind] += 1
        return counts

    def as_json(self) -> dict[str, Any]:
        """The report as JSON values (`pacs verify --json`)."""
        return {
            "ok": self.ok,
            "sample_percent": self.sample_percent,
            "counts": {
                "instances_indexed": self.instances_indexed,
                "blobs_stored": self.blobs_stored,
                "blobs_rehashed": self.blobs_rehashed,
                "bytes_rehashed": self.bytes_rehashed,
                "staging_in_progress": self.staging_in_progress,
                "blobs_being_indexed": self.blobs_being_indexed,
                "seconds": round(self.seconds, 3),
                "mb_per_s": round(self.mb_per_s, 1),
            },
            "findings_by_kind": {str(k): n for k, n in self.counts_by_kind().items()},
            "findings": [finding.as_json() for finding in self.findings],
        }
