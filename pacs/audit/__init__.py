"""The audit trail (PS3.15 A.5, IHE ATNA): events, their DICOM audit message XML, and sinks.

Nothing here knows DICOM networking: net/ and archive/ describe who did what to which
study with the plain values of `events`, and the `Auditor` hands each event to its sinks.
"""
