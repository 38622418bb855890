"""Kubernetes protobuf bodies (``application/vnd.kubernetes.protobuf``) <-> JSON dicts.

client-go typed clients (kubectl 1.32) send built-in objects as protobuf. A body is the magic
``k8s\\0`` followed by a ``runtime.Unknown`` envelope::

    Unknown { 1 typeMeta {1 apiVersion, 2 kind}, 2 raw (the object), 3 contentEncoding,
              4 contentType }

``raw`` is decoded with the field tables in ``proto_schema.json`` (generated from the upstream
``generated.proto`` + Go struct tags by ``tools/gen_proto_schema.py``) into the JSON the same
client would have sent, following the upstream JSON conventions:

* JSON names come from the Go ``json`` tags (``$ref``, ``x-kubernetes-*`` ...); embedded
  ``json:",inline"`` structs (Volume.volumeSource, Probe.handler, IngressRule.ingressRuleValue,
  EphemeralContainer, ...) are flattened into their parent.
* Zero values. The Go encoder writes every non-pointer field, so "present" says nothing for
  those; for pointer fields presence is meaningful (Go pointer-ness is in the schema). Rule:
  a present *pointer* field is kept whatever its value (``replicas: 0``, ``emptyDir: {}``,
  ``$ref: ""``); a non-pointer string, bytes, list, map or message is dropped when empty,
  where a message is empty unless it holds a present pointer field or a non-zero value
  (so ``status: {allowed: false}`` disappears); inside a kept message a non-pointer
  number/bool is kept unless it is zero and ``omitempty`` (``PriorityClass.value: 0`` and
  ``ServicePort.port`` survive). The result is what a JSON client would send, minus the empty
  noise (``creationTimestamp: null``, ``status: {}``, ``resources: {}``); defaulting does
  the rest.
* Well-known types: Time -> ``"2006-01-02T15:04:05Z"`` (empty/epoch-zero -> omitted),
  MicroTime -> ``"...T15:04:05.000000Z"``, Duration -> Go duration text (``"1h0m0s"``),
  IntOrString -> int or str, Quantity -> its string, bytes -> base64 text, RawExtension /
  FieldsV1 / apiextensions JSON -> the parsed JSON they carry, ExtraValue/Verbs -> list of
  strings, JSONSchemaPropsOrArray/OrBool/OrStringArray -> schema, list or bool.

``encode`` is the inverse (JSON dict with apiVersion/kind -> envelope bytes). Malformed input
raises ``ProtobufError`` (a ``ValueError``), never anything else.
"""

from __future__ import annotations

import base64
import binascii
import functools
import json
import re
import struct
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

MAGIC = b"k8s\x00"
CONTENT_TYPE = "application/vnd.kubernetes.protobuf"

_MAX_DEPTH = 200
_META = "k8s.io.apimachinery.pkg.apis.meta.v1."
_TIME = _META + "Time"
_MICRO_TIME = _META + "MicroTime"
_DURATION = _META + "Duration"
_FIELDS_V1 = _META + "FieldsV1"
_RAW_EXTENSION = "k8s.io.apimachinery.pkg.runtime.RawExtension"
_INT_OR_STRING = "k8s.io.apimachinery.pkg.util.intstr.IntOrString"
_QUANTITY = "k8s.io.apimachinery.pkg.api.resource.Quantity"
_APIEXT = "k8s.io.apiextensions_apiserver.pkg.apis.apiextensions.v1."
_JSON = _APIEXT + "JSON"
_PROPS_OR_ARRAY = _APIEXT + "JSONSchemaPropsOrArray"
_PROPS_OR_BOOL = _APIEXT + "JSONSchemaPropsOrBool"
_PROPS_OR_STRINGS = _APIEXT + "JSONSchemaPropsOrStringArray"
_STRING_LISTS = frozenset({
    "k8s.io.api.authentication.v1.ExtraValue",
    "k8s.io.api.authorization.v1.ExtraValue",
    "k8s.io.api.certificates.v1.ExtraValue",
    _META + "Verbs",
})

