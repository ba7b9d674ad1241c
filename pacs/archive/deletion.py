"""`pacs delete`: remove a patient, study, series or instance from the index, audited and logged.

The index rows go at once, in one transaction beside a running server (see
`pacs.index.deletion` for how a concurrent store is kept); the blob files stay until
the next `pacs gc` finds them unreferenced and old enough.
"""

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass

from pacs.audit.auditor import Auditor
from pacs.audit.events import Node, StudyObject
from pacs.index.deletion import DeletionPlan, Deletions, Removed, Selection

log = logging.getLogger(__name__)

# Study UIDs named in the log line; more are counted, not listed.
LOGGED_STUDIES = 5

Confirm = Callable[[DeletionPlan], bool]
"""Asked, in a thread, whether to go ahead with a plan that is not empty."""


@dataclass(frozen=True, slots=True)
class DeleteOutcome:
    """The plan, and what was removed: None when nothing matched or it was not confirmed."""

    plan: DeletionPlan
    removed: Removed | None


async def delete(
    deletions: Deletions,
    auditor: Auditor,
    operator: Node,
    selection: Selection,
    confirm: Confirm,
) -> DeleteOutcome:
    """Plan the deletion, ask `confirm`, remove the rows, then audit and log what went."""
    plan = await deletions.plan(selection)
    if plan.empty or not await asyncio.to_thread(confirm, plan):
        return DeleteOutcome(plan, None)
    removed = await deletions.remove(plan)
    description = f"pacs delete --{selection.level}"
    for study in plan.studies:
        audited = StudyObject(study.study_instance_uid, study.patient_id, study.sop_classes)
        if study.whole:
            auditor.study_deleted(operator, audited, description)
        else:
            auditor.instances_deleted(operator, audited, description)
    uids = [study.study_instance_uid for study in plan.studies]
    listed = ", ".join(uids[:LOGGED_STUDIES])
    if len(uids) > LOGGED_STUDIES:
        listed += f" and {len(uids) - LOGGED_STUDIES} more"
    log.debug("delete --%s %s (issuer %r)", selection.level, selection.key, selection.issuer)
    log.warning(
        "deleted from the index by %s: %d patients, %d studies, %d series, %d instances "
        "(--%s; of studies %s); their files go at the next pacs gc",
        operator.ae_title,
        removed.patients,
        removed.studies,
        removed.series,
        removed.instances,
        selection.level,
        listed,
    )
    return DeleteOutcome(plan, removed)
