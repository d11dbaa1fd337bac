"""Probes: the trusted functions that call exercise code and collect what to compare.

A probe runs twice with the same arguments: in the worker on the student's module and in the
grader on the reference (or a known-mistake variant of it). It returns plain data, which
`sanitize` turns into tensors, numbers, strings and containers only. Probes are deterministic:
any randomness (the upstream gradients, say) comes from a generator seeded by the arguments.

Exercise-specific probes live in `grader/checks/<name>.py` and are named "module:function";
`preload` imports them all before the worker's sandbox closes the grader's files.
"""

from __future__ import annotations

import contextlib
import importlib
import numbers
import pkgutil
from types import ModuleType
from typing import Any, Iterator

import torch

from grader.runner.protocol import carried

PROBE_PACKAGE = "grader.checks"  # where "module:function" probes live
TENSOR_KEY = "__tensor__"
UNSUPPORTED_KEY = "__unsupported__"


def _not_carried(obj: torch.Tensor, plain: torch.Tensor) -> str:
    """What `plain` (`obj` detached) is, for a tensor that `protocol.carried` refuses."""
    if type(plain) is not torch.Tensor:
        return f"tensor subclass {type(obj).__qualname__}"
    if plain.layout != torch.strided:
        return f"{str(plain.layout).removeprefix('torch.')} tensor (not a dense one)"
    return f"tensor of dtype {plain.dtype}"


def sanitize(obj: Any, depth: int = 0) -> Any:
    """`obj` as plain data: tensors the wire carries (`protocol.carried`: plain, dense, of
    `protocol.TENSOR_DTYPES`) become {TENSOR_KEY: cpu tensor, "device": str}; numbers are kept by
    value (a numpy scalar or a float subclass becomes a Python int, float or bool); anything that
    is not such a tensor, a number, a string, None or a container of them becomes
    {UNSUPPORTED_KEY: what it is}."""
    if depth > 20:
        return {UNSUPPORTED_KEY: "structure nested too deeply"}
    if isinstance(obj, torch.Tensor):
        plain = obj.detach()
        if not carried(plain):
            return {UNSUPPORTED_KEY: _not_carried(obj, plain)}
        return {TENSOR_KEY: plain.to("cpu", copy=True), "device": str(plain.device)}
    if obj is None or type(obj) in (bool, int, float, str):
        return obj
    if isinstance(obj, numbers.Integral):
        return int(obj)
    if isinstance(obj, numbers.Real):
        return float(obj)
    if type(obj).__module__ == "numpy" and type(obj).__name__ in ("bool", "bool_"):
        return bool(obj)
    if type(obj) in (tuple, list):
        return type(obj)(sanitize(v, depth + 1) for v in obj)
    if type(obj) is dict and all(type(k) is str for k in obj):
        return {k: sanitize(v, depth + 1) for k, v in obj.items()}
    return {UNSUPPORTED_KEY: f"{type(obj).__module__}.{type(obj).__qualname__}"}


def resolve(name: str) -> Any:
    """The probe function called `name` ("call", or "package.module:function")."""
    if ":" in name:
        module_name, _, attr = name.partition(":")
        return getattr(importlib.import_module(module_name), attr)
    return globals()[name]


def preload() -> None:
    """Import every module a probe name can point to, so that resolving one never reads a file."""
    package = importlib.import_module(PROBE_PACKAGE)
    for info in pkgutil.iter_modules(package.__path__):
        importlib.import_module(f"{PROBE_PACKAGE}.{info.name}")


def _to_device(value: Any, device: str) -> Any:
    if isinstance(value, torch.Tensor):
        return value.to(device)
    if isinstance(value, (tuple, list)):
        return type(value)(_to_device(v, device) for v in value)
    if isinstance(value, dict):
        return {k: _to_device(v, device) for k, v in value.items()}
    return value


def _flat_tensors(value: Any) -> list[torch.Tensor]:
    if isinstance(value, torch.Tensor):
        return [value]
    if isinstance(value, (tuple, list)):
        return [t for v in value for t in _flat_tensors(v)]
    if isinstance(value, dict):
        return [t for v in value.values() for t in _flat_tensors(v)]
    return []


def _backward(outputs: Any, inputs: dict[str, torch.Tensor], seed: int) -> dict[str, Any]:
    """Gradients of a seeded random projection of `outputs` w.r.t. `inputs` (None where unused)."""
    outs = [t for t in _flat_tensors(outputs) if t.requires_grad and t.is_floating_point()]
    if not outs or not inputs:
        return {name: None for name in inputs}
    gen = torch.Generator().manual_seed(seed)
    grad_outs = [torch.randn(t.shape, generator=gen, dtype=t.dtype).to(t.device) for t in outs]
    names = list(inputs)
    # One scalar (a seeded projection of every output) rather than explicit grad_outputs: same
    # gradients, and it avoids a lazy import that costs half a second on first use.
    projection = sum((o * g).sum() for o, g in zip(outs, grad_outs))
    grads = torch.autograd.grad(projection, [inputs[n] for n in names], allow_unused=True)
    return dict(zip(names, grads))


def _grad_leaf(t: torch.Tensor) -> torch.Tensor:
    return t.detach().clone().requires_grad_(True)


