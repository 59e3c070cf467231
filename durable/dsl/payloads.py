"""Typed payloads: a workflow's `input_type` (a dataclass or a pydantic model) and how its
stored JSON becomes an instance again for `ctx.input`.

Storing goes through `durable.serialization.normalize`, which turns dataclass and pydantic
instances into JSON objects (pydantic's own JSON mode, so its datetimes and Decimals come
back exactly). Loading checks the JSON against the type's fields and converts nested
dataclasses, pydantic models, lists, dicts, optionals and unions; pydantic validates its
models itself. Problems name their path, like `input['items'][2]['sku']`.
"""

from __future__ import annotations

import dataclasses
import enum
import types
import typing
from typing import Any, Literal, Union, get_args, get_origin, get_type_hints


class PayloadError(ValueError):
    """A JSON value does not fit the type it is loaded as. `path` names where."""

    def __init__(self, path: str, problem: str) -> None:
        self.path = path
        self.problem = problem
        super().__init__(f"{path}: {problem}")


def is_pydantic_model(tp: Any) -> bool:
    # Duck-typed, so pydantic is imported only by code that uses it.
    return (
        isinstance(tp, type)
        and callable(getattr(tp, "model_validate", None))
        and hasattr(tp, "model_fields")
    )


def is_model_instance(value: Any) -> bool:
    """Whether `value` is a dataclass instance or a pydantic model instance."""
    cls = type(value)
    return (dataclasses.is_dataclass(value) and not isinstance(value, type)) or is_pydantic_model(
        cls
    )


def input_type_problem(tp: Any) -> str | None:
    """Why `tp` cannot be a workflow's `input_type`, or None."""
    if tp is None or (isinstance(tp, type) and dataclasses.is_dataclass(tp)):
        return None
    if is_pydantic_model(tp):
        return None
    return f"input_type must be a dataclass or a pydantic model class, got {tp!r}"


def typed_input(input_type: type[Any] | None, data: Any) -> Any:
    """What `ctx.input` is for stored input `data`: an instance of `input_type` if any."""
    return data if input_type is None else load(input_type, data, "input")


def load(tp: Any, value: Any, path: str = "value") -> Any:
    """`value` (stored JSON) as an instance of `tp`; PayloadError when it does not fit."""
    if tp is Any or tp is object:
        return value
    origin = get_origin(tp)
    if origin is typing.Annotated:
        return load(get_args(tp)[0], value, path)
    if origin is Union or origin is types.UnionType:
        return _load_union(tp, value, path)
    if origin is Literal:
        if value in get_args(tp):
            return value
        raise PayloadError(path, f"must be one of {list(get_args(tp))!r}, got {value!r}")
    if origin is list or tp is list:
        if not isinstance(value, list):
            raise PayloadError(path, f"must be a list, got {_kind(value)}")
        (item,) = get_args(tp) or (Any,)
        return [load(item, v, f"{path}[{i}]") for i, v in enumerate(value)]
    if origin is dict or tp is dict:
        if not isinstance(value, dict):
            raise PayloadError(path, f"must be an object, got {_kind(value)}")
        _, item = get_args(tp) or (str, Any)
        return {k: load(item, v, f"{path}[{k!r}]") for k, v in value.items()}
    if isinstance(tp, type) and dataclasses.is_dataclass(tp):
        return _load_dataclass(tp, value, path)
    if is_pydantic_model(tp):
        return _load_pydantic(tp, value, path)
    return _load_scalar(tp, value, path)


def _load_union(tp: Any, value: Any, path: str) -> Any:
    options = get_args(tp)
    if value is None and type(None) in options:
        return None
    problems = []
    for option in options:
        if option is type(None):
            continue
        try:
            return load(option, value, path)
        except PayloadError as exc:
            problems.append(exc.problem)
    raise PayloadError(path, f"fits none of {tp}: {'; '.join(problems)}")


def _load_dataclass(tp: type[Any], value: Any, path: str) -> Any:
    if not isinstance(value, dict):
        raise PayloadError(path, f"must be an object for {tp.__name__}, got {_kind(value)}")
    hints = get_type_hints(tp)
    fields = {f.name: f for f in dataclasses.fields(tp) if f.init}
    unknown = sorted(set(value) - set(fields))
    if unknown:
        raise PayloadError(path, f"{tp.__name__} has no field {unknown[0]!r}")
    kwargs = {}
    for name, spec in fields.items():
        where = f"{path}[{name!r}]"
        if name not in value:
            required = (
                spec.default is dataclasses.MISSING and spec.default_factory is dataclasses.MISSING
            )
            if required:
                raise PayloadError(where, f"is required by {tp.__name__}")
            continue
        kwargs[name] = load(hints.get(name, Any), value[name], where)
    return tp(**kwargs)


def _load_pydantic(tp: Any, value: Any, path: str) -> Any:
    try:
        return tp.model_validate(value)
    except ValueError as exc:  # pydantic.ValidationError is a ValueError
        errors = getattr(exc, "errors", None)
        if callable(errors) and errors():
            first = errors()[0]
            where = path + "".join(f"[{part!r}]" for part in first.get("loc", ()))
            raise PayloadError(where, str(first.get("msg", exc))) from None
        raise PayloadError(path, str(exc)) from None


def _load_scalar(tp: Any, value: Any, path: str) -> Any:
    if tp is type(None):
        if value is None:
            return None
    elif tp is bool:
        if isinstance(value, bool):
            return value
    elif tp is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
    elif tp is float:
        if isinstance(value, int | float) and not isinstance(value, bool):
            return float(value)
    elif tp is str:
        if isinstance(value, str):
            return value
    elif isinstance(tp, type) and issubclass(tp, enum.Enum):
        try:
            return tp(value)
        except ValueError:
            raise PayloadError(path, f"is not a {tp.__name__}: {value!r}") from None
    else:
        return value  # a type JSON has no checks for: taken as it is
    name = getattr(tp, "__name__", repr(tp))
    raise PayloadError(path, f"must be {name}, got {_kind(value)}")


def _kind(value: Any) -> str:
    return "null" if value is None else f"{type(value).__name__} {value!r:.60}"
