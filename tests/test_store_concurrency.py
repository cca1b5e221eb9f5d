"""Many writers on one database, each with its own LabelStore: nothing is lost, the last write wins."""

from __future__ import annotations

import threading
from collections.abc import Callable

from pixlabel.store import open_store
from test_store_db import store_url  # noqa: F401  (fixture)

WRITERS = 20
ROUNDS = 3
CLASSES = ["cat", "dog", "bird"]


def run_threads(n: int, target: Callable[[int], None]) -> list[BaseException]:
    """Start ``n`` threads together; return what they raised (a thread's exception is otherwise lost)."""
    barrier, failures = threading.Barrier(n), []

    def wrapped(i: int) -> None:
        try:
            barrier.wait()
            target(i)
        except BaseException as exc:  # noqa: B036  re-raised in the test via the returned list
            failures.append(exc)

    threads = [threading.Thread(target=wrapped, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=300)
    assert not any(t.is_alive() for t in threads), "a writer hung"
    return failures


def test_twenty_concurrent_writers_lose_nothing(store_url: str) -> None:  # noqa: F811
    with open_store(store_url) as store:
        store.sync_images([(f"own{i}.png", f"h{i}") for i in range(WRITERS)] + [("shared.png", "hs")])
        store.ensure_classes(CLASSES)

    def writer(i: int) -> None:
        with open_store(store_url) as mine:  # its own engine and connections, like a separate process
            for k in range(ROUNDS):
                mine.set_human_label(f"own{i}.png", CLASSES[(i + k) % 3], actor=f"w{i}")
                mine.set_human_label("shared.png", CLASSES[(i * k) % 3], actor=f"w{i}-{k}")

    assert run_threads(WRITERS, writer) == []

    with open_store(store_url) as store:
        final = {x.image: x for x in store.labels()}
        assert len(final) == WRITERS + 1
        for i in range(WRITERS):
            history = store.history(f"own{i}.png")
            assert [(h.actor, h.new["label"]) for h in history] == [  # type: ignore[index]
                (f"w{i}", CLASSES[(i + k) % 3]) for k in range(ROUNDS)]
            assert final[f"own{i}.png"].label == CLASSES[(i + ROUNDS - 1) % 3]
        shared = store.history("shared.png")
        expected = [f"w{i}-{k}" for i in range(WRITERS) for k in range(ROUNDS)]
        assert sorted(h.actor for h in shared) == sorted(expected)
        # each writer's own writes stay in its order, and each write saw the one before it as "old"
        for i in range(WRITERS):
            mine = [h.actor for h in shared if h.actor.startswith(f"w{i}-")]
            assert mine == [f"w{i}-{k}" for k in range(ROUNDS)]
        assert shared[0].old is None
        for before, after in zip(shared, shared[1:], strict=False):
            assert after.old == before.new
        last = shared[-1]
        assert (final["shared.png"].label, final["shared.png"].provenance.labeler) == (
            last.new["label"], last.actor)  # type: ignore[index]
