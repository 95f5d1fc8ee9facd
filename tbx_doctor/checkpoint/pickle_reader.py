"""A pickle reader that never executes pickled code, for torch.save checkpoints.

`torch.save` pickles the object tree and writes tensor bytes elsewhere (zip entries, or after the
pickle in the legacy format). The pickle names the callables that rebuild each object (GLOBAL /
STACK_GLOBAL / INST opcodes, all resolved through `find_class`). Here `find_class` never imports
anything: names on a small allow-list map to inert stand-ins defined in this module (a tensor
becomes a `TensorInfo` with dtype, shape and storage key, built from the rebuild arguments), and
every other name is recorded and answered with a stand-in that does nothing. So REDUCE, NEWOBJ,
OBJ, INST and BUILD can only ever call code from this module; no tensor data is read.
"""

from __future__ import annotations

import _compat_pickle
import collections
import math
import pickle
from dataclasses import dataclass
from typing import IO, Any

# Storage class name (torch.<Name>) -> (dtype name, bytes per element).
_STORAGE_DTYPES: dict[str, tuple[str, int]] = {
    "DoubleStorage": ("float64", 8),
    "FloatStorage": ("float32", 4),
    "HalfStorage": ("float16", 2),
    "BFloat16Storage": ("bfloat16", 2),
    "LongStorage": ("int64", 8),
    "IntStorage": ("int32", 4),
    "ShortStorage": ("int16", 2),
    "CharStorage": ("int8", 1),
    "ByteStorage": ("uint8", 1),
    "BoolStorage": ("bool", 1),
    "ComplexFloatStorage": ("complex64", 8),
    "ComplexDoubleStorage": ("complex128", 16),
    "UntypedStorage": ("uint8", 1),
}
_TORCH_DTYPE_NAMES = frozenset(
    {"float64", "float32", "float16", "bfloat16", "int64", "int32", "int16", "int8", "uint8"}
    | {"bool", "complex64", "complex128", "double", "float", "half", "long", "int", "short"}
)


@dataclass(frozen=True)
class StorageType:
    """Stand-in for a `torch.<Name>Storage` class named in a persistent id."""

    name: str


@dataclass(frozen=True)
class StorageRef:
    """A tensor storage as the pickle describes it: where its bytes live, never the bytes."""

    key: str  # zip entry archive/data/<key>, or the legacy format's storage key
    dtype: str
    itemsize: int
    numel: int  # elements in the whole storage (views may use part of it)
    location: str  # device it was saved from, e.g. "cuda:0"


@dataclass(frozen=True)
class TensorInfo:
    """A tensor's metadata from its rebuild arguments: dtype, shape, stride, storage and offset."""

    storage: StorageRef
    offset: int
    shape: tuple[int, ...]
    stride: tuple[int, ...]
    requires_grad: bool

    @property
    def numel(self) -> int:
        return math.prod(self.shape)

    @property
    def dtype(self) -> str:
        return self.storage.dtype

    def identity(self) -> tuple[str, int, tuple[int, ...], tuple[int, ...]]:
        """Same identity = same elements: aliased state-dict entries (shared heads) count once."""
        return (self.storage.key, self.offset, self.shape, self.stride)


class ArgsRecord:
    """Stand-in for argparse.Namespace (and Python 2 era objects of allowed classes): a dict."""

    values: dict[str, Any]

    def __new__(cls, *_args: object, **kwargs: object) -> ArgsRecord:
        # NEWOBJ calls __new__ without __init__, so the record is set up here.
        record = super().__new__(cls)
        record.values = {str(k): v for k, v in kwargs.items()}
        return record

    def __setstate__(self, state: object) -> None:
        # BUILD hands us the instance __dict__ (or a (dict, slots) pair); keep only plain data.
        if isinstance(state, tuple) and len(state) == 2:
            state = state[0]
        if isinstance(state, dict):
            self.values.update({str(k): v for k, v in state.items()})

    def __repr__(self) -> str:
        return f"Namespace({self.values!r})"


