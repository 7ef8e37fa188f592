"""How Kestra 1.3 writes values as JSON, for the Pebble subset and the fake server.

Kestra serializes with one Jackson mapper (``io.kestra.core.serializers.JacksonMapper``) configured
with ``setSerializationInclusion(JsonInclude.Include.NON_NULL)``. Since Jackson 2.9 that call sets
both the value and the *content* inclusion (``JsonInclude.Value.construct(incl, incl)``), so a map
entry whose value is null is not written, at any depth; list elements are kept. The ``toJson``
filter (``ToJsonFilter``), a map printed by ``{{ }}`` (``JsonWriter``) and a flow's outputs
(``FlowInputOutput.typedOutputs`` → ``JacksonMapper.toMap``) all go through it. Task outputs are
the exception: ``TaskRun.outputs`` is annotated ``@JsonInclude(ALWAYS)`` and keeps its nulls.

Numbers print as Java does: a double with ``Double.toString`` (``1.0``, ``1.0E-4``), a FLOAT
input or output is a 32-bit ``Float`` (``Float.valueOf`` then ``Float.toString``).
"""

from __future__ import annotations

import json
import math
import struct
from decimal import Decimal
from typing import Any


def without_nulls(value: Any) -> Any:
    """``value`` as Kestra's mapper writes it: null map values dropped at every depth."""
    if isinstance(value, dict):
        return {str(k): without_nulls(v) for k, v in value.items() if v is not None}
    if isinstance(value, list | tuple):
        return [without_nulls(v) for v in value]
    return value


def to_json(value: Any) -> str:
    """``JacksonMapper.ofJson().writeValueAsString(value)``: compact, UTF-8, NON_NULL."""
    return json.dumps(without_nulls(value), separators=(",", ":"), ensure_ascii=False, allow_nan=False)


def java_double(value: float) -> str:
    """Java's ``Double.toString``: plain between 10^-3 and 10^7 (always a decimal point), else
    computerized scientific notation (``1.0E-4``, ``1.2345E7``)."""
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "Infinity" if value > 0 else "-Infinity"
    if value == 0:
        return "-0.0" if math.copysign(1.0, value) < 0 else "0.0"
    if 1e-3 <= abs(value) < 1e7:
        text = repr(value)  # Python's shortest round-trip form, plain in this range
        return text if "." in text else f"{text}.0"
    sign, digits, exponent = Decimal(repr(value)).as_tuple()
    significant = "".join(map(str, digits)).rstrip("0") or "0"
    scientific = int(exponent) + len(digits) - 1
    return f"{'-' if sign else ''}{significant[0]}.{significant[1:] or '0'}E{scientific}"


def java_float(value: float) -> float:
    """The value a Java ``Float`` holds and prints (``Float.toString``): rounded to 32 bits and
    read back through its shortest decimal form, as Jackson writes it."""
    if math.isnan(value) or math.isinf(value):
        return value
    f32 = struct.unpack("f", struct.pack("f", value))[0]
    for digits in range(1, 10):
        text = f"{f32:.{digits}g}"
        if struct.unpack("f", struct.pack("f", float(text)))[0] == f32:
            return float(text)
    return f32
