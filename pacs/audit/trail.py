"""The audit trail [audit] configures: an Auditor and its sinks, for `serve` and admin commands."""

from pacs.audit.auditor import Auditor
from pacs.audit.forward import SyslogSink, SyslogTarget
from pacs.audit.sinks import JsonLinesSink, Sink
from pacs.config_audit import AuditSettings


def build_auditor(settings: AuditSettings, ae_title: str) -> Auditor:
    """The audit trail's sinks from [audit]: none, the JSON-lines file, syslog, or both."""
    sinks: list[Sink] = []
    if settings.file is not None:
        sinks.append(JsonLinesSink(settings.file))
    if (address := settings.syslog_address) is not None:
        tls, host, port = address
        target = SyslogTarget(
            host, port, tls, settings.ca_certificates, settings.certificate, settings.private_key
        )
        sinks.append(SyslogSink(target, settings.spool))
    return Auditor(ae_title, sinks)
