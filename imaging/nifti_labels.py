"""Label names kept in a NIfTI header extension (TotalSegmentator's ``--ml`` output).

TotalSegmentator's ``save_multilabel_nifti`` (``totalsegmentator/nifti_ext_header.py``,
``add_label_map_to_nifti``) appends one NIfTI-1 header extension with code 0 holding a Caret
(Connectome Workbench) label table in XML::

    <CaretExtension> ... <VolumeInformation Index="0"> <LabelTable>
    <Label Key="5" Red="0.0" Green="1.0" Blue="1.0" Alpha="1"><![CDATA[liver]]></Label> ...

The NIfTI-1 format (https://nifti.nimh.nih.gov/nifti-1/documentation/nifti1fields): a 348-byte
header (NIfTI-2: 540 bytes), then 4 bytes whose first is non-zero when extensions follow, then
blocks ``esize`` (int32, a multiple of 16 that counts these 8 bytes), ``ecode`` (int32) and
``esize - 8`` bytes of data, up to ``vox_offset``. This reader needs neither nibabel nor the
voxels: it reads only the header of a ``.nii``, ``.nii.gz`` or ``.hdr`` file.
"""

from __future__ import annotations

import gzip
import os
import struct
import xml.etree.ElementTree as ET
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from imaging.errors import LabelMapError

#: Extension codes that may hold a Caret label table: 0 (TotalSegmentator writes it so) and
#: NIFTI_ECODE_CARET = 30 (the code registered for Caret/Workbench).
LABEL_TABLE_ECODES = (0, 30)

#: Largest extension block read (bytes); real label tables are a few tens of kilobytes.
MAX_EXTENSION_BYTES = 64 * 1024 * 1024


class NiftiLabelTableError(LabelMapError):
    """A NIfTI file's header, or the label table in its header extension, is invalid."""


@dataclass(frozen=True)
class NiftiLabel:
    """One entry of a NIfTI label table: the structure name and its colour (RGB in 0..1)."""

    name: str
    colour_rgb: tuple[float, float, float]


def read_label_names_from_nifti(path: str | os.PathLike[str]) -> dict[int, str] | None:
    """Label value -> name from a NIfTI label map's header extension (TotalSegmentator ``--ml``).

    Parameters
    ----------
    path
        ``.nii``, ``.nii.gz`` or ``.hdr`` file.

    Returns
    -------
    dict of int to str, or None
        The names by label value (0 dropped), or None when the file has no label-table
        extension.

    Raises
    ------
    NiftiLabelTableError
        Not a NIfTI file, a truncated header or extension, or a malformed label table.
    """
    table = read_label_table_from_nifti(path)
    return None if table is None else {value: label.name for value, label in table.items()}


def read_label_table_from_nifti(path: str | os.PathLike[str]) -> dict[int, NiftiLabel] | None:
    """Label value -> name and colour from a NIfTI header extension, or None if there is none.

    See :func:`read_label_names_from_nifti` for parameters and errors.
    """
    path = Path(path)
    for ecode, data in _extensions(path):
        if ecode in LABEL_TABLE_ECODES and b"<CaretExtension" in data:
            return _parse_caret_label_table(path, data)
    return None


def _open(path: Path) -> BinaryIO:
    if not path.is_file():
        raise NiftiLabelTableError(f"NIfTI file {path} does not exist")
    with open(path, "rb") as probe:
        gzipped = probe.read(2) == b"\x1f\x8b"
    return gzip.open(path, "rb") if gzipped else open(path, "rb")


def _extensions(path: Path) -> list[tuple[int, bytes]]:
    """(ecode, data) of every header extension of a NIfTI-1 or NIfTI-2 file."""
    try:
        with _open(path) as stream:
            endian, header_size, vox_offset = _header(path, stream)
            flag = stream.read(4)
            if len(flag) < 4 or flag[0] == 0:
                return []
            return _extension_blocks(path, stream, endian, header_size + 4, vox_offset)
    except (OSError, EOFError, zlib.error) as error:
        raise NiftiLabelTableError(f"cannot read NIfTI header of {path}: {error}") from None


