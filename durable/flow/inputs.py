"""Schemas of human inputs (`ctx.wait_for_input`) and validation of responses to them.

Checked twice: the schema when the step declares the wait (a bad schema is a bug in the
workflow), the response when someone answers (a bad response is refused with a
`ValidationError` naming the field, and changes nothing).
"""

from __future__ import annotations

import re
from datetime import date
from decimal import Decimal, InvalidOperation
from typing import Any

from django.core.exceptions import ValidationError

from durable.serialization import normalize

INPUT_TYPES = ("free_text", "form", "single_choice", "multi_choice")
FIELD_TYPES = ("text", "textarea", "number", "boolean", "select", "multi_select", "date")
_ISO_DATE = re.compile(r"\d{4}-\d{2}-\d{2}", re.ASCII)
# Number answers: plain decimal notation, bounded in length and exponent (a float's range).
MAX_NUMBER_LENGTH = 100
MAX_NUMBER_EXPONENT = 308
_TOO_LARGE = 10 ** (MAX_NUMBER_EXPONENT + 1)
_NUMBER = re.compile(r"[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?", re.ASCII)


def build_schema(
    input_type: str,
    prompt: str,
    fields: list[dict[str, Any]] | None,
    choices: list[Any] | None,
) -> dict[str, Any]:
    """Validate what a step declared and return the stored schema."""
    if input_type not in INPUT_TYPES:
        raise ValueError(f"input type must be one of {', '.join(INPUT_TYPES)}, got {input_type!r}")
    if not isinstance(prompt, str):
        raise TypeError(f"prompt must be a string, got {prompt!r}")
    schema: dict[str, Any] = {"type": input_type, "prompt": prompt, "fields": [], "choices": []}
    if input_type == "form":
        if not fields:
            raise ValueError("a form input needs fields=[{'name': ..., 'type': ...}, ...]")
        schema["fields"] = [_field(f) for f in fields]
        names = [f["name"] for f in schema["fields"]]
        if len(set(names)) != len(names):
            raise ValueError(f"form field names must be unique, got {names}")
    elif fields:
        raise ValueError(f"fields= only applies to type='form', not {input_type!r}")
    if input_type in ("single_choice", "multi_choice"):
        if not choices:
            raise ValueError(f"a {input_type} input needs choices=[...]")
        schema["choices"] = [_choice(c) for c in choices]
    elif choices:
        raise ValueError(f"choices= only applies to choice inputs, not {input_type!r}")
    # Stored with the parked step and shown in the UI: a value that is not JSON must fail
    # the step here, not the checkpoint that parks it (which would run it again forever).
    normalized: dict[str, Any] = normalize(schema, "input schema")
    return normalized


def _field(spec: Any) -> dict[str, Any]:
    if not isinstance(spec, dict) or not isinstance(spec.get("name"), str) or not spec["name"]:
        raise ValueError(f"each form field needs a non-empty 'name', got {spec!r}")
    kind = spec.get("type", "text")
    if kind not in FIELD_TYPES:
        raise ValueError(
            f"field {spec['name']!r}: type must be one of {', '.join(FIELD_TYPES)}, got {kind!r}"
        )
    field = {**spec, "type": kind, "required": bool(spec.get("required", False))}
    if kind in ("select", "multi_select"):
        options = spec.get("options")
        if not isinstance(options, list | tuple) or not options:
            raise ValueError(f"field {spec['name']!r}: a {kind} needs options=[...]")
        field["options"] = list(options)
    max_length = spec.get("max_length")
    if max_length is not None and (not isinstance(max_length, int) or max_length < 1):
        raise ValueError(f"field {spec['name']!r}: max_length must be an int >= 1")
    return field


def _choice(choice: Any) -> dict[str, Any]:
    if isinstance(choice, dict):
        if "value" not in choice:
            raise ValueError(f"each choice needs a 'value', got {choice!r}")
        return {"value": choice["value"], "label": str(choice.get("label", choice["value"]))}
    return {"value": choice, "label": str(choice)}


def validate_response(schema: dict[str, Any], response: Any) -> Any:
    """Return the cleaned response, or raise ValidationError naming the field."""
    kind = schema.get("type", "free_text")
    if kind == "free_text":
        return response
    if kind in ("single_choice", "multi_choice"):
        return _clean_choice(schema["choices"], response, multi=kind == "multi_choice")
    if not isinstance(response, dict):
        raise ValidationError("a form response must be an object of field values", code="invalid")
    unknown = sorted(set(response) - {f["name"] for f in schema["fields"]})
    if unknown:
        raise ValidationError({name: ["unknown field"] for name in unknown})
    cleaned: dict[str, Any] = {}
    errors: dict[str, list[str]] = {}
    for field in schema["fields"]:
        name = field["name"]
        value = response.get(name)
        if isinstance(value, str) and field["type"] in ("text", "textarea", "number", "date"):
            # As Django's forms do: "  " is no answer to a required field.
            value = value.strip()
        if value is None or value == "" or value == []:
            if field["required"]:
                errors[name] = ["this field is required"]
            continue
        try:
            cleaned[name] = _clean_field(field, value)
        except ValueError as exc:
            errors[name] = [str(exc)]
    if errors:
        raise ValidationError(errors)
    return cleaned


