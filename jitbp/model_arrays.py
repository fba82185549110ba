"""The .npy members of a model file, read no further than what each member really holds.

A member's .npy header declares its shape; it is checked against the member's size in
the zip, and that size against the file's, before any array is allocated. Allocation is
therefore bounded by the bytes actually in the file (for compressed members, by the
bytes they really inflate to), whatever a header claims.
"""
import math
import os

import numpy as np

from .errors import ModelFileError

DTYPES = (np.dtype(np.float32), np.dtype(np.float64))
#: Largest header.json read (a model of tens of thousands of layer calls fits).
MAX_HEADER_BYTES = 16 * 2**20


def read_header_bytes(archive, name):
    """The raw bytes of the JSON header member, refused when implausibly large."""
    info = _info(archive, name)
    if info.file_size > MAX_HEADER_BYTES:
        raise ModelFileError(f"{name} declares {info.file_size} bytes, more than a model header holds")
    with archive.open(info) as member:
        return member.read(MAX_HEADER_BYTES + 1)


def shape_of(archive, name):
    """The shape and dtype ``name`` declares, checked against its size, without reading its data."""
    info = _info(archive, name)
    with archive.open(info) as member:
        return _declared(member, info)[:2]


def read(archive, name):
    """The array stored in member ``name`` (read-only; callers copy it into place)."""
    info = _info(archive, name)
    with archive.open(info) as member:
        shape, dtype, fortran, size = _declared(member, info)
        data = member.read(size)
        if len(data) != size or member.read(1):
            raise ModelFileError(f"{name} holds {len(data)} bytes, its header declares {size}")
    return np.frombuffer(data, dtype).reshape(shape, order="F" if fortran else "C")


def _info(archive, name):
    """The zip entry of ``name``, refused when it claims more bytes than the file has."""
    try:
        info = archive.getinfo(name)
    except KeyError:
        raise ModelFileError(f"{name[:-4] if name.endswith('.npy') else name} is missing") from None
    file_bytes = os.fstat(archive.fp.fileno()).st_size
    stored = info.compress_type == 0
    if info.compress_size > file_bytes or (stored and info.file_size != info.compress_size):
        raise ModelFileError(f"{name} claims {info.file_size} bytes in a {file_bytes}-byte file")
    return info


def _declared(member, info):
    """(shape, dtype, fortran_order, data bytes) from the .npy header at the member's start."""
    name = info.filename
    try:
        version = np.lib.format.read_magic(member)
        read_header = {(1, 0): np.lib.format.read_array_header_1_0,
                       (2, 0): np.lib.format.read_array_header_2_0}.get(version)
        if read_header is None:
            raise ValueError(f".npy format version {version} is not supported")
        shape, fortran, dtype = read_header(member)
    except (ValueError, SyntaxError, TypeError) as exc:
        raise ModelFileError(f"{name} is not a plain .npy array ({exc})") from None
    if dtype not in DTYPES:
        raise ModelFileError(f"{name} holds dtype {dtype}, not float32 or float64 "
                             f"(pickled objects are never loaded)")
    size = math.prod(shape) * dtype.itemsize
    left = info.file_size - member.tell()
    if size != left:
        raise ModelFileError(f"{name} declares shape {shape} ({size} bytes) but holds {left} bytes")
    return shape, dtype, fortran, size
