"""Box review: the page that draws a detection workspace's boxes and the box endpoints of the review API.

``POST /api/labels`` stays one endpoint (``app.py``): with ``box`` or ``label_id`` in the body it lands in
``set_box`` here. This router adds ``DELETE /api/labels/{label_id}``, accepting a whole image, an image's
boxes, box progress, the COCO export and the ``/boxes`` page. Errors: a box outside the image or of zero area
-> 422 naming ``box``; an unknown ``label_id`` -> 404; a ``version`` (the ``updated_at`` the client saw) older
than the box -> 409.
"""

# No ``from __future__ import annotations``: FastAPI must resolve the dependency annotations made inside
# ``box_router`` from the reader/writer it is given, which string annotations would look up in module globals.
import datetime as _dt
import json
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Query, Request
from fastapi.responses import HTMLResponse, Response
from jinja2 import Environment, PackageLoader, select_autoescape
from pydantic import BaseModel, Field

from pixlabel.errors import InputError
from pixlabel.io.formats.coco import format_coco
from pixlabel.review.files import safe_image_path
from pixlabel.store import LabelStore
from pixlabel.store.boxes import BadBox, LabelNotFound, StaleEdit
from pixlabel.store.queue import QueueItem

if TYPE_CHECKING:
    from pixlabel.review.app import ReviewSettings

PAGE_PX = 320  # longest side of an image on the box page


class PathIn(BaseModel):
    path: str = Field(description="image path relative to the image root")


class AcceptOut(BaseModel):
    accepted: int = Field(description="model boxes that became the reviewer's")


class DeletedOut(BaseModel):
    deleted: int


class BoxOut(BaseModel):
    label_id: int
    path: str
    label: str
    confidence: float
    status: str
    source: str
    labeler: str
    updated_at: str
    box: list[float] = Field(description="[x, y, w, h] in image pixels")


class BoxProgressOut(BaseModel):
    boxes: int
    human: int
    to_review: int
    images: int
    images_done: int = Field(description="images none of whose boxes awaits review")


def parse_version(version: str | None) -> _dt.datetime | None:
    """The client's ``version`` (an ``updated_at`` it was given) as an aware datetime; 422 if malformed."""
    if version is None:
        return None
    try:
        when = _dt.datetime.fromisoformat(version)
    except ValueError:
        raise HTTPException(422, f"version {version!r}: expected the updated_at of the box, as given") from None
    return when if when.tzinfo is not None else when.replace(tzinfo=_dt.UTC)


def _errors(exc: InputError) -> HTTPException:
    code = 404 if isinstance(exc, LabelNotFound) else 409 if isinstance(exc, StaleEdit) else 422
    return HTTPException(code, str(exc))


def _file_size(settings: "ReviewSettings", path: str) -> tuple[int, int] | None:
    """``(h, w)`` read from the image file, for an image the store has no size for (a classification
    workspace getting its first box)."""
    from PIL import Image

    try:
        with Image.open(safe_image_path(settings.image_root, path)) as im:
            return im.height, im.width
    except (OSError, InputError):
        return None


def set_box(store: LabelStore, settings: "ReviewSettings", *, who: str, path: str, label: str,
            box: Sequence[float] | None, label_id: int | None, version: str | None) -> dict[str, Any]:
    """``POST /api/labels`` with a box: add one (no ``label_id``) or replace ``label_id``; the item as a dict."""
    classes = store.classes()
    if label not in classes:
        raise HTTPException(422, f"unknown class {label!r}; known: {', '.join(classes)}")
    if not store.has_image(path):
        raise HTTPException(404, f"unknown image {path!r}: not in the label store")
    try:
        if label_id is None:
            if box is None:
                raise HTTPException(422, "box: a new box needs [x, y, w, h]")
            size = store.image_sizes([path]).get(path) or _file_size(settings, path)
            item = store.add_box(path, label, box, actor=who, image_size=size)
        else:
            item = store.replace_box(label_id, label, box, actor=who, path=path, version=parse_version(version))
    except (BadBox, LabelNotFound, StaleEdit) as exc:
        raise _errors(exc) from exc
    return item.as_dict()


def _box_out(x: QueueItem) -> BoxOut:
    return BoxOut(**x.as_dict())


