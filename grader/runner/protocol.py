"""The message format between the grader and its worker.

Both directions use length-prefixed frames on a pipe. Requests (grader -> worker) are pickles:
the worker trusts the grader. Replies (worker -> grader) are `torch.save` payloads that the grader
reads with `torch.load(weights_only=True)`, which refuses anything but tensors, numbers, strings
and containers of them, so no object the student returns can run code in the grader.
"""

from __future__ import annotations

import io
import os
import pickle
import struct
from typing import Any

_HEADER = struct.Struct("<4sQ")
_MAGIC = b"CNNG"
MAX_REPLY_BYTES = 256 * 1024 * 1024  # a reply larger than this is a protocol error


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


def encode_request(request: dict[str, Any]) -> bytes:
    return pickle.dumps(request, protocol=pickle.HIGHEST_PROTOCOL)


def decode_request(payload: bytes) -> dict[str, Any]:
    return pickle.loads(payload)


def encode_reply(reply: dict[str, Any]) -> bytes:
    import torch

    buffer = io.BytesIO()
    torch.save(reply, buffer)
    return buffer.getvalue()


def decode_reply(payload: bytes) -> dict[str, Any]:
    """Decode a worker's reply safely; raises `ProtocolError` for anything not plain data."""
    import torch

    try:
        reply = torch.load(io.BytesIO(payload), weights_only=True, map_location="cpu")
    except Exception as exc:  # noqa: BLE001 - any failure means the reply is not trustworthy data
        raise ProtocolError(f"the worker's reply is not plain data ({type(exc).__name__})") from None
    if not isinstance(reply, dict) or not isinstance(reply.get("kind"), str):
        raise ProtocolError("the worker's reply has no 'kind'")
    return reply
