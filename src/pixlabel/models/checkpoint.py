"""Reading ``.pt`` files as data only: ``torch.load(weights_only=True)`` with errors a user can act on.

A ``.pt`` file is a pickle; unpickled in full, a crafted one runs any code it names (``os.system``, …).
``weights_only=True`` admits tensors and plain containers (dict, list, tuple, str, int, float, bool, None)
and refuses everything else before it is built, so every checkpoint pixlabel writes holds only those.

Example::

    state = load_weights_only(out / "last.pt", what="training checkpoint")   # InputError if refused or broken
"""

from __future__ import annotations

import pickle
import re
import zipfile
from pathlib import Path
from typing import Any

from pixlabel.errors import InputError


def load_weights_only(path: Path | str, *, what: str = "checkpoint") -> Any:
    """The data in ``path``, loaded with ``weights_only=True`` onto the CPU; :class:`InputError` naming the
    file when it holds anything but tensors and plain containers, or is truncated or not a ``.pt`` file."""
    import torch

    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        named = re.search(r"GLOBAL ([\w.]+)", str(exc))  # what weights_only refused: a function or class
        if named:
            raise InputError(f"{path}: refusing to load this {what}: it names {named.group(1)}, which is not "
                             "tensors or plain data; delete it if you did not make it with pixlabel") from exc
        raise InputError(f"{path}: not a readable {what} (not a PyTorch file of tensors and plain data)") from exc
    except (RuntimeError, EOFError, OSError, ValueError, zipfile.BadZipFile) as exc:  # truncated, not a .pt
        raise InputError(f"{path}: not a readable {what} ({type(exc).__name__}: {str(exc)[:200]})") from exc
