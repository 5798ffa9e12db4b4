"""Write a CT image as a DICOM CT series carrying a fake patient identity.

One file per axial slice, CT Image Storage, explicit VR little endian, uncompressed. Pixel data
use the classic CT encoding: unsigned 16-bit words with 12 bits stored, rescale slope 1 and
intercept -1024, so stored value = HU + 1024 (HU in [-1024, 3071]). All UIDs are derived from a
fixed root text and the phantom seed (:func:`phantom_uid`, ``2.25.`` UIDs from name-based
UUIDs), so the same phantom gives byte-identical files.

The identity is fictitious but shaped like a real one (name, ID, birth date, institution,
physicians, accession number, address, plus a private tag repeating the name), so that the
project's de-identification can be tested on it.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import uuid
from pathlib import Path

import numpy as np
import SimpleITK as sitk
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import CTImageStorage, ExplicitVRLittleEndian

from surgplan.atomic import fsync_file
from surgplan.phantom.errors import PhantomError

UID_ROOT_TEXT = "surgplan-phantom-v1"
"""Text hashed, with the seed and a purpose, into every UID of the series."""
RESCALE_INTERCEPT = -1024
STUDY_DATE = "20240115"
STUDY_TIME = "101500"
FAKE_IDENTITY: dict[str, str] = {
    "PatientName": "PHANTOM^JANE",
    "PatientID": "SP-000123",
    "PatientBirthDate": "19700101",
    "PatientSex": "F",
    "PatientAge": "054Y",
    "PatientAddress": "1 Phantom Street, Testville",
    "OtherPatientIDs": "SP-ALT-987",
    "InstitutionName": "Surgplan Phantom Hospital",
    "InstitutionAddress": "2 Synthetic Road, Testville",
    "ReferringPhysicianName": "DOE^JOHN",
    "PerformingPhysicianName": "ROE^RICHARD",
    "OperatorsName": "SMITH^ALEX",
    "AccessionNumber": "ACC0001234",
    "StudyID": "STUDY42",
    "StationName": "CT-PHANTOM-01",
}
"""The fictitious identity written into every file (DICOM keyword -> value)."""
PRIVATE_CREATOR = "SURGPLAN PHANTOM"
"""Private creator of group 0x0011; element 0x01 repeats the patient's name."""


def phantom_uid(seed: int, purpose: str) -> str:
    """A deterministic UID for ``purpose`` (``"study"``, ``"series"``, ``"slice-7"``...).

    ``2.25.<n>`` with ``n`` the integer value of a name-based (SHA-1, RFC 4122 version 5) UUID of
    ``UID_ROOT_TEXT/seed/purpose``, the UUID-derived UID form of DICOM PS3.5 B.2. (pydicom's
    ``generate_uid(prefix=None, ...)`` ignores its entropy sources and is random.)

    Parameters
    ----------
    seed
        Seed of the phantom.
    purpose
        What the UID identifies.
    """
    name = f"{UID_ROOT_TEXT}/{seed}/{purpose}"
    return f"2.25.{uuid.uuid5(uuid.NAMESPACE_URL, name).int}"


