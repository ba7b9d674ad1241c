"""The DICOM upper layer on asyncio; the only package that imports pynetdicom."""
