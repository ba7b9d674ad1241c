"""What goes wrong converting a stored instance to another transfer syntax; messages say why."""


class ConversionUnavailable(Exception):
    """No conversion from the stored transfer syntax to the one asked for exists here.

    The message names the syntaxes and, when a decoder package is missing,
    what to install.
    """


class ConversionFailed(ConversionUnavailable):
    """A converter exists but could not convert this instance (unreadable file, bad codestream)."""
