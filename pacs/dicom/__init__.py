"""Pure DICOM semantics on pydicom: no I/O."""