def _clean_choice(choices: list[dict[str, Any]], response: Any, *, multi: bool) -> Any:
    values = [c["value"] for c in choices]
    if multi:
        if not isinstance(response, list | tuple) or not response:
            raise ValidationError({"choice": ["pick at least one of the choices"]})
        bad = [v for v in response if not _among(v, values)]
        if bad:
            raise ValidationError({"choice": [f"{bad!r} not among the choices {values!r}"]})
        return list(response)
    if isinstance(response, list | tuple):
        raise ValidationError({"choice": ["pick exactly one choice, not a list"]})
    if not _among(response, values):
        raise ValidationError({"choice": [f"{response!r} is not one of the choices {values!r}"]})
    return response


def _clean_field(field: dict[str, Any], value: Any) -> Any:
    kind = field["type"]
    if kind in ("text", "textarea"):
        if not isinstance(value, str):
            raise ValueError("must be text")
        if field.get("max_length") and len(value) > field["max_length"]:
            raise ValueError(f"at most {field['max_length']} characters (got {len(value)})")
        return value
    if kind == "number":
        return _clean_number(value)
    if kind == "boolean":
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in (
            "true",
            "on",
            "yes",
            "1",
            "false",
            "off",
            "no",
            "0",
        ):
            return value.lower() in ("true", "on", "yes", "1")
        raise ValueError("must be true or false")
    if kind == "date":
        # Only YYYY-MM-DD: fromisoformat alone would also take 20240101 and week dates.
        text = value.strip() if isinstance(value, str) else ""
        try:
            if not _ISO_DATE.fullmatch(text):
                raise ValueError
            return date.fromisoformat(text).isoformat()
        except ValueError:
            raise ValueError(f"{value!r} is not a date (YYYY-MM-DD)") from None
    options = field["options"]
    if kind == "select":
        if not _among(value, options):
            raise ValueError(f"{value!r} is not one of {options!r}")
        return value
    if not isinstance(value, list | tuple) or not all(_among(v, options) for v in value):
        raise ValueError(f"must be a list of options from {options!r}")
    return list(value)


def _clean_number(value: Any) -> int | float:
    """An int or a float from a number or its text, bounded before any conversion: turning
    "1e1000000" into an int would take a minute of CPU, and 1e5000 cannot be stored."""
    if isinstance(value, bool):
        raise ValueError("must be a number")
    if not isinstance(value, int | float | str):
        raise ValueError(f"{value!r} is not a number")
    if isinstance(value, int):
        if abs(value) >= _TOO_LARGE:
            raise ValueError(f"is out of range (at most {MAX_NUMBER_EXPONENT + 1} digits)")
        return int(value)
    text = repr(value) if isinstance(value, float) else value.strip()
    if len(text) > MAX_NUMBER_LENGTH:
        raise ValueError(f"a number of at most {MAX_NUMBER_LENGTH} characters, please")
    if not _NUMBER.fullmatch(text):
        if text.lstrip("+-").lower() in ("nan", "snan", "inf", "infinity"):
            raise ValueError(f"{value!r} is not a finite number")
        raise ValueError(f"{value!r} is not a number")
    try:
        number = Decimal(text)
    except InvalidOperation:  # well formed, so its exponent is past Decimal's own range
        raise ValueError(f"{value!r} is out of range") from None
    # Decimal only parsed the text (fast at this length); its exponent says how large
    # the int would be. Within 100 characters, anything past 1e100 is an integer.
    if number and not -MAX_NUMBER_EXPONENT <= number.adjusted() <= MAX_NUMBER_EXPONENT:
        raise ValueError(
            f"{value!r} is out of range (its exponent must be between "
            f"-{MAX_NUMBER_EXPONENT} and {MAX_NUMBER_EXPONENT})"
        )
    return int(number) if number == number.to_integral_value() else float(number)


def _among(value: Any, options: list[Any]) -> bool:
    """`value in options`, except that True/False do not match 1/0 (Python says they are
    equal; JSON and the person choosing do not)."""
    return any(value == o and isinstance(value, bool) == isinstance(o, bool) for o in options)
