"""Exceptions the doctor's library code raises; only the CLI maps them to exit codes."""


class DoctorError(Exception):
    """The tool could not do its job (exit 2). The message is one line naming problem and fix."""


class InputNotFound(DoctorError):
    """A path given on the command line does not exist."""


class UnreadableInput(DoctorError):
    """A file exists but cannot be read as what it claims to be."""
