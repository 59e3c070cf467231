"""Payload codecs: how Durable's stored payloads are encoded (encrypted, say) at rest.

With `DURABLE["CODEC"]` set to a codec's dotted path, every stored payload (execution
input, context, result and fan-out snapshots; step attempts' input, output and context
before; task tokens, which carry wait values and foreach items; fan-out branch items and
ops; events; input responses) is written as `{"$durable_codec": name, "data": ...}` and
decoded when read (durable.models.PayloadField, and the named SQL of durable.store.sql).
Values written before a codec was set are read as they are. What is left plain: ids,
names, statuses, times, errors and logs (they may quote data: keep secrets out of
exception messages and log lines), and the message bus's messages.
"""

from __future__ import annotations

import json
from abc import ABC, abstractmethod
from typing import Any

from durable.conf import durable_settings
from durable.serialization import dumps

MARKER = "$durable_codec"


class CodecError(Exception):
    """A stored payload cannot be decoded (no codec set, or no key that opens it)."""


class Codec(ABC):
    """Encodes JSON values to text and back. Subclasses set `name` and take `options`
    (DURABLE["CODEC_OPTIONS"]) in `__init__`, raising ValueError for bad ones."""

    name: str = ""

    def __init__(self, options: dict[str, Any] | None = None) -> None:
        self.options = dict(options or {})

    @abstractmethod
    def encode_bytes(self, data: bytes) -> str: ...

    @abstractmethod
    def decode_bytes(self, data: str) -> bytes: ...

    def encode(self, value: Any) -> dict[str, str]:
        return {MARKER: self.name, "data": self.encode_bytes(dumps(value).encode())}

    def decode(self, stored: dict[str, Any]) -> Any:
        if stored.get(MARKER) != self.name:
            raise CodecError(
                f"a stored payload was encoded by codec {stored.get(MARKER)!r}, and "
                f"DURABLE['CODEC'] is {self.name!r}"
            )
        return json.loads(self.decode_bytes(str(stored.get("data", ""))))


class FernetCodec(Codec):
    """Fernet (AES-128-CBC + HMAC-SHA256) from `cryptography`, over every key of
    `DURABLE["CODEC_OPTIONS"]["keys"]`, newest first: it encrypts with the first and
    decrypts with any, so a key rotates by putting the new one first and dropping the old
    one once nothing it encrypted is left (`durable_cleanup` retention)."""

    name = "fernet"

    def __init__(self, options: dict[str, Any] | None = None) -> None:
        super().__init__(options)
        try:
            from cryptography.fernet import Fernet, MultiFernet
        except ImportError as exc:
            raise ValueError(
                "FernetCodec needs the cryptography package: pip install 'durable[crypto]'"
            ) from exc
        keys = self.options.get("keys")
        if not isinstance(keys, list | tuple) or not keys:
            raise ValueError(
                "FernetCodec needs DURABLE['CODEC_OPTIONS']['keys']: a list of Fernet keys, "
                "newest first (make one with cryptography.fernet.Fernet.generate_key())"
            )
        fernets = []
        for index, key in enumerate(keys):
            try:
                fernets.append(Fernet(key))
            except (TypeError, ValueError):
                raise ValueError(
                    f"DURABLE['CODEC_OPTIONS']['keys'][{index}] is not a Fernet key (32 "
                    "url-safe base64-encoded bytes)"
                ) from None
        self._fernet = MultiFernet(fernets)

    def encode_bytes(self, data: bytes) -> str:
        return self._fernet.encrypt(data).decode("ascii")

    def decode_bytes(self, data: str) -> bytes:
        from cryptography.fernet import InvalidToken

        try:
            return self._fernet.decrypt(data.encode("ascii"))
        except (InvalidToken, UnicodeEncodeError):
            raise CodecError(
                "a stored payload could not be decrypted with any key of "
                "DURABLE['CODEC_OPTIONS']['keys'] (was the key that encrypted it removed?)"
            ) from None


def is_encoded(value: Any) -> bool:
    return isinstance(value, dict) and MARKER in value and len(value) == 2


def active() -> Codec | None:
    """The configured codec, or None."""
    codec: Codec | None = durable_settings.codec
    return codec


def encode(value: Any) -> Any:
    """`value` as stored: encoded when a codec is set (None stays None)."""
    codec = active()
    if codec is None or value is None:
        return value
    return codec.encode(value)


def decode(value: Any) -> Any:
    """A stored value as written before `encode`."""
    if not is_encoded(value):
        return value
    codec = active()
    if codec is None:
        raise CodecError(
            "a stored payload is encoded (by codec "
            f"{value.get(MARKER)!r}) and DURABLE['CODEC'] is not set"
        )
    return codec.decode(value)
