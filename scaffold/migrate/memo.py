"""Per-tree memoisation for the analyses several passes ask of the same (immutable) libcst tree.

libcst nodes are immutable, so a fact computed for one node object holds as long as that object
lives. ``by_identity`` caches a one-argument function on the identity of its argument (for a
list or tuple of nodes, on the identities of its items); the cache entry keeps the argument alive,
so an id cannot be reused by another node while cached.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


def by_identity(maxsize: int = 16) -> Callable[[Callable[[object], T]], Callable[[object], T]]:
    def decorate(fn: Callable[[object], T]) -> Callable[[object], T]:
        cache: dict[object, tuple[object, T]] = {}

        @functools.wraps(fn)
        def wrapper(node: object) -> T:
            if isinstance(node, (list, tuple)):
                node = tuple(node)
                key: object = tuple(map(id, node))
            else:
                key = id(node)
            hit = cache.get(key)
            if hit is not None:
                return hit[1]
            value = fn(node)
            if len(cache) >= maxsize:
                cache.pop(next(iter(cache)))  # oldest first
            cache[key] = (node, value)
            return value

        wrapper.cache_clear = cache.clear  # type: ignore[attr-defined]
        return wrapper

    return decorate
