"""`grader.runner.protocol`, the trust boundary between the grader and the worker: frames and
their limits, garbage, and replies that try to run code in the grader."""

from __future__ import annotations

import io
import json
import math
import os
import pickle
import struct
import threading
import time

import pytest
import torch

from conftest import variant
from grader.runner import protocol
from grader.runner.protocol import ProtocolError


@pytest.fixture
def pipe():
    r, w = os.pipe()
    yield r, w
    for fd in (r, w):
        try:
            os.close(fd)
        except OSError:
            pass


def test_a_frame_round_trips(pipe):
    r, w = pipe
    for payload in (b"", b"x", os.urandom(70_000)):
        threading.Thread(target=protocol.write_frame, args=(w, payload)).start()  # larger than the pipe buffer
        assert protocol.read_frame(r) == payload


def test_a_header_split_across_writes_is_read_whole(pipe):
    r, w = pipe
    data = protocol.frame(b"payload")

    def slowly() -> None:
        for i in range(len(data)):
            os.write(w, data[i:i + 1])
            time.sleep(0.001)

    threading.Thread(target=slowly).start()
    assert protocol.read_frame(r) == b"payload"


def test_a_clean_close_before_a_frame_is_eof(pipe):
    r, w = pipe
    os.close(w)
    with pytest.raises(EOFError):
        protocol.read_frame(r)


def test_a_channel_closed_mid_frame_is_a_protocol_error(pipe):
    r, w = pipe
    os.write(w, protocol.frame(b"0123456789")[:-4])
    os.close(w)
    with pytest.raises(ProtocolError, match="mid-frame"):
        protocol.read_frame(r)


def test_garbage_is_refused(pipe):
    r, w = pipe
    os.write(w, b"\x00garbage that is no frame at all")
    with pytest.raises(ProtocolError, match="bad frame header"):
        protocol.read_frame(r)


def test_a_length_over_the_limit_is_refused_before_reading_it(pipe):
    r, w = pipe
    os.write(w, struct.pack("<4sQ", b"CNNG", 1 << 40))  # announces a terabyte, sends nothing
    with pytest.raises(ProtocolError, match="length"):
        protocol.read_frame(r)
    os.write(w, protocol.frame(b"x" * 100))
    with pytest.raises(ProtocolError):
        protocol.read_frame(r, limit=99)


def test_requests_round_trip():
    leaf = torch.randn(3, 2, dtype=torch.float64).t().requires_grad_()  # a transposed leaf that needs gradients
    param = torch.nn.Parameter(torch.ones(2))  # not a plain tensor: pickled as torch does
    request = {"op": "run", "probe": "call", "args": ("f", torch.ones(2), leaf, param, leaf, torch.zeros(0, 4, dtype=torch.int64)),
               "kwargs": {"device": "cpu", "mask": torch.tensor([True, False])}}
    decoded = protocol.decode_request(protocol.encode_request(request))
    _, ones, got_leaf, got_param, again, empty = decoded["args"]
    assert decoded["op"] == "run" and torch.equal(ones, torch.ones(2))
    assert got_leaf.requires_grad and got_leaf.dtype == torch.float64 and torch.equal(got_leaf, leaf) and again is got_leaf
    assert type(got_param) is torch.nn.Parameter and empty.shape == (0, 4) and empty.dtype == torch.int64
    assert torch.equal(decoded["kwargs"]["mask"], torch.tensor([True, False]))


def test_plain_replies_round_trip():
    reply = {"kind": "ok", "value": {"out": {"__tensor__": torch.arange(6.0).view(2, 3), "device": "cpu"},
                                     "items": [1, 2.5, "three", None, True, (4, 5), [(6,)], {"k": -0.0}]}}
    decoded = protocol.decode_reply(protocol.encode_reply(reply))
    assert torch.equal(decoded["value"]["out"]["__tensor__"], torch.arange(6.0).view(2, 3))
    assert decoded["value"]["items"] == [1, 2.5, "three", None, True, (4, 5), [(6,)], {"k": -0.0}]
    assert type(decoded["value"]["items"][5]) is tuple and type(decoded["value"]["items"][6]) is list
    assert math.copysign(1.0, decoded["value"]["items"][7]["k"]) == -1.0


@pytest.mark.parametrize("tensor", [
    torch.tensor([[1.5, float("nan")], [float("inf"), -0.0]], dtype=torch.float64),
    torch.arange(12, dtype=torch.float32).view(3, 4).t(),  # not contiguous
    torch.tensor(3.25, dtype=torch.bfloat16),  # no dimension
    torch.zeros(0, 3, dtype=torch.float16),  # no element
    torch.tensor([True, False, True]),
    torch.tensor([1 + 2j, -3j], dtype=torch.complex64).conj(),  # a lazy conjugate
    torch.tensor([-(2 ** 63), 2 ** 63 - 1], dtype=torch.int64),
    torch.arange(5, dtype=torch.uint8),
], ids=["float64 nan inf", "transposed", "0-d bfloat16", "empty", "bool", "conj complex", "int64 limits", "uint8"])
def test_tensors_come_back_with_their_dtype_shape_and_bits(tensor):
    got = protocol.decode_reply(protocol.encode_reply({"kind": "ok", "t": tensor}))["t"]
    assert got.dtype == tensor.dtype and got.shape == tensor.shape
    assert torch.equal(got.resolve_conj().view(-1).view(torch.uint8) if got.numel() else got,
                       tensor.resolve_conj().contiguous().view(-1).view(torch.uint8) if tensor.numel() else tensor)


