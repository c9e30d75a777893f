"""The project's own error types. Library code raises these (or ValueError /
FileNotFoundError); only the CLI turns them into one-line messages."""


class KerasdanceError(Exception):
    """Base class of every error kerasdance raises on purpose."""


class DataFormatError(KerasdanceError, ValueError):
    """A data file does not follow its format (truncated, garbled, wrong name...).

    The message always names the file and what is wrong with it.
    """


class ModelFileError(KerasdanceError, ValueError):
    """A model file or its sidecar metadata is missing, tampered with or of the wrong shape."""
