"""Load a Hugging Face ``transformers`` checkpoint from a local directory or a hub id, failing fast offline.

A local directory (``save_pretrained`` output, or a hub snapshot copied by hand) always loads offline. A hub id
is tried in the Hugging Face cache first; only when it is not cached is the hub asked, with one quick request
first: without it, ``from_pretrained`` retries every file with backoff and an offline user waits minutes for
an ``OSError``.

>>> load_pretrained("google/owlv2-base-patch16-ensemble", what="OWLv2 detector", model_types=("owlv2",),
...                 load=lambda source, local_only: source)  # doctest: +SKIP
'google/owlv2-base-patch16-ensemble'
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from pixlabel.errors import InputError, PixlabelError

T = TypeVar("T")

# "name" or "owner/name" with the characters the hub allows; anything else can only be a path
_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*(/[A-Za-z0-9][\w.-]*)?$")


def _offline_hint(model_id: str) -> str:
    return (f"pass a local directory instead: on a machine with internet run `hf download {model_id} "
            "--local-dir DIR` (or save_pretrained the model and its processor into DIR) and copy DIR here")


def _load_checked(source: str, local_only: bool, *, what: str, model_types: tuple[str, ...],
                  load: Callable[[str, bool], T]) -> T:
    from transformers import AutoConfig

    config = AutoConfig.from_pretrained(source, local_files_only=local_only)
    if config.model_type not in model_types:
        raise InputError(f"{what} {source}: checkpoint is a {config.model_type!r} model, "
                         f"expected {' or '.join(repr(t) for t in model_types)}")
    return load(source, local_only)


def _check_hub(model_id: str, what: str) -> None:
    """One request without retries: is the repo there and reachable? Raises an actionable InputError if not."""
    from huggingface_hub import get_hf_file_metadata, hf_hub_url
    from huggingface_hub.utils import EntryNotFoundError, RepositoryNotFoundError

    try:
        get_hf_file_metadata(hf_hub_url(model_id, "config.json"), timeout=10)
    except RepositoryNotFoundError as exc:  # also gated/private repos without a token
        raise InputError(f"{what} {model_id!r}: no such model on the Hugging Face hub (or it is private/gated: "
                         f"log in with `hf auth login`); or {_offline_hint(model_id)}") from exc
    except EntryNotFoundError as exc:
        raise InputError(f"{what} {model_id!r}: the hub repo has no config.json, so it is not a transformers "
                         "checkpoint") from exc
    except Exception as exc:  # connection errors come as many types (DNS, proxy, TLS, timeout)
        raise InputError(f"{what} {model_id!r}: not in the Hugging Face cache and the hub is unreachable "
                         f"({type(exc).__name__}: {exc}); {_offline_hint(model_id)}") from exc


def load_pretrained(model: str, *, what: str, model_types: tuple[str, ...],
                    load: Callable[[str, bool], T]) -> T:
    """Resolve ``model`` (local directory or hub id), check its config's ``model_type``, then call
    ``load(source, local_files_only)``, which runs the ``from_pretrained`` calls. Any failure becomes an
    :class:`InputError` naming ``model`` and what to do about it.
    """
    if not isinstance(model, str) or not model.strip():
        raise InputError(f"{what}: expected a Hugging Face hub id or a local directory, got {model!r}")
    path = Path(model).expanduser()
    if path.is_dir():
        try:
            return _load_checked(str(path), True, what=what, model_types=model_types, load=load)
        except PixlabelError:
            raise
        except Exception as exc:  # missing/corrupt files surface as OSError, ValueError, safetensors errors...
            raise InputError(f"{what} {path}: cannot load it ({type(exc).__name__}: {exc}); expected a directory "
                             "written by save_pretrained (config.json, weights and processor files)") from exc
    if path.exists():
        raise InputError(f"{what} {model}: is a file; expected a directory written by save_pretrained or a hub id")
    if not _HUB_ID.match(model):
        raise InputError(f"{what} {model}: no such directory (and not a hub id like 'owner/name')")
    try:
        return _load_checked(model, True, what=what, model_types=model_types, load=load)  # HF cache only
    except OSError:
        pass  # not cached (or only partly): ask the hub
    except PixlabelError:
        raise
    except Exception as exc:
        raise InputError(f"{what} {model!r}: the cached copy does not load ({type(exc).__name__}: {exc})") from exc
    from huggingface_hub import constants

    if getattr(constants, "HF_HUB_OFFLINE", False):
        raise InputError(f"{what} {model!r}: not in the Hugging Face cache and HF_HUB_OFFLINE is set; "
                         f"{_offline_hint(model)}")
    _check_hub(model, what)
    try:
        return _load_checked(model, False, what=what, model_types=model_types, load=load)
    except PixlabelError:
        raise
    except Exception as exc:
        raise InputError(f"{what} {model!r}: download or load failed ({type(exc).__name__}: {exc}); "
                         f"{_offline_hint(model)}") from exc
