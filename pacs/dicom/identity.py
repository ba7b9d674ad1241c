"""How pacs names itself in associations and in the files it writes (PS3.7 D.3.3.2, PS3.10 7.1)."""

from pydicom.uid import UID

from pacs import __version__

IMPLEMENTATION_CLASS_UID = UID("2.25.208944135716443187960281040311566318977")
IMPLEMENTATION_VERSION_NAME = "PACS_" + __version__.replace(".", "")