_VARINT, _FIXED64, _LEN, _FIXED32 = 0, 1, 2, 5
_VARINT_TYPES = frozenset({"int32", "int64", "uint32", "uint64", "sint32", "sint64", "bool"})
_FIXED64_TYPES = frozenset({"double", "fixed64", "sfixed64"})
_FIXED32_TYPES = frozenset({"float", "fixed32", "sfixed32"})
_LEN_SCALARS = frozenset({"string", "bytes"})
_NUMERIC = _VARINT_TYPES | _FIXED64_TYPES | _FIXED32_TYPES
_SCALARS = _NUMERIC | _LEN_SCALARS


class ProtobufError(ValueError):
    """The body is not a well-formed Kubernetes protobuf message of a known kind."""


# ----------------------------------------------------------------------------- schema
FieldSpec = dict[str, Any]


@functools.cache
def _schema() -> dict[str, Any]:
    path = Path(__file__).with_name("proto_schema.json")
    with path.open("rb") as f:
        return json.load(f)  # type: ignore[no-any-return]


@functools.cache
def _fields(message: str) -> tuple[tuple[int, FieldSpec], ...]:
    """(number, spec) pairs of a message in declaration order."""
    return tuple((int(n), spec) for n, spec in _schema()["messages"][message]["fields"].items())


@functools.cache
def _json_keys(message: str) -> frozenset[str]:
    """JSON keys a message contributes at its own level (inline children included)."""
    keys: set[str] = set()
    for _n, spec in _fields(message):
        keys |= _json_keys(spec["type"]) if spec["inline"] else {spec["name"]}
    return frozenset(keys)


def message_for(api_version: str, kind: str) -> str | None:
    """The protobuf message name for ``apiVersion``/``kind`` (None if we have no schema).

    Meta kinds (DeleteOptions, Status, ...) are accepted under any group version.
    """
    kinds = _schema()["kinds"]
    name = kinds.get(f"{api_version}/{kind}")
    if name is None and (_META + kind) in _schema()["messages"]:
        name = _META + kind
    return name  # type: ignore[no-any-return]


# ----------------------------------------------------------------------------- wire reading
def _read_varint(buf: bytes, pos: int) -> tuple[int, int]:
    result = 0
    for shift in range(0, 70, 7):
        if pos >= len(buf):
            raise ProtobufError("truncated varint")
        b = buf[pos]
        pos += 1
        result |= (b & 0x7F) << shift
        if not b & 0x80:
            return result & 0xFFFFFFFFFFFFFFFF, pos
    raise ProtobufError("varint longer than 10 bytes")


def _iter_fields(buf: bytes) -> Iterator[tuple[int, int, int | bytes]]:
    """Yield (field number, wire type, value) for every field of one message."""
    pos = 0
    while pos < len(buf):
        key, pos = _read_varint(buf, pos)
        number, wire = key >> 3, key & 7
        if number == 0 or number > 0x1FFFFFFF:
            raise ProtobufError(f"invalid field number {number}")
        value: int | bytes
        if wire == _VARINT:
            value, pos = _read_varint(buf, pos)
        elif wire == _FIXED64 or wire == _FIXED32:
            size = 8 if wire == _FIXED64 else 4
            if pos + size > len(buf):
                raise ProtobufError("truncated fixed-width field")
            value = int.from_bytes(buf[pos:pos + size], "little")
            pos += size
        elif wire == _LEN:
            length, pos = _read_varint(buf, pos)
            if pos + length > len(buf):
                raise ProtobufError(f"field {number}: length {length} runs past the end")
            value = buf[pos:pos + length]
            pos += length
        else:
            raise ProtobufError(f"field {number}: unsupported wire type {wire}")
        yield number, wire, value


def _collect(buf: bytes) -> dict[int, list[tuple[int, int | bytes]]]:
    out: dict[int, list[tuple[int, int | bytes]]] = {}
    for number, wire, value in _iter_fields(buf):
        out.setdefault(number, []).append((wire, value))
    return out


def _wire_type(type_: str) -> int:
    if type_ in _VARINT_TYPES:
        return _VARINT
    if type_ in _FIXED64_TYPES:
        return _FIXED64
    return _FIXED32 if type_ in _FIXED32_TYPES else _LEN