class _KeepStateAside:
    """BUILD state (e.g. a state dict's `_metadata`) is kept aside, never copied to __dict__.

    A plain OrderedDict or Counter would copy it into its __dict__, where a crafted pickle could
    plant an instance attribute `__setstate__` for a second BUILD to call.
    """

    def __setstate__(self, state: object) -> None:
        self.pickled_state = state if isinstance(state, dict) else None


class StateDict(_KeepStateAside, collections.OrderedDict):
    """Stand-in for collections.OrderedDict."""


class CounterRecord(_KeepStateAside, collections.Counter):
    """Stand-in for collections.Counter (MultiStepLR milestones)."""


class Refused:
    """What a name outside the allow-list resolves to: it accepts anything and does nothing."""

    def __init__(self, *_args: object, **_kwargs: object) -> None:
        pass

    def __call__(self, *_args: object, **_kwargs: object) -> Refused:
        return Refused()

    def __setstate__(self, _state: object) -> None:
        pass


class TypeMarker:
    """Stand-in for an allowed class used only as a type tag (torch.Tensor, Parameter)."""

    def __init__(self, name: str) -> None:
        self.name = name

    def __call__(self, *_args: object, **_kwargs: object) -> Refused:
        raise pickle.UnpicklingError(f"{self.name} cannot be constructed directly")


def _as_shape(value: object, what: str) -> tuple[int, ...]:
    if not isinstance(value, (tuple, list)) or not all(type(v) is int for v in value):
        raise pickle.UnpicklingError(f"tensor {what} is not a tuple of ints: {value!r}")
    return tuple(value)


def _rebuild_tensor(
    storage: object, offset: object, size: object, stride: object, *rest: object
) -> TensorInfo:
    """Mirror of torch._utils._rebuild_tensor(_v2): (storage, offset, size, stride, grad, ...)."""
    if not isinstance(storage, StorageRef) or type(offset) is not int:
        raise pickle.UnpicklingError("tensor rebuild arguments are not (storage, offset, ...)")
    grad = bool(rest[0]) if rest and isinstance(rest[0], bool) else False
    return TensorInfo(storage, offset, _as_shape(size, "size"), _as_shape(stride, "stride"), grad)


def _rebuild_parameter(data: object, requires_grad: object = True, *_rest: object) -> object:
    """A Parameter's metadata is its data tensor's; requires_grad comes from the pickle."""
    if isinstance(data, TensorInfo):
        return TensorInfo(data.storage, data.offset, data.shape, data.stride, bool(requires_grad))
    return data


def _rebuild_from_type_v2(func: object, _new_type: object, args: object, _state: object) -> object:
    """Tensor subclasses wrap the plain rebuild; only our own rebuild functions may be called."""
    if func not in (_rebuild_tensor, _rebuild_parameter) or not isinstance(args, tuple):
        raise pickle.UnpicklingError("_rebuild_from_type_v2 wraps an unknown rebuild function")
    return func(*args)


def _codecs_encode(text: object, encoding: object = "latin1") -> bytes:
    """Protocol-2 pickles store bytes as _codecs.encode(str, 'latin1')."""
    if not isinstance(text, str) or encoding not in ("latin1", "latin-1"):
        raise pickle.UnpicklingError("_codecs.encode is allowed only for latin1 text")
    return text.encode("latin1")


def _torch_device(spec: object, index: object = None) -> str:
    return f"{spec}:{index}" if index is not None else str(spec)


def _torch_size(dims: object = ()) -> tuple[int, ...]:
    return _as_shape(dims, "Size")


def _reconstructor(cls: object, _base: object, _state: object = None) -> object:
    """copyreg._reconstructor (protocol 0/1 objects): only for our own stand-in classes."""
    if cls is ArgsRecord:
        return ArgsRecord()
    raise pickle.UnpicklingError("copyreg._reconstructor of a class outside the allow-list")


