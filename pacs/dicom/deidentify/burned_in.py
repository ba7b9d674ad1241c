"""Which instances may carry identity in their pixels, where a header profile cannot reach it.

PS3.15 E.1.1 leaves pixel data to the Clean Pixel Data Option, which pacs does not
offer: an instance that says it has burned-in annotation, or says nothing and is of a
kind that usually has it (ultrasound, screen captures, photographs, scanned documents,
slide labels), is refused rather than sent with a name on the image.
"""

from pydicom.dataset import Dataset

from pacs.errors import DeidentificationRefused

# Modalities whose images commonly carry text in the pixels when they do not say otherwise.
BURNS_IN_TEXT = frozenset({"US", "IVUS", "ES", "XC", "GM", "OP", "SC", "DOC", "OT", "SM"})
# Ultrasound, Secondary Capture, Visible Light (photographs, endoscopy, whole slides) and
# Encapsulated Document storage classes: the same kinds named by class, whatever the modality.
_CLASS_ROOTS = (
    "1.2.840.10008.5.1.4.1.1.3.1",
    "1.2.840.10008.5.1.4.1.1.6",
    "1.2.840.10008.5.1.4.1.1.7",
    "1.2.840.10008.5.1.4.1.1.77",
    "1.2.840.10008.5.1.4.1.1.104",
)


def _is_of_class(sop_class: str, root: str) -> bool:
    return sop_class == root or sop_class.startswith(root + ".")


def burns_in_text(ds: Dataset) -> bool:
    """Whether `ds` is of a modality or storage class that usually burns text into pixels."""
    modality = str(ds.get("Modality", "") or "").strip().upper()
    sop_class = str(ds.get("SOPClassUID", "") or "")
    return modality in BURNS_IN_TEXT or any(_is_of_class(sop_class, r) for r in _CLASS_ROOTS)


def refuse_burned_in(ds: Dataset) -> None:
    """Raise DeidentificationRefused when `ds`'s pixels may show who the patient is."""
    stated = str(ds.get("BurnedInAnnotation", "") or "").strip().upper()
    if stated == "YES":
        raise DeidentificationRefused("Burned In Annotation is YES: identity may be in the pixels")
    if not stated and burns_in_text(ds):
        kind = str(ds.get("Modality", "") or "") or "this storage class"
        raise DeidentificationRefused(
            f"Burned In Annotation is absent and {kind} images often have text in the pixels"
        )
