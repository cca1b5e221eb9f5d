"""Dataset formats: pure ``parse_*``/``format_*`` functions on strings and dicts plus thin file I/O.

One module per format (``imagefolder``, ``csvfmt``, ``coco``, ``yolo``, ``voc``), each reading into and
writing from :class:`pixlabel.records.Dataset`. Repairs such as a box clipped to its image are reported as
:class:`FormatWarning`; malformed input raises :class:`pixlabel.errors.InputError` naming file and row/id.
"""

from pixlabel.io.formats._common import FormatWarning

__all__ = ["FormatWarning"]
