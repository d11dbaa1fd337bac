"""The message format between the grader and its worker.

Both directions use length-prefixed frames on a pipe. Requests (grader -> worker) are pickles
(the worker trusts the grader), their tensors written as raw bytes. Replies (worker -> grader)
are plain data in a format of our own that the grader parses without running anything the
worker sent: a JSON document (every list, tuple and dict tagged with its kind; tensors as
references) followed by the raw bytes of every tensor. `decode_reply` checks each tensor's dtype
against `TENSOR_DTYPES` and its byte count against its shape, so a reply the student's code
forged is refused (`ProtocolError`), never executed. (`torch.load(weights_only=True)` gave the
same guarantee at ten times the cost: 0.3 ms of CPU a reply against 0.02 ms, on a re-grade of
fifty cases in `grade watch`.)
"""

from __future__ import annotations

import io
import json
import os
import pickle
import struct
from typing import Any

_HEADER = struct.Struct("<4sQ")
_MAGIC = b"CNNG"
MAX_REPLY_BYTES = 256 * 1024 * 1024  # a reply larger than this is a protocol error
_DOCUMENT = struct.Struct("<Q")  # a reply: the JSON document's length, the document, the tensors' bytes
_MAX_DEPTH = 64  # nesting of a reply's document (the worker's `sanitize` stops at 20)

# The dtypes a reply may carry (whole bytes per element); a tensor of another dtype (sub-byte,
# quantized) is not plain data (`probes.sanitize` marks it unsupported).
TENSOR_DTYPES = frozenset({
    "bool", "uint8", "int8", "int16", "int32", "int64", "uint16", "uint32", "uint64",
    "float16", "bfloat16", "float32", "float64", "complex32", "complex64", "complex128",
    "float8_e4m3fn", "float8_e4m3fnuz", "float8_e5m2", "float8_e5m2fnuz", "float8_e8m0fnu",
})


class ProtocolError(Exception):
    """The channel broke or carried something that is not a valid frame."""


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        n = os.write(fd, view)
        view = view[n:]


def _read_exact(fd: int, n: int) -> bytes:
    chunks = []
    while n:
        chunk = os.read(fd, min(n, 1 << 20))
        if not chunk:
            raise ProtocolError("the channel closed mid-frame")
        chunks.append(chunk)
        n -= len(chunk)
    return b"".join(chunks)


def frame(payload: bytes) -> bytes:
    """One frame: the header (magic and length) followed by `payload`."""
    return _HEADER.pack(_MAGIC, len(payload)) + payload


def write_frame(fd: int, payload: bytes) -> None:
    _write_all(fd, frame(payload))


def read_frame(fd: int, limit: int = MAX_REPLY_BYTES) -> bytes:
    """Read one frame; raises `EOFError` on a clean close before a frame, `ProtocolError` on garbage."""
    first = os.read(fd, _HEADER.size)
    if not first:
        raise EOFError
    header = first if len(first) == _HEADER.size else first + _read_exact(fd, _HEADER.size - len(first))
    magic, length = _HEADER.unpack(header)
    if magic != _MAGIC or length > limit:
        raise ProtocolError(f"bad frame header (magic {magic!r}, length {length})")
    return _read_exact(fd, length)


class _RequestPickler(pickle.Pickler):
    """A pickler that writes a plain tensor as its dtype, shape and bytes (rebuilt by
    `_tensor_from_bytes`): torch's own reduction costs the worker a third of a millisecond per
    request to read back. Tensors that share storage arrive as separate copies."""

    def reducer_override(self, obj: Any) -> Any:
        if not carried(obj) or obj.device.type != "cpu" or (obj.requires_grad and not obj.is_leaf):
            return NotImplemented
        return _tensor_from_bytes, (_dtype_name(obj.dtype), tuple(obj.shape), _raw_bytes(obj), obj.requires_grad)


def carried(value: Any) -> bool:
    """Whether `value` is a tensor the wire carries as raw bytes: a plain, dense tensor of one of
    `TENSOR_DTYPES`."""
    import torch

    return type(value) is torch.Tensor and value.layout == torch.strided and _dtype_name(value.dtype) in TENSOR_DTYPES


def _raw_bytes(tensor: Any) -> bytes:
    """The elements of a `carried` tensor as bytes, in row-major order, on the CPU (a lazy
    conjugate or negation applied)."""
    import torch

    flat = tensor.detach().to("cpu").resolve_conj().resolve_neg().contiguous().reshape(-1)
    return flat.view(torch.uint8).numpy().tobytes() if flat.numel() else b""


def _tensor_from_bytes(dtype_name: str, shape: tuple[int, ...], data: bytes, requires_grad: bool) -> Any:
    import torch

    dtype = getattr(torch, dtype_name)
    tensor = (torch.frombuffer(bytearray(data), dtype=torch.uint8).view(dtype) if data else torch.empty(0, dtype=dtype))
    return tensor.reshape(shape).requires_grad_(requires_grad)


