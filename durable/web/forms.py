"""Forms of the dashboard and the admin, including the one built from an input's schema."""

from __future__ import annotations

import json
from typing import Any

from django import forms
from django.core.exceptions import ValidationError
from django.utils.html import escape

from durable.conf import durable_settings
from durable.dsl import registry
from durable.models import PendingInput
from durable.serialization import MAX_DEPTH


def schema_of(pending: PendingInput) -> dict[str, Any]:
    return {
        "type": pending.type,
        "prompt": pending.prompt,
        "fields": pending.fields or [],
        "choices": pending.choices or [],
    }


def stale_input_message(pending: PendingInput | None) -> str:
    """Why a response form shown earlier no longer applies (someone answered first, the
    input timed out, or the workflow moved on)."""
    if pending is None:
        return "This input no longer exists: its execution was retried or removed."
    name = pending.input_name
    if pending.status == PendingInput.Status.COMPLETED:
        who = f" by {pending.responded_by}" if pending.responded_by_id else ""
        return f"{name!r} was already answered{who}; your response was not recorded."
    if pending.status == PendingInput.Status.TIMEOUT:
        return f"{name!r} timed out before your response; it was not recorded."
    return f"{name!r} is no longer awaited ({pending.status}); your response was not recorded."


def _option_choices(options: list[Any]) -> list[tuple[str, str]]:
    # Values travel as JSON text, so 1, "1" and true stay distinct.
    return [(json.dumps(option), str(option)) for option in options]


def _form_field(spec: dict[str, Any]) -> forms.Field:
    kind = spec["type"]
    required = bool(spec.get("required")) and kind != "boolean"
    label = str(spec.get("label") or spec["name"].replace("_", " ").capitalize())
    common: dict[str, Any] = {
        "required": required,
        # Said in words: some fields of a form may be left empty, these may not.
        "label": f"{label} (required)" if required else label,
        # Django renders help_text unescaped (`|safe`), and this one comes from a stored
        # schema: escape it here.
        "help_text": escape(str(spec.get("help_text") or "")),
    }
    if kind == "text":
        return forms.CharField(max_length=spec.get("max_length"), **common)
    if kind == "textarea":
        return forms.CharField(max_length=spec.get("max_length"), widget=forms.Textarea, **common)
    if kind == "number":
        return forms.CharField(widget=forms.NumberInput(attrs={"step": "any"}), **common)
    if kind == "boolean":
        return forms.BooleanField(**common)
    if kind == "date":
        return forms.CharField(widget=forms.DateInput(attrs={"type": "date"}), **common)
    if kind == "select":
        return forms.ChoiceField(choices=[("", "---"), *_option_choices(spec["options"])], **common)
    return forms.MultipleChoiceField(
        choices=_option_choices(spec["options"]), widget=forms.CheckboxSelectMultiple, **common
    )


class PendingInputForm(forms.Form):
    """The response form of one pending input; `response` is what `provide_input` takes.

    Fields are named after the schema (free text: `response`; choices: `choice`), so the
    `ValidationError` of `validate_response` lands on the field it names."""

    def __init__(self, pending: PendingInput, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("prefix", "input")
        super().__init__(*args, **kwargs)
        self.pending = pending
        kind = pending.type
        if kind == "free_text":
            self.fields["response"] = forms.CharField(
                label="Response", widget=forms.Textarea(attrs={"rows": 3}), required=True
            )
        elif kind == "single_choice":
            self.fields["choice"] = forms.ChoiceField(
                label="Choice",
                choices=_option_choices([c["value"] for c in pending.choices]),
                widget=forms.RadioSelect,
            )
            self._label_choices()
        elif kind == "multi_choice":
            self.fields["choice"] = forms.MultipleChoiceField(
                label="Choices",
                choices=_option_choices([c["value"] for c in pending.choices]),
                widget=forms.CheckboxSelectMultiple,
            )
            self._label_choices()
        else:
            for spec in pending.fields or []:
                self.fields[spec["name"]] = _form_field(spec)

    def _label_choices(self) -> None:
        field = self.fields["choice"]
        assert isinstance(field, forms.ChoiceField)
        field.choices = [(json.dumps(c["value"]), c["label"]) for c in self.pending.choices]

    def _decode(self, value: Any) -> Any:
        if isinstance(value, list):
            return [json.loads(v) for v in value]
        return json.loads(value)

    def response(self) -> Any:
        """The cleaned data as the response `validate_response` expects."""
        data = self.cleaned_data
        kind = self.pending.type
        if kind == "free_text":
            return data["response"]
        if kind in ("single_choice", "multi_choice"):
            return self._decode(data["choice"])
        response: dict[str, Any] = {}
        for spec in self.pending.fields or []:
            value = data.get(spec["name"])
            if spec["type"] in ("select", "multi_select") and value not in (None, "", []):
                value = self._decode(value)
            if value not in (None, "", []):
                response[spec["name"]] = value
            elif spec["type"] == "boolean":
                response[spec["name"]] = False
        return response

    def add_validation_error(self, error: ValidationError) -> None:
        """Show a `validate_response` error on the fields it names (else on the form)."""
        if hasattr(error, "error_dict"):
            for name, messages in error.message_dict.items():
                self.add_error(name if name in self.fields else None, messages)
        else:
            self.add_error(None, error.messages)


def _json_field(label: str, *, required: bool = False) -> forms.CharField:
    return forms.CharField(
        label=label,
        required=required,
        widget=forms.Textarea(attrs={"rows": 3, "spellcheck": "false"}),
        help_text="JSON",
    )


def _parse_json(text: str, what: str) -> Any:
    if not text.strip():
        return None
    try:
        return json.loads(text)
    except ValueError as exc:
        raise ValidationError(f"{what} is not valid JSON: {exc}") from None
    except RecursionError:
        # The parser's own limit, far beyond what storing it allows (serialization.MAX_DEPTH).
        raise ValidationError(
            f"{what} nests too deeply (at most {MAX_DEPTH} levels of lists and objects)"
        ) from None


class StartWorkflowForm(forms.Form):
    workflow = forms.ChoiceField()
    input = _json_field("Input")
    queue = forms.ChoiceField(required=False)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        names = sorted(d.name for d in registry.all_definitions())
        self.fields["workflow"].choices = [(n, n) for n in names]  # type: ignore[attr-defined]
        self.fields["queue"].choices = [  # type: ignore[attr-defined]
            ("", "(the workflow's queue)"),
            *((q, q) for q in durable_settings.queue_names()),
        ]

    def clean_input(self) -> dict[str, Any]:
        value = _parse_json(self.cleaned_data["input"], "input")
        if value is None:
            return {}
        if not isinstance(value, dict):
            raise ValidationError("input must be a JSON object")
        return value


class SendEventForm(forms.Form):
    event = forms.CharField(max_length=200)
    payload = _json_field("Payload")

    def clean_payload(self) -> Any:
        return _parse_json(self.cleaned_data["payload"], "payload")
