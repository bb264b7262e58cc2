"""Open Inference Protocol v2 messages: requests in JSON or binary, one column per input.

A request is the protocol's JSON object; with Triton's binary tensor extension (the default
of ``tritonclient``) the ``Inference-Header-Content-Length`` header says where the JSON
ends and each input's ``parameters.binary_data_size`` how many of the following bytes are
its data (numbers little-endian, ``BYTES`` as a 4-byte little-endian length then the
bytes). Answers are always JSON, which every v2 client reads. Every problem is a 400.
"""

from __future__ import annotations

import numpy as np
import orjson
from pydantic import BaseModel

from app.errors import ApiError

DATATYPES = {"int": "INT64", "float": "FP64", "category": "BYTES"}  # contract type -> v2
_NUMPY = {"BOOL": "?", "UINT8": "<u1", "UINT16": "<u2", "UINT32": "<u4", "UINT64": "<u8",
          "INT8": "<i1", "INT16": "<i2", "INT32": "<i4", "INT64": "<i8", "FP16": "<f2",
          "FP32": "<f4", "FP64": "<f8"}
HEADER_LENGTH = "Inference-Header-Content-Length"


class TensorIn(BaseModel):
    """An input tensor (``data`` flat or nested; absent with binary data)."""

    name: str
    shape: list[int]
    datatype: str
    parameters: dict | None = None
    data: list | None = None


class InferIn(BaseModel):
    """An inference request."""

    id: str | None = None
    parameters: dict | None = None
    inputs: list[TensorIn]
    outputs: list[dict] | None = None


class TensorMeta(BaseModel):
    """A metadata tensor."""

    name: str
    datatype: str
    shape: list[int]


class ModelMeta(BaseModel):
    """Model metadata."""

    name: str
    versions: list[str]
    platform: str
    inputs: list[TensorMeta]
    outputs: list[TensorMeta]


class TensorOut(TensorMeta):
    """An output tensor."""

    data: list


class InferOut(BaseModel):
    """An inference response."""

    model_name: str
    model_version: str
    id: str | None = None
    parameters: dict
    outputs: list[TensorOut]


def bad(message: str) -> ApiError:
    """The protocol's error for a bad request."""
    return ApiError(400, message)


def read_request(raw: bytes, header_length: str | None) -> dict:
    """The inference request object, binary input data decoded into each input's ``data``.

    Args:
        raw: the request body.
        header_length: the ``Inference-Header-Content-Length`` header (None: all JSON).

    Returns:
        The request object.
    """
    size = len(raw)
    if header_length is not None:
        try:
            size = int(header_length)
        except ValueError:
            raise bad(f"{HEADER_LENGTH} must be an integer") from None
        if not 0 <= size <= len(raw):
            raise bad(f"{HEADER_LENGTH} is outside the body")
    try:
        body = orjson.loads(raw[:size])
    except orjson.JSONDecodeError:
        raise bad("malformed JSON inference request") from None
    if not isinstance(body, dict) or not isinstance(body.get("inputs"), list):
        raise bad("the inference request must be an object with an 'inputs' list")
    if not all(isinstance(t, dict) for t in body["inputs"]):
        raise bad("every input tensor must be an object")
    rest = memoryview(raw)[size:]
    for tensor in body["inputs"]:
        length = (tensor.get("parameters") or {}).get("binary_data_size")
        if length is None:
            continue
        if type(length) is not int or not 0 <= length <= len(rest):
            raise bad(f"input '{tensor.get('name')}': binary_data_size is outside the body")
        tensor["data"] = _binary(bytes(rest[:length]), tensor.get("datatype"), tensor.get("name"))
        rest = rest[length:]
    if len(rest):
        raise bad("the body holds more binary data than the inputs' binary_data_size")
    return body


def _binary(chunk: bytes, datatype, name) -> list:
    """One input's binary data as a flat list of values."""
    if datatype == "BYTES":
        values, at = [], 0
        while at < len(chunk):
            if at + 4 > len(chunk):
                raise bad(f"input '{name}': truncated BYTES element")
            length = int.from_bytes(chunk[at:at + 4], "little")
            if at + 4 + length > len(chunk):
                raise bad(f"input '{name}': truncated BYTES element")
            try:
                values.append(chunk[at + 4:at + 4 + length].decode("utf-8"))
            except UnicodeDecodeError:
                raise bad(f"input '{name}': BYTES elements must be UTF-8 text") from None
            at += 4 + length
        return values
    if datatype not in _NUMPY:
        raise bad(f"input '{name}': unknown datatype {datatype!r}")
    dtype = np.dtype(_NUMPY[datatype])
    if len(chunk) % dtype.itemsize:
        raise bad(f"input '{name}': binary data is not a whole number of {datatype}")
    return np.frombuffer(chunk, dtype=dtype).tolist()


def _flat(data) -> list:
    """Row-major elements of nested or flat JSON data."""
    if not isinstance(data, list):
        return [data]
    if not any(isinstance(v, list) for v in data):
        return data
    out = []
    for item in data:
        out.extend(_flat(item))
    return out


def _rows(tensor: dict, name: str) -> int:
    """The number of rows a feature tensor holds: shape ``[n]`` or ``[n, 1]``."""
    shape = tensor.get("shape")
    if (not isinstance(shape, list) or not 1 <= len(shape) <= 2
            or not all(type(d) is int and d >= 0 for d in shape)
            or (len(shape) == 2 and shape[1] != 1)):
        raise bad(f"input '{name}': shape must be [n] or [n, 1], one element per row")
    return shape[0]


def columns(inputs: list, expected: dict[str, str], optional: dict[str, set]) -> dict:
    """The request's inputs as one column (list of values) per name.

    Args:
        inputs: the request's input tensors (``read_request``).
        expected: required input name -> its datatype.
        optional: optional input name (routing key, ids) -> the datatypes it may have.

    Returns:
        Input name -> values, every column as long as the others.
    """
    out, rows = {}, set()
    for tensor in inputs:
        name = tensor.get("name")
        allowed = {expected[name]} if name in expected else optional.get(name)
        if allowed is None:
            raise bad(f"unexpected input {name!r}: see the model metadata for the inputs")
        if name in out:
            raise bad(f"input '{name}' is given twice")
        if tensor.get("datatype") not in allowed:
            raise bad(f"input '{name}' has datatype {tensor.get('datatype')!r}, expected "
                      + " or ".join(sorted(allowed)))
        if "data" not in tensor:
            raise bad(f"input '{name}' has no data")
        values, n = _flat(tensor["data"]), _rows(tensor, name)
        if len(values) != n:
            raise bad(f"input '{name}': shape says {n} elements, data holds {len(values)}")
        out[name] = values
        rows.add(n)
    missing = [name for name in expected if name not in out]
    if missing:
        raise bad(f"missing input tensors: {', '.join(missing)}")
    if len(rows) > 1:
        raise bad("every input must hold the same number of rows")
    return out


def tensor_meta(name: str, datatype: str) -> dict:
    """A metadata tensor: one element per row."""
    return {"name": name, "datatype": datatype, "shape": [-1]}


def output(name: str, datatype: str, values: list) -> dict:
    """A response output tensor (JSON data, one element per row)."""
    return {"name": name, "datatype": datatype, "shape": [len(values)], "data": values}
