"""Start the review app for a workspace: open its store, find its image root, settle the tokens, run uvicorn.

>>> config = ReviewConfig(workspace="runs/pets", port=8765)  # serve(config) blocks until Ctrl-C
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from pixlabel.errors import InputError
from pixlabel.review.app import ReviewSettings, create_app
from pixlabel.review.auth import DEFAULT_NAME, is_loopback, new_token, parse_tokens
from pixlabel.review.files import image_root
from pixlabel.store import LabelStore, open_store
from pixlabel.webguard import default_host_names
from pixlabel.workspace import Workspace


@dataclass(frozen=True)
class ReviewConfig:
    workspace: str
    host: str = "127.0.0.1"
    port: int = 8765
    tokens: tuple[str, ...] = ()  # NAME:SECRET or SECRET; none: one is generated
    db: str | None = None  # database URL; None: WS/pixlabel.db
    images: str | None = None  # image root; None: the folder recorded in WS/config.yaml
    open_reads: bool = False  # reads without a token
    allowed_hosts: tuple[str, ...] = ()  # Host names besides localhost and `host` (IP literals always pass)

    def __post_init__(self) -> None:
        if not 0 < self.port < 65536:
            raise InputError(f"--port must be 1..65535, got {self.port}")


@dataclass(frozen=True)
class Prepared:
    store: LabelStore
    settings: ReviewSettings
    generated: str | None  # the secret made up because no --token was given


def prepare(config: ReviewConfig) -> Prepared:
    """Everything ``serve`` needs, checked before the port is opened."""
    ws = Workspace(Path(config.workspace))
    if not ws.root.is_dir():
        raise InputError(f"{ws.root}: workspace directory not found")
    if config.db is None and not ws.db_path.is_file():
        raise InputError(f"{ws.db_path}: no label store in this workspace; run pixlabel label first or pass --db")
    root = image_root(ws, config.images)
    tokens = parse_tokens(config.tokens)
    generated = None
    if not tokens:
        generated = new_token()
        tokens = {generated: DEFAULT_NAME}
    store = open_store(config.db if config.db is not None else ws.db_path)
    settings = ReviewSettings(root, tokens, open_reads=config.open_reads,
                              allowed_hosts=default_host_names(config.host, config.allowed_hosts))
    return Prepared(store, settings, generated)


def serve(config: ReviewConfig) -> None:
    """Run the app until interrupted (prints where, and the generated token if there is one)."""
    import uvicorn

    prepared = prepare(config)
    host = f"[{config.host}]" if ":" in config.host else config.host
    url = f"http://{host}:{config.port}/"
    print(f"pixlabel review: {prepared.store.url} · images from {prepared.settings.image_root}")
    if prepared.generated is not None:
        print(f"reviewer token ({DEFAULT_NAME}): {prepared.generated}")
        print(f"open {url}?token={prepared.generated}")
    else:
        print(f"open {url}?token=YOUR_SECRET  (reviewers: {', '.join(sorted(set(prepared.settings.tokens.values())))})")
    if prepared.settings.open_reads:
        where = "this machine" if is_loopback(config.host) else f"anyone who can reach {config.host}"
        print(f"--open-reads: {where} can read labels, history and thumbnails without a token")
    print(f"API docs: {url}docs", flush=True)
    try:
        uvicorn.run(create_app(prepared.store, prepared.settings), host=config.host, port=config.port,
                    log_level="warning")
    finally:
        prepared.store.close()
