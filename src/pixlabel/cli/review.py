"""``pixlabel review WS``: a web page (and JSON API) where people fix the doubtful labels of a workspace.

Example::

    pixlabel review runs/pets --port 8765                      # prints a generated token and the URL
    pixlabel review runs/pets --host 0.0.0.0 --allowed-host pets.lan --token ana:SECRET16CHARSMIN --token bob:…
"""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # fastapi loads when `review` runs, not for every pixlabel command (~0.5 s)
    from pixlabel.review.server import ReviewConfig


def register(sub: Any) -> None:
    p = sub.add_parser(
        "review", help="web page to review and correct labels, least confident first",
        description="Serve a review page and JSON API (docs at /docs) over the workspace's label store. "
                    "Corrections are stored as human labels (with who/when/old -> new in the history) and "
                    "become seeds of the next `pixlabel label` run on the workspace.")
    p.add_argument("workspace", metavar="WS", help="workspace directory made by pixlabel label")
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=8765, help="port (default 8765)")
    p.add_argument("--token", action="append", default=[], metavar="[NAME:]SECRET",
                   help="reviewer token; repeat for several reviewers; NAME is recorded in the history "
                        "(default name: reviewer); SECRET has at least 16 characters. Without --token one is "
                        "generated and printed")
    p.add_argument("--open-reads", action="store_true",
                   help="let anyone who can connect read labels, history and thumbnails without a token "
                        "(writes always need one)")
    p.add_argument("--allowed-host", action="append", default=[], metavar="NAME",
                   help="a host name reviewers use to reach the server (repeatable); requests naming another "
                        "Host get 400 (DNS-rebinding guard). IP addresses, localhost and --host always work")
    p.add_argument("--db", metavar="URL", help="label store URL (default: WS/pixlabel.db)")
    p.add_argument("--images", metavar="FOLDER",
                   help="image folder (default: the one pixlabel label recorded in WS/config.yaml)")
    p.set_defaults(func=run)


def config_from_args(args: argparse.Namespace) -> ReviewConfig:
    from pixlabel.review.server import ReviewConfig

    return ReviewConfig(workspace=args.workspace, host=args.host, port=args.port, tokens=tuple(args.token),
                        db=args.db, images=args.images, open_reads=args.open_reads,
                        allowed_hosts=tuple(args.allowed_host))


def run(args: argparse.Namespace) -> int:
    from pixlabel.review.server import serve

    serve(config_from_args(args))
    return 0
