"""The caches behind pictures and predictions: docs/ARCHITECTURE.md calls them bounded LRUs,
so a server that draws and loads for a long time holds at most so many models and bytes."""

from __future__ import annotations

from app.services.results import ResultCaches


def test_models_are_kept_least_recently_used_first_out_up_to_the_bound() -> None:
    caches = ResultCaches.create(max_models=2)
    made: list[str] = []

    def get(key: str) -> object:
        def make() -> object:  # stands in for a loaded model
            made.append(key)
            return object()

        return caches.models.get_or_create(key, make)  # type: ignore[arg-type]

    first = get("a")
    get("b")
    assert get("a") is first  # a hit, and now the most recently used
    get("c")  # evicts b, the least recently used
    assert caches.models.get("b") is None
    assert caches.models.get("a") is first
    assert made == ["a", "b", "c"]
    assert ResultCaches.create().models._cache.maxsize == 64  # the server's bound


def test_pictures_are_bounded_by_their_bytes_and_one_too_large_is_served_not_kept() -> None:
    caches = ResultCaches.create(max_picture_bytes=10)
    for key in ("a", "b", "c"):
        caches.pictures.get_or_create(key, lambda: b"x" * 4)
    assert caches.pictures._cache.currsize <= 10
    assert caches.pictures.get("a") is None  # the oldest went to make room
    huge = b"y" * 11
    assert caches.pictures.get_or_create("huge", lambda: huge) == huge
    assert caches.pictures.get("huge") is None
    assert ResultCaches.create().pictures._cache.maxsize == 64 * 1024 * 1024
