"""A workspace's labels out to annotation tools (Label Studio, CVAT, FiftyOne, COCO) and reviews back in.

``tools.py`` holds the registry of tools and their writers/readers; ``workspace_io.py`` reads and writes the
label store. The formats themselves are pure functions in ``pixlabel.io.formats``.
"""

from pixlabel.interop.workspace_io import (
    EXPORT_TOOLS,
    IMPORT_TOOLS,
    ExportResult,
    ImportResult,
    export_workspace,
    import_review,
)

__all__ = ["EXPORT_TOOLS", "IMPORT_TOOLS", "ExportResult", "ImportResult", "export_workspace", "import_review"]
