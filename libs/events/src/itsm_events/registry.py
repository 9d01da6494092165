"""Maps (event type, version) to the pydantic model of its data, and back."""

from typing import TypeVar

from pydantic import BaseModel

_models: dict[tuple[str, int], type[BaseModel]] = {}
_keys: dict[type[BaseModel], tuple[str, int]] = {}

M = TypeVar("M", bound=type[BaseModel])


class UnknownEventType(LookupError):
    """No schema is registered for this (type, version)."""


def register(event_type: str, version: int = 1):
    """Class decorator: make `cls` the schema of `event_type` at `version`."""

    def decorate(cls: M) -> M:
        key = (event_type, version)
        if key in _models and _models[key] is not cls:
            raise ValueError(f"{key} is already registered to {_models[key].__name__}")
        _models[key] = cls
        _keys[cls] = key
        return cls

    return decorate


def model_for(event_type: str, version: int = 1) -> type[BaseModel]:
    """The schema registered for (event_type, version)."""
    try:
        return _models[(event_type, version)]
    except KeyError:
        raise UnknownEventType(f"no schema for {event_type} v{version}") from None


def key_of(model: type[BaseModel]) -> tuple[str, int]:
    """(event type, version) of a registered schema class."""
    try:
        return _keys[model]
    except KeyError:
        raise UnknownEventType(f"{model.__name__} is not a registered event schema") from None


def registered() -> dict[tuple[str, int], type[BaseModel]]:
    """Every registered schema, for documentation and tests."""
    return dict(_models)
