"""Editing the children of a CHAINED collection: redefine, extend, prepend, remove, pop."""

from __future__ import annotations

from collections.abc import Sequence

from .._exceptions import CollectionError, InvalidArgumentError, PositionError

__all__ = ["CHAIN_MODES", "new_chain"]

CHAIN_MODES = ("redefine", "extend", "prepend", "remove", "pop")


def new_chain(
    parent: str, current: Sequence[str], children: Sequence[str], mode: str
) -> tuple[str, ...]:
    """The children of chain ``parent`` after applying ``children`` by ``mode``.

    ``redefine`` replaces them; ``extend`` appends and ``prepend`` puts in
    front those not listed yet; ``remove`` drops the named children; ``pop``
    drops the children at the given positions (``0``, ``-1``, ...).

    Raises
    ------
    ValueError
        For an unknown mode or a position that is not an integer.
    CollectionError
        If ``remove`` names a child the chain does not list.
    PositionError
        If ``pop`` names a position the chain does not have (an `IndexError`).
    """
    if mode not in CHAIN_MODES:
        raise InvalidArgumentError(
            f"Unknown chain mode {mode!r}; use one of {', '.join(CHAIN_MODES)}."
        )
    current = list(current)
    if mode == "redefine":
        return tuple(children)
    if mode == "extend":
        return tuple(current + [c for c in children if c not in current])
    if mode == "prepend":
        return tuple(list(children) + [c for c in current if c not in children])
    if mode == "remove":
        missing = [c for c in children if c not in current]
        if missing:
            raise CollectionError(
                f"Chain {parent!r} does not list {', '.join(missing)}; it has "
                f"{', '.join(current) or 'no children'}."
            )
        return tuple(c for c in current if c not in children)
    positions = {_position(p, len(current), parent) for p in children}
    return tuple(c for i, c in enumerate(current) if i not in positions)


def _position(text: str, length: int, parent: str) -> int:
    try:
        index = int(text)
    except ValueError:
        raise InvalidArgumentError(f"pop takes positions (0, 1, -1, ...), not {text!r}.") from None
    if not -length <= index < length:
        allowed = (
            f"pop takes 0 to {length - 1}, or -1 to -{length} from the end"
            if length
            else "there is nothing to pop"
        )
        raise PositionError(
            f"Chain {parent!r} has {length} children; there is no position {index} ({allowed})."
        )
    return index % length