def _signed(value: int, bits: int) -> int:
    value &= (1 << bits) - 1
    return value - (1 << bits) if value >> (bits - 1) else value


def _scalar(type_: str, wire: int, value: int | bytes) -> Any:
    """Decode one scalar of ``type_`` that arrived with ``wire``."""
    if type_ in _LEN_SCALARS:
        if not isinstance(value, bytes):
            raise ProtobufError(f"{type_} field with wire type {wire}")
        if type_ == "bytes":
            return base64.b64encode(value).decode("ascii")
        try:
            return value.decode("utf-8")
        except UnicodeDecodeError as e:
            raise ProtobufError(f"string field is not valid UTF-8: {e}") from None
    if wire != _wire_type(type_) or not isinstance(value, int):
        raise ProtobufError(f"{type_} field with wire type {wire}")
    if type_ == "bool":
        return value != 0
    if type_ in ("int32", "sfixed32"):
        return _signed(value, 32)
    if type_ in ("int64", "sfixed64"):
        return _signed(value, 64)
    if type_ == "uint32":
        return value & 0xFFFFFFFF
    if type_ in ("sint32", "sint64"):
        return (value >> 1) ^ -(value & 1)
    if type_ == "double":
        return _json_number(struct.unpack("<d", value.to_bytes(8, "little"))[0])
    if type_ == "float":
        return _json_number(struct.unpack("<f", value.to_bytes(4, "little"))[0])
    return value  # uint64, fixed32, fixed64


def _json_number(x: float) -> float | int:
    if x != x or x in (float("inf"), float("-inf")):
        raise ProtobufError("floating point value is not representable in JSON")
    return int(x) if x.is_integer() and abs(x) < 2**53 else x


def _packed(type_: str, data: bytes) -> list[Any]:
    """Elements of a packed repeated numeric field."""
    out: list[Any] = []
    pos = 0
    if type_ in _VARINT_TYPES:
        while pos < len(data):
            v, pos = _read_varint(data, pos)
            out.append(_scalar(type_, _VARINT, v))
        return out
    size, wire = (8, _FIXED64) if type_ in _FIXED64_TYPES else (4, _FIXED32)
    if len(data) % size:
        raise ProtobufError(f"packed {type_} field has a partial element")
    for i in range(0, len(data), size):
        out.append(_scalar(type_, wire, int.from_bytes(data[i:i + size], "little")))
    return out


# ----------------------------------------------------------------------------- decoding
def decode(body: bytes) -> dict[str, Any]:
    """Decode a whole ``k8s\\0`` + runtime.Unknown body into a JSON-compatible dict."""
    if not isinstance(body, (bytes, bytearray, memoryview)):
        raise ProtobufError("protobuf body must be bytes")
    body = bytes(body)
    if not body.startswith(MAGIC):
        raise ProtobufError("body does not start with the Kubernetes protobuf magic 'k8s\\x00'")
    try:
        return _decode_envelope(body[len(MAGIC):], 0)
    except RecursionError:
        raise ProtobufError("message nesting too deep") from None


def _decode_envelope(buf: bytes, depth: int) -> dict[str, Any]:
    fields = _collect(buf)
    type_meta = _last_bytes(fields, 1, "typeMeta")
    raw = _last_bytes(fields, 2, "raw")
    encoding = _last_bytes(fields, 3, "contentEncoding")
    content_type = _last_bytes(fields, 4, "contentType")
    if encoding:
        raise ProtobufError(f"unsupported contentEncoding {encoding!r}")
    if content_type and content_type != CONTENT_TYPE.encode():
        raise ProtobufError(f"unsupported contentType {content_type!r}")
    tm = _collect(type_meta)
    api_version = _scalar("string", _LEN, _last_bytes(tm, 1, "apiVersion"))
    kind = _scalar("string", _LEN, _last_bytes(tm, 2, "kind"))
    if not api_version or not kind:
        raise ProtobufError("protobuf envelope has no apiVersion/kind")
    message = message_for(api_version, kind)
    if message is None:
        raise ProtobufError(f"no protobuf schema for kind {kind!r} in {api_version!r}")
    obj = _decode_message(raw, message, depth + 1)
    assert isinstance(obj, dict)
    return {"apiVersion": api_version, "kind": kind, **obj}