_ALLOWED: dict[tuple[str, str], object] = {
    ("collections", "OrderedDict"): StateDict,
    ("collections", "Counter"): CounterRecord,
    ("argparse", "Namespace"): ArgsRecord,
    ("torch._utils", "_rebuild_tensor"): _rebuild_tensor,
    ("torch._utils", "_rebuild_tensor_v2"): _rebuild_tensor,
    ("torch._utils", "_rebuild_parameter"): _rebuild_parameter,
    ("torch._utils", "_rebuild_parameter_with_state"): _rebuild_parameter,
    ("torch._tensor", "_rebuild_from_type_v2"): _rebuild_from_type_v2,
    ("torch", "Tensor"): TypeMarker("torch.Tensor"),
    ("torch.nn.parameter", "Parameter"): TypeMarker("torch.nn.Parameter"),
    ("torch", "Size"): _torch_size,
    ("torch", "device"): _torch_device,
    ("_codecs", "encode"): _codecs_encode,
    ("copyreg", "_reconstructor"): _reconstructor,
    ("builtins", "object"): object,  # the `base` argument of copyreg._reconstructor
}
# Builtin containers and numbers: constructing them runs no user code.
_ALLOWED.update(
    {
        ("builtins", name): obj
        for name, obj in {
            "set": set,
            "frozenset": frozenset,
            "list": list,
            "tuple": tuple,
            "dict": dict,
            "int": int,
            "float": float,
            "complex": complex,
            "bool": bool,
            "str": str,
            "bytes": bytes,
            "bytearray": bytearray,
            "slice": slice,
            "range": range,
        }.items()
    }
)


def allowed_global(module: str, name: str) -> object | None:
    """The stand-in for `module.name`, or None when the name is not on the allow-list."""
    if (module, name) in _ALLOWED:
        return _ALLOWED[(module, name)]
    if module == "torch" and name in _STORAGE_DTYPES:
        return StorageType(name)
    if module == "torch" and name in _TORCH_DTYPE_NAMES:
        return f"torch.{name}"  # a dtype saved as a value: keep its name
    return None


def _python3_name(module: str, name: str) -> tuple[str, str]:
    """Protocol < 3 pickles use Python 2 names (__builtin__, copy_reg): map them as pickle does."""
    if (module, name) in _compat_pickle.NAME_MAPPING:
        return _compat_pickle.NAME_MAPPING[(module, name)]
    return _compat_pickle.IMPORT_MAPPING.get(module, module), name


class RestrictedUnpickler(pickle.Unpickler):
    """Unpickles data structures only; records every global outside the allow-list."""

    def __init__(self, file: IO[bytes]) -> None:
        super().__init__(file)
        self.unsafe_globals: list[str] = []

    def find_class(self, module: str, name: str) -> object:
        module, name = _python3_name(module, name)
        found = allowed_global(module, name)
        if found is None:
            qualified = f"{module}.{name}"
            if qualified not in self.unsafe_globals:
                self.unsafe_globals.append(qualified)
            return Refused
        return found

    def persistent_load(self, pid: object) -> StorageRef:
        """torch's persistent id: ('storage', StorageType, key, location, numel[, view_meta])."""
        if not (isinstance(pid, tuple) and len(pid) >= 5 and pid[0] == "storage"):
            raise pickle.UnpicklingError(f"unknown persistent id {pid!r:.80}")
        storage_type, key, location, numel = pid[1:5]
        if isinstance(storage_type, StorageType):
            dtype, itemsize = _STORAGE_DTYPES[storage_type.name]
        else:  # Refused or anything odd: its name is already recorded as unsafe
            dtype, itemsize = "unknown", 1
        if type(numel) is not int:
            raise pickle.UnpicklingError("storage size is not an int")
        return StorageRef(str(key), dtype, itemsize, numel, str(location))
