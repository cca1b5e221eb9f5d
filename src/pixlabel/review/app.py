"""The review app: one server-rendered page plus a small JSON API over a ``LabelStore``.

Writes need ``Authorization: Bearer`` with a reviewer secret or the page token rendered into the page (the
header only, never the cookie: a cookie would let another site's form write through a reviewer's browser).
Reads need the token too unless ``open_reads`` (``--open-reads``): the header, or the HttpOnly
``pixlabel_token`` cookie the page sets from ``/?token=SECRET`` (``<img>`` tags cannot send headers).
Wrong tokens count per client address (429 past 10 a minute). Middleware, outermost first: Host check
(DNS rebinding), security headers (CSP with a per-request script nonce, no third-party origin), a 1 MB body
cap before any JSON is parsed. Endpoints are plain ``def``: FastAPI runs them in its thread pool, and the
store is thread-safe.

>>> from pixlabel.store import open_store  # doctest: +SKIP
>>> app = create_app(open_store("ws/pixlabel.db"), ReviewSettings(Path("images"), {"s3cret": "ana"}))  # doctest: +SKIP
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Literal
from urllib.parse import quote, urlencode

from fastapi import Depends, FastAPI, HTTPException, Query, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response, StreamingResponse
from jinja2 import Environment, PackageLoader, select_autoescape
from pydantic import BaseModel, Field

from pixlabel.errors import InputError
from pixlabel.io import csvout
from pixlabel.review.auth import Credentials, TooManyAttempts
from pixlabel.review.boxes import box_router, set_box
from pixlabel.review.files import safe_image_path, thumbnail_bytes
from pixlabel.store import LabelStore
from pixlabel.store.queue import MAX_PAGE, QueueItem
from pixlabel.webguard import BodyLimit, HostCheck, SecurityHeaders, bearer, client_address

COOKIE = "pixlabel_token"
MAX_BODY = 1024 * 1024  # the largest API body is a label of one image: 1 MB is generous
# Scripts only with this response's nonce, everything else from this server; styles may be inline (no script).
CSP = ("default-src 'none'; script-src 'nonce-{nonce}'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
       "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'")
NO_IMAGE = "no such image in this workspace"  # one message for every /img miss: it must not tell what exists
Status = Literal["accepted", "review"]
Source = Literal["human", "model", "synthetic"]


@dataclass(frozen=True)
class ReviewSettings:
    image_root: Path  # resolved; images are served from here only
    tokens: Mapping[str, str]  # secret -> reviewer name (the actor in the audit history)
    open_reads: bool = False  # reads without a token (--open-reads)
    page_size: int = 60
    thumb_px: int = 128
    allowed_hosts: frozenset[str] | None = None  # Host names answered (IP literals always); None: no check
    max_body_bytes: int = MAX_BODY


class LabelIn(BaseModel):
    path: str = Field(description="image path relative to the image root, as in labels.csv")
    label: str = Field(description="class name")
    box: list[float] | None = Field(None, min_length=4, max_length=4,
                                    description="[x, y, w, h] in image pixels: add a box (or redraw label_id)")
    label_id: int | None = Field(None, description="the box to replace (relabel and/or redraw)")
    version: str | None = Field(None, description="updated_at of label_id as you saw it: 409 if it changed since")


class Item(BaseModel):
    path: str
    label: str
    confidence: float
    status: str
    source: str
    labeler: str
    updated_at: str
    label_id: int | None = None
    box: list[float] | None = Field(default=None, description="[x, y, w, h] in image pixels; null for a class label")


class QueueOut(BaseModel):
    items: list[Item]
    next_cursor: str | None = Field(description="pass as ?after= for the next page; null on the last page")


class BulkIn(BaseModel):
    label: str = Field(description="accept every machine label of this class …")
    min_confidence: float = Field(0.0, ge=0.0, le=1.0, description="… whose confidence is at least this")
    status: Status | None = Field(None, description="… and, if given, whose status is this")


class BulkOut(BaseModel):
    accepted: int


class UndoIn(BaseModel):
    path: str


class ProgressOut(BaseModel):
    total: int
    human: int
    seeds: int
    to_review: int
    estimated_accuracy: float | None = Field(
        description="(human labels + sum of calibrated confidences of machine labels) / all labels")


class HistoryOut(BaseModel):
    at: str
    actor: str
    reason: str
    old: dict | None
    new: dict | None


def _item(x: QueueItem) -> Item:
    return Item(**x.as_dict())


def _identify(request: Request, presented: str | None, *, pages: bool = True) -> str | None:
    credentials: Credentials = request.app.state.credentials
    try:
        return credentials.identify(presented, client_address(request.scope), pages=pages)
    except TooManyAttempts as exc:
        raise HTTPException(429, str(exc), {"Retry-After": str(int(exc.retry_after) + 1)}) from exc


def _clear_cookie() -> str:
    return f"{COOKIE}=; Max-Age=0; Path=/; HttpOnly; SameSite=Strict"


def reader(request: Request) -> str | None:
    """Dependency: the reviewer reading, if any; 401 when reads need a token and none is valid, 429 after too
    many wrong ones. With open reads a wrong or rate-limited token reads anonymously."""
    settings: ReviewSettings = request.app.state.settings
    header, cookie = bearer(request.headers.get("authorization")), request.cookies.get(COOKIE)
    if settings.open_reads:
        credentials: Credentials = request.app.state.credentials
        try:
            return credentials.identify(header or cookie, client_address(request.scope))
        except TooManyAttempts:
            return None
    name = _identify(request, header or cookie)
    if name is None:
        headers = {"WWW-Authenticate": "Bearer"}
        if cookie and not header:
            headers["Set-Cookie"] = _clear_cookie()  # a cookie from an earlier run: drop it, ask for the link
        raise HTTPException(401, "this server needs a token to read: Authorization: Bearer TOKEN "
                                 "(or open /?token=TOKEN in a browser)", headers)
    return name


def writer(request: Request) -> str:
    """Dependency: the reviewer writing (the actor in the history); 401 without a valid bearer token (a
    reviewer secret or the page token), 429 after too many wrong ones."""
    name = _identify(request, bearer(request.headers.get("authorization")))
    if name is None:
        raise HTTPException(401, "writes need a valid reviewer token: Authorization: Bearer TOKEN",
                            {"WWW-Authenticate": "Bearer"})
    return name


Reader = Annotated[str | None, Depends(reader)]
Writer = Annotated[str, Depends(writer)]


def create_app(store: LabelStore, settings: ReviewSettings) -> FastAPI:
    """The FastAPI app over ``store``; API docs at ``/docs`` (served here, no CDN; a reader's token)."""
    app = FastAPI(title="pixlabel review", version="1", docs_url=None, redoc_url=None, openapi_url=None,
                  description="Fix doubtful labels: a queue least-confident first, human corrections, export.")
    env = Environment(loader=PackageLoader("pixlabel.review", "templates"), autoescape=select_autoescape())
    env.filters["url"] = lambda path: quote(path, safe="/")
    page = env.get_template("review.html")
    app.state.settings = settings
    app.state.credentials = Credentials(settings.tokens)
    # added last = outermost: the Host check runs first, the body cap right before the app reads anything
    app.add_middleware(BodyLimit, limit=settings.max_body_bytes, error_key="detail")
    app.add_middleware(SecurityHeaders, csp=CSP)
    if settings.allowed_hosts is not None:
        app.add_middleware(HostCheck, names=settings.allowed_hosts, error_key="detail")

    @app.exception_handler(InputError)
    def bad_input(_request: Request, exc: InputError) -> JSONResponse:
        return JSONResponse({"detail": str(exc)}, status_code=400)

    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    def index(request: Request, label: str | None = None, status: str | None = None,
              source: str | None = None, after: str | None = None, token: str | None = None) -> Response:
        # The filter form sends "" for "all"; the store validates the rest (bad values: 400 naming them).
        label, status, source = label or None, status or None, source or None
        if token is not None:  # from the URL the CLI printed: keep it in a cookie, drop it from the URL
            if _identify(request, token, pages=False) is None:
                raise HTTPException(401, "unknown token")
            query = {k: v for k, v in request.query_params.items() if k != "token"}
            response = RedirectResponse("/" + (f"?{urlencode(query)}" if query else ""), status_code=303)
            # HttpOnly: no script reads it (the page gets a page token instead); Strict: no other site sends it
            response.set_cookie(COOKIE, token, samesite="strict", httponly=True, max_age=30 * 86400)
            return response
        reviewer = reader(request)
        if store.has_boxes():  # a detection/segmentation workspace: the page that draws boxes
            return RedirectResponse(f"/boxes?{request.url.query}" if request.url.query else "/boxes", 303)
        credentials: Credentials = app.state.credentials
        classes = store.classes()
        queue = store.queue(limit=settings.page_size, after=after, label=label, status=status, source=source)
        filters = {k: v for k, v in (("label", label), ("status", status), ("source", source)) if v}
        next_url = f"/?{urlencode({**filters, 'after': queue.next_cursor})}" if queue.next_cursor else None
        html = page.render(classes=classes, items=queue.items, progress=store.progress(), filters=filters,
                           next_url=next_url, first_url="/?" + urlencode(filters), reviewer=reviewer,
                           thumb_px=settings.thumb_px, csp_nonce=request.state.csp_nonce,
                           page_token=credentials.page_token(reviewer) if reviewer else "")
        page_response = HTMLResponse(html, headers={"Cache-Control": "no-store"})  # it carries a page token
        if reviewer is None and request.cookies.get(COOKIE):
            # a cookie from an earlier run (open reads): drop it before the thumbnails send it 60 more times
            page_response.headers["Set-Cookie"] = _clear_cookie()
        return page_response

    @app.get("/healthz", include_in_schema=False)
    def healthz() -> dict[str, str]:  # open: says nothing but that the process answers
        return {"status": "ok"}

    @app.get("/openapi.json", include_in_schema=False)
    def openapi(_who: Reader) -> JSONResponse:
        return JSONResponse(app.openapi())

    @app.get("/docs", response_class=HTMLResponse, include_in_schema=False)
    def docs(request: Request, _who: Reader) -> HTMLResponse:
        return HTMLResponse(env.get_template("docs.html").render(
            api=app.openapi(), csp_nonce=request.state.csp_nonce))

    @app.get("/api/queue", response_model=QueueOut, summary="Labels to review, least confident first")
    def queue(_who: Reader, limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 50,
              after: Annotated[str | None, Query(description="next_cursor of the previous page")] = None,
              offset: Annotated[int, Query(ge=0)] = 0, label: str | None = None, status: Status | None = None,
              source: Source | None = None) -> QueueOut:
        read = store.box_queue if store.has_boxes() else store.queue  # boxes: a detection workspace
        page_ = read(limit=limit, after=after, offset=offset, label=label, status=status, source=source)
        return QueueOut(items=[_item(x) for x in page_.items], next_cursor=page_.next_cursor)

    @app.post("/api/labels", response_model=Item, summary="Set a human label (source=human, status=accepted)",
              responses={401: {"description": "no valid token"}, 404: {"description": "unknown image"},
                         422: {"description": "unknown class"}})
    def set_label(body: LabelIn, who: Writer) -> Item:
        if body.box is not None or body.label_id is not None:  # add, redraw or relabel a box (review/boxes.py)
            return Item(**set_box(store, settings, who=who, path=body.path, label=body.label, box=body.box,
                                  label_id=body.label_id, version=body.version))
        classes = store.classes()
        if body.label not in classes:
            raise HTTPException(422, f"unknown class {body.label!r}; known: {', '.join(classes)}")
        if not store.has_image(body.path):
            raise HTTPException(404, f"unknown image {body.path!r}: not in the label store")
        stored = store.set_human_label(body.path, body.label, actor=who)
        return Item(path=stored.image, label=stored.label, confidence=stored.confidence, status=stored.status,
                    source=stored.source, labeler=stored.provenance.labeler,
                    updated_at=stored.provenance.created_at.isoformat())

    @app.post("/api/undo", response_model=Item, summary="Undo your last change of an image",
              responses={409: {"description": "nothing of yours to undo, or changed by someone since"}})
    def undo(body: UndoIn, who: Writer) -> Item:
        if not store.has_image(body.path):
            raise HTTPException(404, f"unknown image {body.path!r}: not in the label store")
        try:
            return _item(store.undo_last(body.path, actor=who))
        except InputError as exc:
            raise HTTPException(409, str(exc)) from exc

    @app.post("/api/bulk_accept", response_model=BulkOut,
              summary="Accept every machine label of a class (optionally only confident ones) as human")
    def bulk_accept(body: BulkIn, who: Writer) -> BulkOut:
        n = store.accept_matching(label=body.label, actor=who, min_confidence=body.min_confidence,
                                  status=body.status)
        return BulkOut(accepted=n)

    @app.get("/api/progress", response_model=ProgressOut, summary="Reviewed / remaining and estimated accuracy")
    def progress(_who: Reader) -> ProgressOut:
        return ProgressOut(**store.progress().as_dict())

    @app.get("/api/history", response_model=list[HistoryOut], summary="Audit trail of one image, oldest first")
    def history(path: str, _who: Reader) -> list[HistoryOut]:
        if not store.has_image(path):
            raise HTTPException(404, f"unknown image {path!r}: not in the label store")
        return [HistoryOut(at=h.at.isoformat(), actor=h.actor, reason=h.reason, old=h.old, new=h.new)
                for h in store.history(path)]

    @app.get("/api/labels.csv", summary="Every current label in the labels.csv contract",
             response_class=StreamingResponse, responses={200: {"content": {"text/csv": {}}}})
    def labels_csv(_who: Reader) -> StreamingResponse:
        text = csvout.format_labels_csv(store.labels())  # the same writer as WS/labels.csv

        def chunks() -> Iterator[str]:
            for start in range(0, len(text), 1 << 16):
                yield text[start:start + (1 << 16)]

        return StreamingResponse(chunks(), media_type="text/csv; charset=utf-8",
                                 headers={"Content-Disposition": 'attachment; filename="labels.csv"'})

    @app.get("/img/{path:path}", summary="A thumbnail of an image under the image root",
             responses={200: {"content": {"image/png": {}, "image/jpeg": {}}}})
    def image(path: str, _who: Reader, size: Annotated[int | None, Query(ge=16, le=1024)] = None) -> Response:
        # Only images of this workspace, asked of the store before the file system is touched; every miss
        # (unknown, malformed, outside the root, img.png/x, too long, a symlink loop) is the same 404.
        if not store.has_image(path):
            raise HTTPException(404, NO_IMAGE)
        try:
            real = safe_image_path(settings.image_root, path)
        except (InputError, FileNotFoundError) as exc:  # OutsideRoot is an InputError
            raise HTTPException(404, NO_IMAGE) from exc
        data, media = thumbnail_bytes(real, size=size or settings.thumb_px)
        return Response(data, media_type=media, headers={"Cache-Control": "private, max-age=300"})

    app.include_router(box_router(store, settings, reader=reader, writer=writer))
    return app