def _last_bytes(fields: dict[int, list[tuple[int, int | bytes]]], number: int, what: str) -> bytes:
    values = fields.get(number)
    if not values:
        return b""
    wire, value = values[-1]
    if not isinstance(value, bytes):
        raise ProtobufError(f"envelope field {what} has wire type {wire}, expected bytes")
    return value


def _decode_message(buf: bytes, message: str, depth: int) -> Any:
    return _decode_message_sig(buf, message, depth)[0]


def _decode_message_sig(buf: bytes, message: str, depth: int) -> tuple[Any, bool]:
    """Decode one message; also say whether it is *significant* (see ``_add_field``)."""
    if depth > _MAX_DEPTH:
        raise ProtobufError("message nesting too deep")
    fields = _collect(buf)
    special = _SPECIAL_DECODERS.get(message)
    if special is not None:
        value = special(fields, depth)
        return value, _significant_value(value)
    out: dict[str, Any] = {}
    significant = False
    for number, spec in _fields(message):
        values = fields.get(number)
        if values:
            value, sig = _decode_field(spec, values, depth)
            significant |= _add_field(out, spec, value, sig)
    return out, significant


def _add_field(out: dict[str, Any], spec: FieldSpec, value: Any, sig: bool) -> bool:
    """Apply the zero-value rule (module docstring); return whether the field is significant.

    Significant = a present pointer field, or a non-zero value. A non-pointer message is
    kept only when significant, so ``status: {allowed: false}`` (all zero, but ``allowed``
    is not ``omitempty``) disappears while ``PriorityClass.value: 0`` at a significant level
    stays.
    """
    if spec["inline"]:
        if sig and isinstance(value, dict):
            out.update(value)
        return sig
    if spec["pointer"]:
        if value is None:
            return False
        out[spec["name"]] = value
        return True
    if spec["type"] in _NUMERIC and not spec["repeated"]:
        if sig or not spec["omitempty"]:
            out[spec["name"]] = value
        return sig
    if sig:
        out[spec["name"]] = value
    return sig


def _significant_value(value: Any) -> bool:
    return value is not None and value is not False and value not in ("", 0, [], {})


def _decode_field(spec: FieldSpec, values: list[tuple[int, int | bytes]],
                  depth: int) -> tuple[Any, bool]:
    if spec["map"] is not None:
        decoded = _decode_map(spec["map"], values, depth)
        return decoded, bool(decoded)
    type_ = spec["type"]
    if spec["repeated"]:
        items: list[Any] = []
        for wire, value in values:
            if type_ in _NUMERIC and wire == _LEN and isinstance(value, bytes):
                items.extend(_packed(type_, value))
            else:
                items.append(_decode_value(type_, wire, value, depth))
        return items, bool(items)
    wire, value = values[-1]
    if type_ in _SCALARS:
        decoded = _scalar(type_, wire, value)
        return decoded, _significant_value(decoded)
    if not isinstance(value, bytes):
        raise ProtobufError(f"message field of type {type_.rsplit('.', 1)[-1]} "
                            f"has wire type {wire}")
    return _decode_message_sig(value, type_, depth + 1)


def _decode_value(type_: str, wire: int, value: int | bytes, depth: int) -> Any:
    if type_ in _SCALARS:
        return _scalar(type_, wire, value)
    if not isinstance(value, bytes):
        raise ProtobufError(f"message field of type {type_.rsplit('.', 1)[-1]} "
                            f"has wire type {wire}")
    return _decode_message(value, type_, depth + 1)


def _decode_map(types: dict[str, str], values: list[tuple[int, int | bytes]], depth: int) -> Any:
    out: dict[str, Any] = {}
    for wire, entry in values:
        if not isinstance(entry, bytes):
            raise ProtobufError(f"map entry with wire type {wire}")
        fields = _collect(entry)
        key = _entry_part(types["key"], fields.get(1), depth)
        out[str(key)] = _entry_part(types["value"], fields.get(2), depth)
    return out


