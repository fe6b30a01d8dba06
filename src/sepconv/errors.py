"""User-facing errors. The CLI prints ``str(error)`` as one line and exits with ``exit_code``."""

from __future__ import annotations


class SepconvError(Exception):
    """An error caused by the user's input or environment, reported without a traceback."""

    exit_code = 1


class UsageError(SepconvError):
    """The command line itself is wrong (options that conflict or are out of range): exit 2,
    as for argparse's own usage errors."""

    exit_code = 2


class InputError(SepconvError):
    """An input file is missing, unreadable, corrupt or unsuitable."""


class WeightsError(SepconvError):
    """A weights file is missing, unsafe, corrupt or of the wrong architecture."""


class OutputError(SepconvError):
    """An output cannot be written where asked (exists, equals an input, not writable)."""


class WorkInterruptedError(SepconvError):
    """The user interrupted the work (Ctrl-C); the message says how to continue."""

    exit_code = 130