def encode_request(request: dict[str, Any]) -> bytes:
    buffer = io.BytesIO()
    _RequestPickler(buffer, protocol=pickle.HIGHEST_PROTOCOL).dump(request)
    return buffer.getvalue()


def decode_request(payload: bytes) -> dict[str, Any]:
    return pickle.loads(payload)


def encode_reply(reply: dict[str, Any]) -> bytes:
    """A reply of plain data (None, bool, int, float, str, lists, tuples, dicts with str keys,
    dense tensors of `TENSOR_DTYPES`) as bytes; raises `TypeError` for anything else."""
    blobs: list[bytes] = []
    offset = 0

    def tagged(value: Any, depth: int) -> Any:
        nonlocal offset
        if depth > _MAX_DEPTH:
            raise TypeError("the reply is nested too deeply")
        if value is None or type(value) in (bool, int, float, str):
            return value
        if type(value) in (list, tuple):
            return ["l" if type(value) is list else "t", [tagged(v, depth + 1) for v in value]]
        if type(value) is dict:
            if not all(type(k) is str for k in value):
                raise TypeError("a dict in the reply has keys that are not strings")
            return ["d", {k: tagged(v, depth + 1) for k, v in value.items()}]
        if carried(value):
            data = _raw_bytes(value)
            blobs.append(data)
            offset += len(data)
            return ["T", _dtype_name(value.dtype), list(value.shape), offset - len(data), len(data)]
        raise TypeError(f"{type(value).__qualname__} is not plain data")

    document = json.dumps(tagged(reply, 0), separators=(",", ":")).encode()
    return _DOCUMENT.pack(len(document)) + document + b"".join(blobs)


def _dtype_name(dtype: Any) -> str:
    return str(dtype).removeprefix("torch.")


def decode_reply(payload: bytes) -> dict[str, Any]:
    """Decode a worker's reply; raises `ProtocolError` for anything that is not plain data in the
    format `encode_reply` writes."""
    try:
        reply = _decode(payload)
    except ProtocolError:
        raise
    except (ValueError, TypeError, KeyError, IndexError, RecursionError, OverflowError, RuntimeError, struct.error) as exc:
        raise ProtocolError(f"the worker's reply is not plain data ({type(exc).__name__})") from None
    if not isinstance(reply, dict) or not isinstance(reply.get("kind"), str):
        raise ProtocolError("the worker's reply has no 'kind'")
    return reply


def _decode(payload: bytes) -> Any:
    import torch

    (length,) = _DOCUMENT.unpack_from(payload)
    start = _DOCUMENT.size + length
    if start > len(payload):
        raise ProtocolError("the worker's reply is not plain data (its document is cut short)")
    document = json.loads(payload[_DOCUMENT.size:start])
    tensors = memoryview(payload)[start:]

    def tensor(dtype_name: Any, shape: Any, offset: Any, size: Any) -> torch.Tensor:
        if dtype_name not in TENSOR_DTYPES or not isinstance(shape, list) or len(shape) > 64:
            raise ProtocolError(f"the worker's reply is not plain data (a tensor of dtype {str(dtype_name)[:40]!r})")
        if not all(type(n) is int and n >= 0 for n in (*shape, offset, size)):
            raise ProtocolError("the worker's reply is not plain data (a tensor's shape or place is not a count)")
        dtype = getattr(torch, dtype_name)
        numel = 1
        for n in shape:
            numel *= n
        if numel * dtype.itemsize != size or offset + size > len(tensors):
            raise ProtocolError("the worker's reply is not plain data (a tensor's bytes do not match its shape)")
        if size == 0:
            return torch.empty(shape, dtype=dtype)
        raw = torch.frombuffer(bytearray(tensors[offset:offset + size]), dtype=torch.uint8)
        if dtype == torch.bool:  # any byte but 0 and 1 would be an invalid bool
            return (raw != 0).reshape(shape)
        return raw.view(dtype).reshape(shape)

    def plain(value: Any, depth: int) -> Any:
        if depth > _MAX_DEPTH:
            raise ProtocolError("the worker's reply is not plain data (nested too deeply)")
        if value is None or type(value) in (bool, int, float, str):
            return value
        if type(value) is list and len(value) == 2:
            tag, body = value
            if tag in ("l", "t") and type(body) is list:
                items = [plain(v, depth + 1) for v in body]
                return items if tag == "l" else tuple(items)
            if tag == "d" and type(body) is dict:
                return {k: plain(v, depth + 1) for k, v in body.items()}
        if type(value) is list and len(value) == 5 and value[0] == "T":
            return tensor(*value[1:])
        raise ProtocolError("the worker's reply is not plain data (an unknown element)")

    return plain(document, 0)