def _entry_part(type_: str, values: list[tuple[int, int | bytes]] | None, depth: int) -> Any:
    if values:
        wire, value = values[-1]
        return _decode_value(type_, wire, value, depth)
    # absent key/value: the zero value of the type
    if type_ in _LEN_SCALARS:
        return ""
    if type_ in _NUMERIC:
        return False if type_ == "bool" else 0
    return _decode_message(b"", type_, depth + 1)


# --- well-known types: decoders get the collected fields of the message -----------------
Fields = dict[int, list[tuple[int, int | bytes]]]


def _one(fields: Fields, number: int, type_: str, depth: int, default: Any = None) -> Any:
    values = fields.get(number)
    if not values:
        return default
    wire, value = values[-1]
    return _decode_value(type_, wire, value, depth)


def _many(fields: Fields, number: int, type_: str, depth: int) -> list[Any]:
    return [_decode_value(type_, w, v, depth) for w, v in fields.get(number, ())]


def _dec_time(fields: Fields, depth: int, micro: bool = False) -> str | None:
    seconds = _one(fields, 1, "int64", depth, 0)
    nanos = _one(fields, 2, "int32", depth, 0)
    if seconds == 0 and nanos == 0:
        return None
    try:
        t = datetime(1970, 1, 1, tzinfo=UTC) + timedelta(seconds=seconds,
                                                                   microseconds=nanos // 1000)
    except OverflowError:
        raise ProtobufError(f"time out of range: {seconds} seconds") from None
    text = (f"{t.year:04d}-{t.month:02d}-{t.day:02d}"
            f"T{t.hour:02d}:{t.minute:02d}:{t.second:02d}")
    return f"{text}.{t.microsecond:06d}Z" if micro else f"{text}Z"


def _dec_duration(fields: Fields, depth: int) -> str:
    return format_duration(_one(fields, 1, "int64", depth, 0))


def _dec_raw_json(fields: Fields, depth: int) -> Any:
    raw = fields.get(1)
    if not raw:
        return None
    wire, data = raw[-1]
    if not isinstance(data, bytes):
        raise ProtobufError(f"raw JSON field with wire type {wire}")
    if not data:
        return None
    if data.startswith(MAGIC):
        return _decode_envelope(data[len(MAGIC):], depth + 1)
    try:
        return json.loads(data)
    except (ValueError, RecursionError) as e:
        raise ProtobufError(f"embedded raw object is not valid JSON: {e}") from None


def _dec_int_or_string(fields: Fields, depth: int) -> int | str:
    if _one(fields, 1, "int64", depth, 0) == 1:
        return str(_one(fields, 3, "string", depth, ""))
    return int(_one(fields, 2, "int32", depth, 0))


def _dec_quantity(fields: Fields, depth: int) -> str:
    return str(_one(fields, 1, "string", depth, "")) or "0"


def _dec_string_list(fields: Fields, depth: int) -> list[Any]:
    return _many(fields, 1, "string", depth)


def _dec_props_or_array(fields: Fields, depth: int) -> Any:
    many = _many(fields, 2, _APIEXT + "JSONSchemaProps", depth)
    return many if many else _one(fields, 1, _APIEXT + "JSONSchemaProps", depth)


def _dec_props_or_bool(fields: Fields, depth: int) -> Any:
    schema = _one(fields, 2, _APIEXT + "JSONSchemaProps", depth)
    return schema if schema is not None else bool(_one(fields, 1, "bool", depth, False))


def _dec_props_or_strings(fields: Fields, depth: int) -> Any:
    strings = _many(fields, 2, "string", depth)
    return strings if strings else _one(fields, 1, _APIEXT + "JSONSchemaProps", depth)


_SPECIAL_DECODERS: dict[str, Callable[[Fields, int], Any]] = {
    _TIME: _dec_time,
    _MICRO_TIME: lambda f, d: _dec_time(f, d, micro=True),
    _DURATION: _dec_duration,
    _FIELDS_V1: _dec_raw_json,
    _RAW_EXTENSION: _dec_raw_json,
    _JSON: _dec_raw_json,
    _INT_OR_STRING: _dec_int_or_string,
    _QUANTITY: _dec_quantity,
    _PROPS_OR_ARRAY: _dec_props_or_array,
    _PROPS_OR_BOOL: _dec_props_or_bool,
    _PROPS_OR_STRINGS: _dec_props_or_strings,
    **{name: _dec_string_list for name in _STRING_LISTS},
}


# ----------------------------------------------------------------------------- durations
_UNIT_NS = {"ns": 1, "us": 1_000, "µs": 1_000, "μs": 1_000, "ms": 1_000_000,
            "s": 1_000_000_000, "m": 60_000_000_000, "h": 3_600_000_000_000}
_DURATION_PART = re.compile(r"(\d*)(?:\.(\d*))?(ns|us|µs|μs|ms|s|m|h)")


def format_duration(ns: int) -> str:
    """Go's ``time.Duration.String``: ``1h0m0s``, ``1.5s``, ``300ms``, ``0s``."""
    if ns == 0:
        return "0s"
    sign, u = ("-", -ns) if ns < 0 else ("", ns)
    if u < 1_000:
        return f"{sign}{u}ns"
    if u < 1_000_000:
        return f"{sign}{_fraction(u, 3)}µs"
    if u < 1_000_000_000:
        return f"{sign}{_fraction(u, 6)}ms"
    hours, rest = divmod(u, 3_600_000_000_000)
    minutes, rest = divmod(rest, 60_000_000_000)
    seconds = _fraction(rest, 9) + "s"
    if hours:
        return f"{sign}{hours}h{minutes}m{seconds}"
    if minutes:
        return f"{sign}{minutes}m{seconds}"
    return sign + seconds


def _fraction(value: int, digits: int) -> str:
    whole, frac = divmod(value, 10**digits)
    text = f"{frac:0{digits}d}".rstrip("0")
    return f"{whole}.{text}" if text else str(whole)


def parse_duration(text: str) -> int:
    """Go's ``time.ParseDuration`` -> nanoseconds (raises ProtobufError)."""
    s = text
    sign = 1
    if s[:1] in ("-", "+"):
        sign, s = (-1 if s[0] == "-" else 1), s[1:]
    if s == "0":
        return 0
    if not s:
        raise ProtobufError(f"invalid duration {text!r}")
    total, pos = 0, 0
    while pos < len(s):
        m = _DURATION_PART.match(s, pos)
        if not m or (not m.group(1) and not m.group(2)):
            raise ProtobufError(f"invalid duration {text!r}")
        unit = _UNIT_NS[m.group(3)]
        frac = m.group(2) or ""
        total += int(m.group(1) or 0) * unit
        if frac:
            total += int(frac) * unit // 10 ** len(frac)
        pos = m.end()
    return sign * total


# ----------------------------------------------------------------------------- writing
def _varint(value: int) -> bytes:
    value &= 0xFFFFFFFFFFFFFFFF
    out = bytearray()
    while True:
        b = value & 0x7F
        value >>= 7
        if value:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def _key(number: int, wire: int) -> bytes:
    return _varint((number << 3) | wire)


def _len_field(number: int, data: bytes) -> bytes:
    return _key(number, _LEN) + _varint(len(data)) + data


def encode(obj: dict[str, Any]) -> bytes:
    """Encode a JSON object with ``apiVersion`` and ``kind`` as a ``k8s\\0`` envelope."""
    if not isinstance(obj, dict):
        raise ProtobufError("only JSON objects can be encoded")
    api_version, kind = obj.get("apiVersion"), obj.get("kind")
    if not isinstance(api_version, str) or not isinstance(kind, str) or not api_version or not kind:
        raise ProtobufError("object needs string apiVersion and kind to be encoded")
    message = message_for(api_version, kind)
    if message is None:
        raise ProtobufError(f"no protobuf schema for kind {kind!r} in {api_version!r}")
    body = {k: v for k, v in obj.items() if k not in ("apiVersion", "kind")}
    try:
        raw = _encode_message(body, message, 0, kind)
    except RecursionError:
        raise ProtobufError("object nesting too deep") from None
    type_meta = _len_field(1, api_version.encode()) + _len_field(2, kind.encode())
    return MAGIC + _len_field(1, type_meta) + _len_field(2, raw)


def _encode_message(value: Any, message: str, depth: int, path: str) -> bytes:
    if depth > _MAX_DEPTH:
        raise ProtobufError("object nesting too deep")
    special = _SPECIAL_ENCODERS.get(message)
    if special is not None:
        return special(value, depth, path)
    if not isinstance(value, dict):
        raise ProtobufError(f"{path}: expected an object, got {type(value).__name__}")
    out = bytearray()
    for number, spec in _fields(message):
        if spec["inline"]:
            keys = _json_keys(spec["type"])
            sub = {k: v for k, v in value.items() if k in keys}
            if sub:
                out += _len_field(number, _encode_message(sub, spec["type"], depth + 1, path))
            continue
        name = spec["name"]
        if name in value and value[name] is not None:
            out += _encode_field(number, spec, value[name], depth, f"{path}.{name}")
    return bytes(out)


def _encode_field(number: int, spec: FieldSpec, value: Any, depth: int, path: str) -> bytes:
    if spec["map"] is not None:
        if not isinstance(value, dict):
            raise ProtobufError(f"{path}: expected an object, got {type(value).__name__}")
        out = bytearray()
        for k, v in value.items():
            entry = (_encode_value(1, spec["map"]["key"], k, depth, path)
                     + _encode_value(2, spec["map"]["value"], v, depth, f"{path}[{k}]"))
            out += _len_field(number, entry)
        return bytes(out)
    if spec["repeated"]:
        if not isinstance(value, list):
            raise ProtobufError(f"{path}: expected a list, got {type(value).__name__}")
        return b"".join(_encode_value(number, spec["type"], v, depth, f"{path}[{i}]")
                        for i, v in enumerate(value))
    return _encode_value(number, spec["type"], value, depth, path)


def _encode_value(number: int, type_: str, value: Any, depth: int, path: str) -> bytes:
    if type_ in _SCALARS:
        return _encode_scalar(number, type_, value, path)
    return _len_field(number, _encode_message(value, type_, depth + 1, path))


def _encode_scalar(number: int, type_: str, value: Any, path: str) -> bytes:
    if type_ == "string":
        if not isinstance(value, str):
            raise ProtobufError(f"{path}: expected a string, got {type(value).__name__}")
        return _len_field(number, value.encode("utf-8", "surrogatepass"))
    if type_ == "bytes":
        return _len_field(number, _b64decode(value, path))
    if type_ == "bool":
        if not isinstance(value, bool):
            raise ProtobufError(f"{path}: expected a boolean, got {type(value).__name__}")
        return _key(number, _VARINT) + _varint(int(value))
    if type_ in ("double", "float"):
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ProtobufError(f"{path}: expected a number, got {type(value).__name__}")
        if type_ == "double":
            return _key(number, _FIXED64) + struct.pack("<d", float(value))
        return _key(number, _FIXED32) + struct.pack("<f", float(value))
    n = _as_int(value, path)
    if type_ in ("sint32", "sint64"):
        return _key(number, _VARINT) + _varint((n << 1) ^ (n >> 63))
    if type_ in _FIXED64_TYPES:
        return _key(number, _FIXED64) + (n & 0xFFFFFFFFFFFFFFFF).to_bytes(8, "little")
    if type_ in _FIXED32_TYPES:
        return _key(number, _FIXED32) + (n & 0xFFFFFFFF).to_bytes(4, "little")
    return _key(number, _VARINT) + _varint(n)


def _as_int(value: Any, path: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ProtobufError(f"{path}: expected an integer, got {type(value).__name__}")
    if isinstance(value, float) and not value.is_integer():
        raise ProtobufError(f"{path}: expected an integer, got {value}")
    n = int(value)
    if not -(2**63) <= n < 2**64:
        raise ProtobufError(f"{path}: integer {n} out of range")
    return n


def _b64decode(value: Any, path: str) -> bytes:
    if isinstance(value, (bytes, bytearray)):
        return bytes(value)
    if not isinstance(value, str):
        raise ProtobufError(f"{path}: expected base64 text, got {type(value).__name__}")
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise ProtobufError(f"{path}: invalid base64 data") from None


# --- well-known types -------------------------------------------------------------------
def _enc_time(value: Any, _depth: int, path: str) -> bytes:
    if not isinstance(value, str):
        raise ProtobufError(f"{path}: expected an RFC 3339 time string")
    try:
        t = datetime.fromisoformat(value.replace("z", "Z"))
    except ValueError:
        raise ProtobufError(f"{path}: invalid RFC 3339 time {value!r}") from None
    if t.tzinfo is None:
        t = t.replace(tzinfo=UTC)
    delta = t - datetime(1970, 1, 1, tzinfo=UTC)
    seconds = delta.days * 86400 + delta.seconds
    out = _key(1, _VARINT) + _varint(seconds)
    if delta.microseconds:
        out += _key(2, _VARINT) + _varint(delta.microseconds * 1000)
    return out


def _enc_duration(value: Any, _depth: int, path: str) -> bytes:
    if not isinstance(value, str):
        raise ProtobufError(f"{path}: expected a duration string like '1h0m0s'")
    return _key(1, _VARINT) + _varint(parse_duration(value))


def _enc_raw_json(value: Any, _depth: int, path: str) -> bytes:
    try:
        data = json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode()
    except (TypeError, ValueError) as e:
        raise ProtobufError(f"{path}: not JSON-serialisable: {e}") from None
    return _len_field(1, data)


def _enc_int_or_string(value: Any, _depth: int, path: str) -> bytes:
    if isinstance(value, str):
        return _key(1, _VARINT) + _varint(1) + _len_field(3, value.encode())
    n = _as_int(value, path)
    return _key(1, _VARINT) + _varint(0) + _key(2, _VARINT) + _varint(n)


def _enc_quantity(value: Any, _depth: int, path: str) -> bytes:
    if isinstance(value, bool) or not isinstance(value, (str, int, float)):
        raise ProtobufError(f"{path}: expected a quantity string")
    return _len_field(1, str(value).encode())


def _enc_string_list(value: Any, _depth: int, path: str) -> bytes:
    if not isinstance(value, list):
        raise ProtobufError(f"{path}: expected a list of strings")
    return b"".join(_encode_scalar(1, "string", v, path) for v in value)


def _enc_props_or_array(value: Any, depth: int, path: str) -> bytes:
    props = _APIEXT + "JSONSchemaProps"
    if isinstance(value, list):
        return b"".join(_len_field(2, _encode_message(v, props, depth + 1, path)) for v in value)
    return _len_field(1, _encode_message(value, props, depth + 1, path))


def _enc_props_or_bool(value: Any, depth: int, path: str) -> bytes:
    if isinstance(value, bool):
        return _key(1, _VARINT) + _varint(int(value))
    schema = _encode_message(value, _APIEXT + "JSONSchemaProps", depth + 1, path)
    return _key(1, _VARINT) + _varint(1) + _len_field(2, schema)


def _enc_props_or_strings(value: Any, depth: int, path: str) -> bytes:
    if isinstance(value, list):
        return b"".join(_encode_scalar(2, "string", v, path) for v in value)
    return _len_field(1, _encode_message(value, _APIEXT + "JSONSchemaProps", depth + 1, path))


_SPECIAL_ENCODERS: dict[str, Callable[[Any, int, str], bytes]] = {
    _TIME: _enc_time,
    _MICRO_TIME: _enc_time,
    _DURATION: _enc_duration,
    _FIELDS_V1: _enc_raw_json,
    _RAW_EXTENSION: _enc_raw_json,
    _JSON: _enc_raw_json,
    _INT_OR_STRING: _enc_int_or_string,
    _QUANTITY: _enc_quantity,
    _PROPS_OR_ARRAY: _enc_props_or_array,
    _PROPS_OR_BOOL: _enc_props_or_bool,
    _PROPS_OR_STRINGS: _enc_props_or_strings,
    **{name: _enc_string_list for name in _STRING_LISTS},
}
