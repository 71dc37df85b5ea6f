"""One generic name -> object registry with explicit registration and entry-point plugins."""

from __future__ import annotations

from collections.abc import Callable
from importlib.metadata import entry_points
from typing import Generic, TypeVar

from attribkit.errors import DuplicateNameError, UnknownNameError

T = TypeVar("T")


class Registry(Generic[T]):
    """A registry of named objects (e.g. attribution method classes).

    Names are snake_case keys. Registering a name twice raises; looking up an unknown name
    raises with the list of known names. Third-party packages add entries through the
    entry-point group given as ``entry_point_group``: each entry point either registers itself
    on import or returns the object to register under the entry point's name.

    Args:
        kind: What the registry holds, used in error messages (``"method"``).
        entry_point_group: Entry-point group scanned once, on first lookup.
    """

    def __init__(self, kind: str, *, entry_point_group: str | None = None) -> None:
        self._kind = kind
        self._group = entry_point_group
        self._entries: dict[str, T] = {}
        self._plugins_loaded = entry_point_group is None

    def register(self, name: str) -> Callable[[T], T]:
        """Decorator that registers an object under ``name``.

        Raises:
            DuplicateNameError: ``name`` is already registered.
        """
        if not name or not name.replace("_", "").isalnum() or name.lower() != name:
            raise DuplicateNameError(f"{self._kind} name {name!r} must be a snake_case identifier")

        def decorate(obj: T) -> T:
            self.add(name, obj)
            return obj

        return decorate

    def add(self, name: str, obj: T) -> None:
        """Register ``obj`` under ``name``; raises :class:`DuplicateNameError` if taken."""
        if name in self._entries and self._entries[name] is not obj:
            raise DuplicateNameError(f"a {self._kind} named {name!r} is already registered; choose another name")
        self._entries[name] = obj

    def get(self, name: str) -> T:
        """Return the object registered under ``name``.

        Raises:
            UnknownNameError: no such name; the message lists the registered names.
        """
        self._load_plugins()
        try:
            return self._entries[name]
        except KeyError:
            raise UnknownNameError(f"unknown {self._kind} {name!r}; choose one of: {', '.join(self.names())}") from None

    def names(self) -> list[str]:
        """The registered names, sorted."""
        self._load_plugins()
        return sorted(self._entries)

    def __contains__(self, name: object) -> bool:
        self._load_plugins()
        return name in self._entries

    def _load_plugins(self) -> None:
        if self._plugins_loaded:
            return
        self._plugins_loaded = True
        for ep in entry_points(group=self._group or ""):
            loaded = ep.load()  # a module registers itself on import; a class is added here
            if callable(loaded) and ep.name not in self._entries:
                self.add(ep.name, loaded)
