"""`Slot`: how an area declares its home in `AppState` (kept apart so area packages can declare
theirs without importing the state module that imports them)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Generic, TypeVar

T = TypeVar("T")


@dataclass(frozen=True, eq=False)
class Slot(Generic[T]):
    """An area's home in `AppState`: declared next to the stored type, in the area's package
    (serving/history.py: `SERVING = Slot("serving", dict)`), listed in the area's registry entry
    (areas.py), and read and written as `state[SERVING]`, typed as the slot's `T`.  `empty` makes
    the initial (and, when a reload disables the area, the reset) value."""

    name: str
    empty: Callable[[], T]


class SlotAttribute(Generic[T]):
    """`AppState.serving` for `state[SERVING]`: a named, typed attribute over a slot."""

    def __init__(self, slot: Slot[T]) -> None:
        self.slot = slot

    def __get__(self, obj: Any, owner: type | None = None) -> T:
        return obj[self.slot]

    def __set__(self, obj: Any, value: T) -> None:
        obj[self.slot] = value