def box_router(store: LabelStore, settings: "ReviewSettings", *, reader: Callable[..., str | None],
               writer: Callable[..., str]) -> APIRouter:
    """The box endpoints and page; ``reader``/``writer`` are the app's auth dependencies."""
    Reader = Annotated[str | None, Depends(reader)]
    Writer = Annotated[str, Depends(writer)]
    router = APIRouter()
    env = Environment(loader=PackageLoader("pixlabel.review", "templates"), autoescape=select_autoescape())
    page = env.get_template("review_boxes.html")

    @router.delete("/api/labels/{label_id}", response_model=DeletedOut, summary="Delete a box",
                   responses={404: {"description": "no such box"}, 409: {"description": "changed since version"}})
    def delete_box(label_id: int, who: Writer,
                   version: Annotated[str | None, Query(description="updated_at the client saw")] = None
                   ) -> DeletedOut:
        try:
            store.delete_box(label_id, actor=who, version=parse_version(version))
        except (LabelNotFound, StaleEdit) as exc:
            raise _errors(exc) from exc
        return DeletedOut(deleted=label_id)

    @router.post("/api/boxes/accept_image", response_model=AcceptOut,
                 summary="Accept every box of an image as it is (the image is then done)")
    def accept_image(body: PathIn, who: Writer) -> AcceptOut:
        try:
            return AcceptOut(accepted=store.accept_image_boxes(body.path, actor=who))
        except LabelNotFound as exc:
            raise _errors(exc) from exc

    @router.get("/api/boxes", response_model=list[BoxOut], summary="Every box of one image (not alternatives)")
    def boxes(path: str, _who: Reader) -> list[BoxOut]:
        if not store.has_image(path):
            raise HTTPException(404, f"unknown image {path!r}: not in the label store")
        return [_box_out(x) for x in store.boxes_of([path])[path]]

    @router.get("/api/box_progress", response_model=BoxProgressOut, summary="Boxes reviewed / remaining")
    def box_progress(_who: Reader) -> BoxProgressOut:
        return BoxProgressOut(**store.box_progress().as_dict())

    @router.get("/api/labels.coco.json", summary="Every current box as COCO (model boxes carry score)",
                responses={200: {"content": {"application/json": {}}}})
    def coco(_who: Reader) -> Response:
        data = json.dumps(format_coco(store.box_dataset())).encode()
        return Response(data, media_type="application/json",
                        headers={"Content-Disposition": 'attachment; filename="labels.coco.json"'})

    @router.get("/boxes", response_class=HTMLResponse, include_in_schema=False)
    def boxes_page(request: Request, reviewer: Reader, label: str | None = None, status: str | None = None,
                   source: str | None = None, after: str | None = None) -> HTMLResponse:
        from urllib.parse import urlencode

        label, status, source = label or None, status or None, source or None
        queue = store.box_queue(limit=settings.page_size, after=after, label=label, status=status, source=source)
        paths = list(dict.fromkeys(x.path for x in queue.items))
        drawn, sizes = store.boxes_of(paths), store.image_sizes(paths)
        images = []
        for p in paths:
            size = sizes.get(p) or _file_size(settings, p) or (1, 1)
            images.append({"path": p, "height": size[0], "width": size[1],
                           "boxes": [_box_out(x).model_dump() for x in drawn[p]]})
        filters = {k: v for k, v in (("label", label), ("status", status), ("source", source)) if v}
        next_url = f"/boxes?{urlencode({**filters, 'after': queue.next_cursor})}" if queue.next_cursor else None
        html = page.render(classes=store.classes(), images_json=_script_json(images), progress=store.box_progress(),
                           filters=filters, next_url=next_url, first_url="/boxes?" + urlencode(filters),
                           reviewer=reviewer, page_px=PAGE_PX, csp_nonce=request.state.csp_nonce,
                           page_token=request.app.state.credentials.page_token(reviewer) if reviewer else "")
        return HTMLResponse(html, headers={"Cache-Control": "no-store"})  # it carries a page token

    return router


def _script_json(value: object) -> str:
    """JSON safe inside a <script> element (no ``</script>`` or ``<!--`` can close or confuse it)."""
    text = json.dumps(value, separators=(",", ":"))
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")
