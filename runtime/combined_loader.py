"""``CombinedLoader``: several iterables (a dict, list or tuple of loaders, nested as you like)
iterated together, as Lightning 2.x's ``lightning.pytorch.utilities.CombinedLoader``.

Iterating yields ``(batch, batch_idx, dataloader_idx)``. Modes:

* ``"min_size"`` (the default): a batch from each iterable, in their structure, until the
  shortest is done;
* ``"max_size_cycle"``: until the longest is done, the shorter ones starting over (iterated
  anew, so a shuffled loader reshuffles) when they run out; what ``fit`` uses for a dict or list
  of train loaders;
* ``"max_size"``: until the longest is done, the exhausted ones giving ``None``;
* ``"sequential"``: each iterable to its end, one after the other; ``batch`` is that
  iterable's batch and ``dataloader_idx`` its index (what evaluation uses for several loaders).

``len()`` is known once ``iter()`` was called (as Lightning); it is ``inf``-free only when every
iterable has a length.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator
from typing import Any

_MODES = ("min_size", "max_size_cycle", "max_size", "sequential")

__all__ = ["CombinedLoader"]


def _length(iterable: Any) -> float:
    try:
        return float(len(iterable))
    except (TypeError, NotImplementedError):
        return math.inf


def _of_primitives(node: Any) -> bool:
    """A list, tuple or dict holding only numbers and strings is one iterable, not a tree
    (``[1, 2, 3]`` is iterated, as in Lightning)."""
    if isinstance(node, dict):
        children = list(node.values())
    elif isinstance(node, (list, tuple)):
        children = list(node)
    else:
        return False
    return all(isinstance(c, (int, float, str)) for c in children)


def _flatten(iterables: Any) -> tuple[list[Any], Any]:
    from torch.utils._pytree import tree_flatten

    return tree_flatten(iterables, is_leaf=_of_primitives)


def _unflatten(values: list[Any], spec: Any) -> Any:
    from torch.utils._pytree import tree_unflatten

    return tree_unflatten(values, spec)


class CombinedLoader(Iterable):
    """Iterates several iterables together (see the module docstring for the modes)."""

    def __init__(self, iterables: Any, mode: str = "min_size") -> None:
        if mode not in _MODES:
            raise ValueError(f"Unsupported mode {mode!r}, please select one of: {list(_MODES)}.")
        self._iterables = iterables
        self._flattened, self._spec = _flatten(iterables)
        self._mode = mode
        self._iterators: list[Iterator] | None = None
        self._lengths: list[float] = []
        self._batch_idx = 0
        self._current = 0  # sequential: the iterable being consumed
        self._exhausted: list[bool] = []

    # ---------------------------------------------------------------------- the iterables
    @property
    def iterables(self) -> Any:
        """The iterables as given (their structure kept)."""
        return self._iterables

    @property
    def flattened(self) -> list[Any]:
        """The iterables as a flat list."""
        return self._flattened

    @flattened.setter
    def flattened(self, flattened: list[Any]) -> None:
        if len(flattened) != len(self._flattened):
            raise ValueError(
                f"Mismatch in flattened length ({len(flattened)}) and existing length "
                f"({len(self._flattened)})"
            )
        self._iterables = _unflatten(flattened, self._spec)
        self._flattened = list(flattened)

    @property
    def sampler(self) -> Any:
        return _unflatten([getattr(x, "sampler", None) for x in self._flattened], self._spec)

    @property
    def batch_sampler(self) -> Any:
        return _unflatten([getattr(x, "batch_sampler", None) for x in self._flattened], self._spec)

    # ---------------------------------------------------------------------- iterating
    def _total(self, lengths: list[float]) -> float:
        if not lengths:
            return 0.0
        if self._mode == "min_size":
            return min(lengths)
        if self._mode == "sequential":
            return sum(lengths)
        return max(lengths)

    def __iter__(self) -> CombinedLoader:
        self._lengths = [_length(x) for x in self._flattened]
        if self._mode == "sequential":
            # one loader at a time (only its workers start), the first one now (as Lightning)
            self._iterators = [iter(self._flattened[0])] if self._flattened else []
        else:
            self._iterators = [iter(x) for x in self._flattened]
        self._exhausted = [False] * len(self._flattened)
        self._batch_idx = 0
        self._current = 0
        return self

    def __next__(self) -> tuple[Any, int, int]:
        if self._iterators is None:
            raise RuntimeError("Please call `iter(combined_loader)` first.")
        if self._mode == "sequential":
            return self._next_sequential()
        out = []
        for i, it in enumerate(self._iterators):
            try:
                out.append(next(it))
                continue
            except StopIteration:
                self._exhausted[i] = True
            if self._mode == "min_size":
                raise StopIteration
            if self._mode == "max_size":
                out.append(None)
                continue
            # max_size_cycle: done once every iterable ran out at least once, else this one
            # starts over
            if all(self._exhausted):
                raise StopIteration
            self._iterators[i] = iter(self._flattened[i])
            out.append(next(self._iterators[i]))
        if self._mode == "max_size" and all(self._exhausted):
            raise StopIteration
        idx = self._batch_idx
        self._batch_idx += 1
        return _unflatten(out, self._spec), idx, 0

    def _next_sequential(self) -> tuple[Any, int, int]:
        while self._iterators:
            try:
                batch = next(self._iterators[0])
            except StopIteration:
                # the next loader, started as soon as this one is done
                self._current += 1
                self._batch_idx = 0
                more = self._current < len(self._flattened)
                self._iterators = [iter(self._flattened[self._current])] if more else []
                continue
            idx = self._batch_idx
            self._batch_idx += 1
            return batch, idx, self._current
        raise StopIteration

    def __len__(self) -> int:
        if self._iterators is None:
            raise RuntimeError("Please call `iter(combined_loader)` first.")
        total = self._total(self._lengths)
        if total == math.inf:
            raise TypeError("an iterable of this CombinedLoader has no length")
        return int(total)

    def reset(self) -> None:
        """Forget the iterators (the next ``iter()`` starts every iterable over)."""
        self._iterators = None

    def _dataset_length(self) -> int:
        """The datasets' length as the mode combines them (sum, min or max)."""
        lengths = []
        for dl in self._flattened:
            try:
                lengths.append(float(len(dl.dataset)))
            except (AttributeError, TypeError, NotImplementedError):
                continue
        if not lengths:
            raise NotImplementedError("All datasets are iterable-style datasets.")
        return int(self._total(lengths))

    # ---------------------------------------------------------------------- the Trainer's view
    def _batch_count(self) -> float:
        """The number of batches one pass yields, without iterating (``inf`` when unknown)."""
        return self._total([_length(x) for x in self._flattened])


class _Batches:
    """A non-sequential CombinedLoader as the Trainer iterates it: its batches only."""

    def __init__(self, combined: CombinedLoader) -> None:
        self.combined = combined

    def __len__(self) -> int:
        total = self.combined._batch_count()
        if total == math.inf:
            raise TypeError("a loader of this CombinedLoader has no length")
        return int(total)

    def __iter__(self) -> Iterator[Any]:
        combined = iter(self.combined)  # once: iter() starts every iterable over
        # as Lightning: no draw past the known number of batches (in max_size_cycle mode that
        # draw would start the exhausted iterables over, and a shuffled one draws numbers)
        total = self.combined._batch_count()
        drawn = 0
        while drawn < total:
            try:
                batch, _idx, _dl_idx = next(combined)
            except StopIteration:
                return
            drawn += 1
            yield batch
