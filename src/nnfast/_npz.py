"""Safe ``.npz`` files: written atomically, read without pickle.

Parameter files and training checkpoints are NumPy zips of plain arrays; a JSON document rides
along as a 0-d unicode array, so nothing in them is ever unpickled. Writing goes to a temporary
file in the target's folder, flushed to disk, then renamed over the target: an interrupted or
failed write leaves the previous file (or none), never a truncated one.
"""
from __future__ import annotations

import json
import os
import tempfile
import zipfile
from typing import Any, Dict, Mapping, Union

import numpy as np
import numpy.typing as npt

#: A file name: str or path-like.
PathLike = Union[str, "os.PathLike[str]"]

__all__ = ["is_npz", "save_npz", "load_npz", "json_array", "read_json_array"]


def is_npz(file_name: PathLike) -> bool:
    """Whether ``file_name`` (str or path-like) names the ``.npz`` format."""
    return os.fspath(file_name).lower().endswith(".npz")


def save_npz(file_name: PathLike, arrays: Mapping[str, Any]) -> None:
    """``np.savez`` of ``arrays`` (a dict) to ``file_name``, atomically."""
    target = os.fspath(file_name)
    fd, tmp = tempfile.mkstemp(suffix=".npz.tmp", dir=os.path.dirname(target) or ".")
    try:
        with os.fdopen(fd, "wb") as f:
            np.savez(f, **arrays)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, target)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise


def load_npz(file_name: PathLike, where: str,
             what: str = "a readable .npz file of plain arrays") -> Dict[str, npt.NDArray[Any]]:
    """Every array of the ``.npz`` file as a dict, read with ``allow_pickle=False``.

    FileNotFoundError as it is; anything else unreadable (not a zip, truncated, an object
    array that would need pickle): ValueError from ``where`` naming the file.
    """
    try:
        with np.load(file_name, allow_pickle=False) as data:
            return {key: data[key] for key in data.files}
    except FileNotFoundError:
        raise
    except (OSError, ValueError, EOFError, zipfile.BadZipFile, KeyError) as exc:
        raise ValueError(f"{where}: {os.fspath(file_name)!r} is not {what} "
                         f"({type(exc).__name__}: {exc})") from None


def json_array(document: Any) -> npt.NDArray[np.str_]:
    """``document`` (JSON-serialisable) as a 0-d unicode array for an ``.npz`` file."""
    return np.array(json.dumps(document))


def read_json_array(array: Any, where: str, name: str) -> Any:
    """The JSON document stored by :func:`json_array`."""
    if not isinstance(array, np.ndarray) or array.dtype.kind != "U" or array.ndim != 0:
        raise ValueError(f"{where}: {name!r} must be a JSON text, got "
                         f"{getattr(array, 'dtype', type(array).__name__)}")
    try:
        return json.loads(str(array[()]))
    except ValueError as exc:
        raise ValueError(f"{where}: {name!r} is not valid JSON ({exc})") from None