def call(mod: Any, fn: str, *args: Any, grad: bool = False, device: str = "cpu", seed: int = 0, **kwargs: Any) -> dict:
    """Call `mod.fn(*args, **kwargs)`; with `grad`, also the gradients w.r.t. floating tensor args.

    Returns {"out": ..., "args_after": [tensor args after the call], "grads": {"argI": ...}}.
    """
    args = [_to_device(a, device) for a in args]
    kwargs = {k: _to_device(v, device) for k, v in kwargs.items()}
    leaves: dict[str, torch.Tensor] = {}
    if grad:
        for i, a in enumerate(args):
            if isinstance(a, torch.Tensor) and a.is_floating_point():
                args[i] = leaves[f"arg{i}"] = _grad_leaf(a)
        for k, v in kwargs.items():
            if isinstance(v, torch.Tensor) and v.is_floating_point():
                kwargs[k] = leaves[k] = _grad_leaf(v)
    out = getattr(mod, fn)(*args, **kwargs)
    result: dict[str, Any] = {"out": out}
    result["args_after"] = [a.detach() if isinstance(a, torch.Tensor) else None for a in args]
    if grad:
        result["grads"] = _backward(out, leaves, seed)
    return result


def has_lazy_parameters(net: torch.nn.Module) -> bool:
    """Whether `net` still holds parameters or buffers of a lazy module (`nn.LazyConv2d`...)."""
    from torch.nn.parameter import is_lazy

    return any(is_lazy(t) for t in (*net.parameters(), *net.buffers()))


def materialize(net: torch.nn.Module, method: str, inputs: Any) -> None:
    """Give a lazy module its parameters' shapes with one forward pass on `inputs`, as lazy
    modules expect (their shapes are unknown until they see an input); nothing else changes
    what is graded: the weights are loaded or counted afterwards."""
    if not has_lazy_parameters(net):
        return
    dtype = torch.get_default_dtype()
    inputs = [x.to(dtype) if isinstance(x, torch.Tensor) and x.is_floating_point() else x for x in inputs]
    with torch.no_grad():
        getattr(net, method)(*inputs)


@contextlib.contextmanager
def trusted_parts(mod: Any, trusted: dict[str, str] | None) -> Iterator[None]:
    """For the duration of the block, the names of `trusted` in module `mod` are the grader's own
    versions ("package.module:function"), so that a check of one part does not depend on another
    part of the submission (say GAPClassifier on the student's global_avg_pool)."""
    if not trusted or not isinstance(mod, ModuleType):
        yield
        return
    saved = {name: mod.__dict__[name] for name in trusted if name in mod.__dict__}
    try:
        for name, where in trusted.items():
            setattr(mod, name, resolve(where))
        yield
    finally:
        for name in trusted:
            if name in saved:
                setattr(mod, name, saved[name])
            else:
                mod.__dict__.pop(name, None)


def module(
    mod: Any,
    cls: str,
    init_args: tuple = (),
    inputs: tuple = (),
    state_dict: dict | None = None,
    method: str = "forward",
    grad: bool = False,
    device: str = "cpu",
    seed: int = 0,
    init_kwargs: dict | None = None,
    trusted: dict[str, str] | None = None,
) -> dict:
    """Build `mod.cls(*init_args)`, load `state_dict`, call `method(*inputs)`.

    When the module's state_dict keys or shapes differ from `state_dict`, returns only
    {"state_dict_shapes": {key: shape}} for the grader to explain. With `grad`, returns gradients
    w.r.t. floating inputs ("inputI") and parameters ("param:NAME"). Lazy modules get their
    shapes from one forward pass on `inputs` first. `trusted` replaces other parts of the module
    by the grader's versions during the call (see `trusted_parts`).
    """
    with trusted_parts(mod, trusted):
        return _module(mod, cls, init_args, inputs, state_dict, method, grad, device, seed, init_kwargs)


def _module(mod: Any, cls: str, init_args: tuple, inputs: tuple, state_dict: dict | None, method: str,
            grad: bool, device: str, seed: int, init_kwargs: dict | None) -> dict:
    net = getattr(mod, cls)(*init_args, **(init_kwargs or {}))
    materialize(net, method, inputs)
    if state_dict is not None:
        own = {k: list(v.shape) for k, v in net.state_dict().items()}
        if own != {k: list(v.shape) for k, v in state_dict.items()}:
            return {"state_dict_shapes": own}
        floats = [v for v in state_dict.values() if v.is_floating_point()]
        if floats:
            net = net.to(floats[0].dtype)  # float64 weights stay float64
        net.load_state_dict(state_dict)
    net = net.to(device)
    inputs = [_to_device(x, device) for x in inputs]
    leaves: dict[str, torch.Tensor] = {}
    if grad:
        for i, x in enumerate(inputs):
            if isinstance(x, torch.Tensor) and x.is_floating_point():
                inputs[i] = leaves[f"input{i}"] = _grad_leaf(x)
        for name, p in net.named_parameters():
            leaves[f"param:{name}"] = p
    out = getattr(net, method)(*inputs)
    result: dict[str, Any] = {"out": out}
    if grad:
        result["grads"] = _backward(out, leaves, seed)
    return result