def _header(path: Path, stream: BinaryIO) -> tuple[str, int, int | None]:
    """Byte order, header size and ``vox_offset`` (None for a ``.hdr`` of an image pair)."""
    first = stream.read(4)
    for endian in "<>":
        if len(first) == 4 and struct.unpack(f"{endian}i", first)[0] in (348, 540):
            size = struct.unpack(f"{endian}i", first)[0]
            break
    else:
        raise NiftiLabelTableError(f"{path.name} is not a NIfTI-1 or NIfTI-2 file")
    rest = stream.read(size - 4)
    if len(rest) < size - 4:
        raise NiftiLabelTableError(f"{path.name}: NIfTI header truncated ({len(rest) + 4} bytes)")
    header = first + rest
    if size == 348:
        magic = header[344:348]
        offset = struct.unpack(f"{endian}f", header[108:112])[0]
    else:
        magic = header[4:8]
        offset = struct.unpack(f"{endian}q", header[168:176])[0]
    if magic[:3] not in (b"n+1", b"ni1", b"n+2", b"ni2"):
        raise NiftiLabelTableError(f"{path.name}: bad NIfTI magic {magic!r}")
    single_file = magic[1:2] == b"+"
    return endian, size, int(offset) if single_file else None


def _extension_blocks(
    path: Path, stream: BinaryIO, endian: str, position: int, end: int | None
) -> list[tuple[int, bytes]]:
    blocks = []
    while end is None or position + 8 <= end:
        head = stream.read(8)
        if not head and end is None:
            break
        if len(head) < 8:
            raise NiftiLabelTableError(f"{path.name}: header extension truncated at {position}")
        esize, ecode = struct.unpack(f"{endian}ii", head)
        if esize < 8 or esize > MAX_EXTENSION_BYTES or (end and position + esize > end):
            raise NiftiLabelTableError(
                f"{path.name}: header extension at byte {position} has invalid esize {esize}"
                f" (expected 8..{MAX_EXTENSION_BYTES}, ending by vox_offset {end})"
            )
        data = stream.read(esize - 8)
        if len(data) < esize - 8:
            raise NiftiLabelTableError(f"{path.name}: header extension truncated at {position}")
        blocks.append((ecode, data))
        position += esize
    return blocks


def _parse_caret_label_table(path: Path, data: bytes) -> dict[int, NiftiLabel]:
    """Labels of a ``<CaretExtension>`` XML label table (``LabelTable/Label`` elements)."""
    text = data.rstrip(b"\x00 \t\r\n").decode("utf-8", errors="replace")
    if "<!DOCTYPE" in text or "<!ENTITY" in text:
        raise NiftiLabelTableError(f"{path.name}: label table XML may not declare entities")
    try:
        root = ET.fromstring(text)
    except ET.ParseError as error:
        raise NiftiLabelTableError(f"{path.name}: label table XML is malformed: {error}") from None
    table: dict[int, NiftiLabel] = {}
    for element in root.iter("Label"):
        key = element.get("Key", "")
        try:
            value = int(key)
            rgb = tuple(float(element.get(c, "0.5")) for c in ("Red", "Green", "Blue"))
        except ValueError:
            raise NiftiLabelTableError(
                f"{path.name}: label table entry Key={key!r} has a non-numeric key or colour"
            ) from None
        name = (element.text or "").strip()
        if value == 0:
            continue
        if not name:
            raise NiftiLabelTableError(f"{path.name}: label table entry {value} has no name")
        if not all(0.0 <= c <= 1.0 for c in rgb):
            raise NiftiLabelTableError(
                f"{path.name}: label table entry {value} ({name}) has colour {rgb}, expected 0..1"
            )
        table[value] = NiftiLabel(name, rgb)
    if not table:
        raise NiftiLabelTableError(f"{path.name}: the label table extension names no labels")
    return table
