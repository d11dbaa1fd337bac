"""The worker loads a student's module the way Python's import system does (issue 13 item 1).

Code that looks its own module up in `sys.modules` while the module is being executed must
import: a `@dataclass` whose annotations are postponed strings, or a `@torch.jit.script` class.
"""

from __future__ import annotations

from conftest import variant

_MAX_HEAD = '    kh, kw = _pair(kernel_size, "kernel_size")\n    sh, sw = _pair(kernel_size if stride is None else stride, "stride")\n    if kh > x.shape[-2]'


def test_dataclass_with_postponed_annotations_gets_full_marks(grade):
    # The stubs' own first line is `from __future__ import annotations`: dataclasses then resolve
    # the string annotations through sys.modules[cls.__module__].
    src = variant("pooling",
                  ("import torch\n", "from dataclasses import dataclass\n\nimport torch\n\n\n"
                                     "@dataclass(frozen=True)\nclass _Window:\n    kh: int\n    kw: int\n    sh: int\n    sw: int\n"),
                  (_MAX_HEAD, '    window = _Window(*_pair(kernel_size, "kernel_size"), *_pair(kernel_size if stride is None else stride, "stride"))\n'
                              "    kh, kw, sh, sw = window.kh, window.kw, window.sh, window.sw\n    if kh > x.shape[-2]"))
    assert "from __future__ import annotations" in src
    result = grade("pooling", source=src)
    assert result["score"] == result["max_score"], [c["message"] for c in result["checks"] if c["status"] != "passed"]


def test_torch_jit_script_class_gets_full_marks(grade):
    # TorchScript reads the class's source through inspect, which finds the file via sys.modules.
    src = variant("pooling",
                  ("import torch\n", "import torch\n\n\n@torch.jit.script\nclass _Size:\n"
                                     "    def __init__(self, h: int, w: int):\n        self.h = h\n        self.w = w\n"),
                  (_MAX_HEAD, '    kh, kw = _pair(kernel_size, "kernel_size")\n    sh, sw = _pair(kernel_size if stride is None else stride, "stride")\n'
                              "    size = _Size(x.shape[-2], x.shape[-1])\n    if kh > size.h"))
    result = grade("pooling", source=src)
    assert result["score"] == result["max_score"], [c["message"] for c in result["checks"] if c["status"] != "passed"]