def _slice_dataset(
    ct: sitk.Image, pixels: np.ndarray, index: int, seed: int, description: str
) -> Dataset:
    """Dataset of axial slice ``index`` (``pixels``: uint16 stored values, rows x columns)."""
    spacing = ct.GetSpacing()
    position = ct.TransformIndexToPhysicalPoint((0, 0, index))
    sop_uid = phantom_uid(seed, f"slice-{index}")

    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = CTImageStorage
    meta.MediaStorageSOPInstanceUID = sop_uid
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    meta.ImplementationClassUID = phantom_uid(0, "implementation")
    meta.ImplementationVersionName = "SURGPLAN_PH1"

    ds = Dataset()
    ds.file_meta = meta
    ds.SpecificCharacterSet = "ISO_IR 100"
    ds.ImageType = ["ORIGINAL", "PRIMARY", "AXIAL"]
    ds.SOPClassUID = CTImageStorage
    ds.SOPInstanceUID = sop_uid
    ds.StudyDate = ds.SeriesDate = ds.AcquisitionDate = ds.ContentDate = STUDY_DATE
    ds.StudyTime = ds.SeriesTime = ds.AcquisitionTime = ds.ContentTime = STUDY_TIME
    ds.Modality = "CT"
    ds.Manufacturer = "surgplan"
    ds.ManufacturerModelName = "synthetic phantom"
    ds.StudyDescription = "PHANTOM ABDOMEN PORTAL VENOUS"
    ds.SeriesDescription = description
    for keyword, value in FAKE_IDENTITY.items():
        setattr(ds, keyword, value)
    ds.BodyPartExamined = "ABDOMEN"
    ds.SliceThickness = f"{spacing[2]:g}"
    ds.SpacingBetweenSlices = f"{spacing[2]:g}"
    ds.KVP = "120"
    ds.ConvolutionKernel = "STANDARD"
    ds.PatientPosition = "HFS"
    ds.StudyInstanceUID = phantom_uid(seed, "study")
    ds.SeriesInstanceUID = phantom_uid(seed, "series")
    ds.FrameOfReferenceUID = phantom_uid(seed, "frame-of-reference")
    ds.PositionReferenceIndicator = ""
    ds.SeriesNumber = 1
    ds.AcquisitionNumber = 1
    ds.InstanceNumber = index + 1
    ds.ImagePositionPatient = [f"{v:.4f}" for v in position]
    direction = ct.GetDirection()
    row_cosines, column_cosines = direction[0:9:3], direction[1:9:3]  # image x and y axes
    ds.ImageOrientationPatient = [f"{v:g}" for v in (*row_cosines, *column_cosines)]
    ds.SliceLocation = f"{position[2]:.4f}"
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.Rows, ds.Columns = pixels.shape
    ds.PixelSpacing = [f"{spacing[1]:g}", f"{spacing[0]:g}"]  # row spacing (y), column (x)
    ds.BitsAllocated = 16
    ds.BitsStored = 12
    ds.HighBit = 11
    ds.PixelRepresentation = 0
    ds.RescaleIntercept = str(RESCALE_INTERCEPT)
    ds.RescaleSlope = "1"
    ds.RescaleType = "HU"
    ds.WindowCenter = "50"
    ds.WindowWidth = "400"
    block = ds.private_block(0x0011, PRIVATE_CREATOR, create=True)
    block.add_new(0x01, "PN", FAKE_IDENTITY["PatientName"])
    ds.PixelData = pixels.tobytes()
    return ds


def write_dicom_series(
    ct: sitk.Image,
    folder: str | os.PathLike[str],
    *,
    seed: int,
    description: str = "synthetic CT phantom",
) -> list[Path]:
    """Write ``ct`` (HU, axial, identity direction) as a DICOM CT series into ``folder``.

    The series is written into a temporary folder beside ``folder`` and renamed onto it, so
    ``folder`` holds either the previous complete series or the new one, never a mixture.

    Parameters
    ----------
    ct
        3D CT image in HU with identity direction (axial slices along z).
    folder
        Destination folder; replaced if it exists. Its parent must exist.
    seed
        Seed of the phantom; enters every UID.
    description
        SeriesDescription.

    Returns
    -------
    list of Path
        The written files (``CT0001.dcm``, ...), in slice order.

    Raises
    ------
    PhantomError
        If the image is not 3D, has a non-identity direction, or values outside [-1024, 3071].
    """
    final = Path(folder)
    if ct.GetDimension() != 3:
        raise PhantomError(f"DICOM export needs a 3D image, got {ct.GetDimension()}D")
    if not np.allclose(ct.GetDirection(), np.eye(3).ravel()):
        raise PhantomError(f"DICOM export needs identity direction, got {ct.GetDirection()}")
    hu = sitk.GetArrayFromImage(ct)
    if hu.min() < RESCALE_INTERCEPT or hu.max() > RESCALE_INTERCEPT + 4095:
        raise PhantomError(
            f"CT values must lie in [-1024, 3071] HU for 12-bit DICOM, got [{hu.min()}, {hu.max()}]"
        )
    if not final.parent.is_dir():
        raise PhantomError(f"parent folder of {final} does not exist")
    stored = (hu.astype(np.int32) - RESCALE_INTERCEPT).astype("<u2")
    tmp = final.parent / f".{final.name}.{uuid.uuid4().hex}.tmp"
    tmp.mkdir()  # the usual folder mode (0o777 less the umask), unlike mkdtemp's 0o700
    try:
        names = []
        for k in range(stored.shape[0]):
            ds = _slice_dataset(ct, stored[k], k, seed, description)
            name = f"CT{k + 1:04d}.dcm"
            ds.save_as(tmp / name, enforce_file_format=True)
            fsync_file(tmp / name)
            names.append(name)
        fsync_file(tmp)
        _replace_folder(tmp, final)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp)
    return [final / name for name in names]


def _replace_folder(new: Path, final: Path) -> None:
    """Rename folder ``new`` onto ``final``, moving an existing ``final`` aside first."""
    old = None
    if final.exists():
        old = Path(tempfile.mkdtemp(prefix=f".{final.name}.", suffix=".old", dir=final.parent))
        os.replace(final, old / final.name)
    os.replace(new, final)
    fsync_file(final.parent)
    if old is not None:
        shutil.rmtree(old)
