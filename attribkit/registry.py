"""One generic name -> object registry with explicit registration and entry-point plugins."""

from __future__ import annotations

import warnings
from collections.abc import Callable
from importlib.metadata import entry_points
from typing import Generic, TypeVar

from attribkit.errors import DuplicateNameError, OptionError, UnknownNameError, first_line

T = TypeVar("T")


class Registry(Generic[T]):
    """A registry of named objects (e.g. attribution method classes).

    Names are snake_case keys. Registering a name twice raises; looking up an unknown name
    raises with the list of known names. Third-party packages add entries through the
    entry-point group given as ``entry_point_group``: each entry point either registers itself
    on import or returns the object to register under the entry point's name.

    A plugin whose entry point fails to import is skipped with a warning naming it; the others load.

    Args:
        kind: What the registry holds, used in error messages (``"method"``).
        entry_point_group: Entry-point group scanned once, on first lookup.
        on_add: Called with ``(name, obj)`` when an entry is added (the method registry writes the
            name into the class, so that it is written once, in the decorator).
    """

    def __init__(
        self,
        kind: str,
        *,
        entry_point_group: str | None = None,
        on_add: Callable[[str, T], None] | None = None,
    ) -> None:
        self._kind = kind
        self._group = entry_point_group
        self._entries: dict[str, T] = {}
        self._plugins_loaded = entry_point_group is None
        self._on_add = on_add

    def register(self, name: str) -> Callable[[T], T]:
        """Decorator that registers an object under ``name``.

        Raises:
            OptionError: ``name`` is not a snake_case identifier.
            DuplicateNameError: ``name`` is already registered.
        """
        self._check_name(name)

        def decorate(obj: T) -> T:
            self.add(name, obj)
            return obj

        return decorate

    def _check_name(self, name: object) -> None:
        if not isinstance(name, str) or not name.isidentifier() or name.lower() != name:
            raise OptionError(f"{self._kind} name {name!r} must be a snake_case identifier, e.g. my_{self._kind}")

    def add(self, name: str, obj: T) -> None:
        """Register ``obj`` under ``name``; raises :class:`DuplicateNameError` if taken."""
        self._check_name(name)
        if name in self._entries and self._entries[name] is not obj:
            raise DuplicateNameError(f"a {self._kind} named {name!r} is already registered; choose another name")
        self._entries[name] = obj
        if self._on_add is not None:
            self._on_add(name, obj)

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
            try:
                loaded = ep.load()  # a module registers itself on import; a class is added here
                if callable(loaded) and ep.name not in self._entries:
                    self.add(ep.name, loaded)
            except Exception as exc:  # one broken plugin must not take the others down
                first = first_line(exc)
                warnings.warn(
                    f"{self._kind} plugin {ep.name!r} ({ep.value}) could not be loaded and is skipped: {first}",
                    UserWarning,
                    stacklevel=3,
                )