def test_what_is_not_plain_data_cannot_be_sent():
    for value in (object(), {1: "key not text"}, torch.zeros(2).to_sparse(), torch.nn.Parameter(torch.zeros(2)),
                  torch.empty(2, dtype=torch.bits8)):
        with pytest.raises(TypeError):
            protocol.encode_reply({"kind": "ok", "value": value})


def _forged(document, tensors: bytes = b"") -> bytes:
    """A reply in the wire format with any document (JSON data, or its text as bytes): what a
    student's code could write into the reply channel."""
    text = document if isinstance(document, bytes) else json.dumps(document).encode()
    return struct.pack("<Q", len(text)) + text + tensors


@pytest.mark.parametrize("payload", [
    _forged(["d", {"kind": "ok", "t": ["T", "qint8", [2], 0, 2]}], b"\0\0"),  # a dtype that is not plain
    _forged(["d", {"kind": "ok", "t": ["T", "object", [1], 0, 8]}], b"\0" * 8),
    _forged(["d", {"kind": "ok", "t": ["T", "float32", [4], 0, 8]}], b"\0" * 8),  # fewer bytes than the shape needs
    _forged(["d", {"kind": "ok", "t": ["T", "float32", [2], 8, 8]}], b"\0" * 8),  # bytes past the end
    _forged(["d", {"kind": "ok", "t": ["T", "float32", [-2], 0, 0]}]),  # a negative size
    _forged(["d", {"kind": "ok", "t": ["T", "float32", [1.5], 0, 6]}], b"\0" * 6),  # a size that is not a count
    _forged(["d", {"kind": "ok", "x": ["exec", ["print('hi')"]]}]),  # an unknown element
    _forged(["d", {"kind": "ok", "x": [1, 2]}]),  # an untagged list
    _forged(b'["d", {"kind": "ok"'),  # not JSON
    _forged(["d", {"kind": "ok"}])[:-2],  # a document cut short
    _forged(b'["l", [' * 200 + b"]]" * 200),  # nested deeper than any reply
], ids=["qint8", "object dtype", "short bytes", "past the end", "negative", "not a count", "unknown tag",
        "untagged list", "not json", "cut short", "deep"])
def test_a_forged_reply_is_refused(payload):
    with pytest.raises(ProtocolError, match="not plain data"):
        protocol.decode_reply(payload)


def test_bool_bytes_other_than_0_and_1_become_true():
    got = protocol.decode_reply(_forged(["d", {"kind": "ok", "t": ["T", "bool", [3], 0, 3]}], bytes([0, 1, 200])))["t"]
    assert got.tolist() == [False, True, True]


class _Exploit:
    def __init__(self, marker: str) -> None:
        self.marker = marker

    def __reduce__(self):
        return (open, (self.marker, "w"))  # would create the marker file when unpickled


@pytest.mark.parametrize("make", [
    lambda m: _saved({"kind": "ok", "value": _Exploit(m)}),  # a torch.save payload holding an object
    lambda m: pickle.dumps({"kind": "ok", "value": _Exploit(m)}),  # a bare pickle
], ids=["torch-save", "pickle"])
def test_a_reply_that_would_run_code_is_refused_without_running_it(make, tmp_path):
    marker = tmp_path / "pwned"
    with pytest.raises(ProtocolError, match="not plain data"):
        protocol.decode_reply(make(str(marker)))
    assert not marker.exists()


def _saved(obj) -> bytes:
    buffer = io.BytesIO()
    torch.save(obj, buffer)
    return buffer.getvalue()


@pytest.mark.parametrize("payload", [b"", b"\x80\x04garbage", protocol.encode_reply([1, 2]),
                                     protocol.encode_reply({"value": 1}), protocol.encode_reply({"kind": 3})],
                         ids=["empty", "garbage", "a list", "no kind", "kind not text"])
def test_a_reply_that_is_not_a_reply_is_refused(payload):
    with pytest.raises(ProtocolError):
        protocol.decode_reply(payload)


def test_a_student_who_corrupts_the_reply_channel_costs_only_that_check(grade):
    """Student code writes garbage into every pipe it holds, the reply channel included: the check
    is reported as crashed, and the other checks run in a restarted worker."""
    ret = "    return windows.mean(dim=(-2, -1))  # (N, C, H_out, W_out)"
    src = variant("pooling", (ret, "    import os\n"
                                   "    for fd in map(int, os.listdir('/proc/self/fd')):\n"
                                   "        try:\n"
                                   "            if fd > 2 and os.readlink(f'/proc/self/fd/{fd}').startswith('pipe:'):\n"
                                   "                os.write(fd, b'\\x00garbage' * 8)\n"
                                   "        except OSError:\n"
                                   "            pass\n" + ret))
    result = grade("pooling", source=src)
    checks = {c["name"]: c for c in result["checks"]}
    assert checks["avg_pool2d_forward"]["status"] == "crashed"
    assert "corrupted" in checks["avg_pool2d_forward"]["message"]
    assert checks["max_pool2d_forward"]["status"] == checks["kernel_larger_than_input"]["status"] == "passed"


def test_results_the_wire_cannot_carry_are_named_not_lost():
    from grader.runner.probes import UNSUPPORTED_KEY, sanitize

    assert sanitize(torch.zeros(2).to_sparse()) == {UNSUPPORTED_KEY: "sparse_coo tensor (not a dense one)"}
    assert sanitize(torch.empty(2, dtype=torch.bits8)) == {UNSUPPORTED_KEY: "tensor of dtype torch.bits8"}
    reply = {"kind": "ok", "value": sanitize([torch.ones(2, dtype=torch.float16), torch.zeros(1).to_sparse()])}
    assert protocol.decode_reply(protocol.encode_reply(reply))["value"][1] == {UNSUPPORTED_KEY: "sparse_coo tensor (not a dense one)"}
