"""The de-identified DICOM identity of a case: its UIDs, patient pseudonym and de-id attributes.

Every DICOM object a case exports (the scan as a CT series, DICOM-SEG, RTSTRUCT) carries the
case's own identity, never the original's: UIDs generated once per case
(:meth:`CaseDicomUids.generate`, recorded in the case manifest so that later exports reference
the same study, series and frame of reference), a patient pseudonym derived from those UIDs, a
placeholder patient name, empty dates, and the de-identification attributes of DICOM PS3.15
Annex E (Patient Identity Removed ``YES``, the Basic Application Confidentiality Profile code).
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields
from importlib.metadata import PackageNotFoundError, version

from pydicom.dataset import Dataset
from pydicom.uid import RE_VALID_UID, generate_uid

from surgplan.errors import SurgplanError

PLACEHOLDER_PATIENT_NAME = "ANONYMOUS^SURGPLAN"
"""Patient's Name of every exported object (a placeholder, never a person's name)."""
PATIENT_ID_PREFIX = "SURGPLAN-"
"""Prefix of the case pseudonym written as Patient ID."""
DEIDENTIFICATION_METHOD = "surgplan: new UIDs; identifiers, dates and staff names removed"
"""De-identification Method (0012,0063, LO: at most 64 characters) of every exported object."""
BASIC_PROFILE_CODE = ("113100", "DCM", "Basic Application Confidentiality Profile")
"""DICOM PS3.16 CID 7050 code of the de-identification profile applied (PS3.15 E.1)."""
MANUFACTURER = "surgplan"


class DicomExportError(SurgplanError):
    """A DICOM export request cannot be met (bad UIDs, masks, source series or destination)."""


def software_version() -> str:
    """The installed ``surgplan`` version (Software Versions of every exported object)."""
    try:
        return version("surgplan")
    except PackageNotFoundError:  # running from a source tree that was never installed
        return "0+unknown"


@dataclass(frozen=True)
class CaseDicomUids:
    """The UIDs of a case's exported DICOM objects, generated once and kept in the manifest.

    Attributes
    ----------
    study : str
        Study Instance UID shared by the series, the SEG and the RTSTRUCT.
    series : str
        Series Instance UID of the de-identified scan (CT series).
    frame_of_reference : str
        Frame of Reference UID of the scan's patient space (LPS mm).
    seg_series : str
        Series Instance UID of the DICOM-SEG.
    rtstruct_series : str
        Series Instance UID of the RT Structure Set.
    """

    study: str
    series: str
    frame_of_reference: str
    seg_series: str
    rtstruct_series: str

    def __post_init__(self) -> None:
        values = [getattr(self, f.name) for f in fields(self)]
        for field, value in zip(fields(self), values, strict=True):
            if not isinstance(value, str) or len(value) > 64 or not RE_VALID_UID.match(value):
                raise DicomExportError(
                    f"DICOM UID {field.name!r} is not a valid UID: {value!r} "
                    "(expected digits and dots, at most 64 characters)"
                )
        if len(set(values)) != len(values):
            raise DicomExportError(f"DICOM UIDs of a case must all differ, got {values}")

    @classmethod
    def generate(cls) -> CaseDicomUids:
        """New random UIDs (``pydicom.uid.generate_uid``), unrelated to any original UID."""
        return cls(**{f.name: str(generate_uid()) for f in fields(cls)})

    @classmethod
    def from_dict(cls, data: Mapping[str, str]) -> CaseDicomUids:
        """The UIDs recorded in a manifest (the dict of :meth:`to_dict`).

        Raises
        ------
        DicomExportError
            If a field is missing, unknown or not a valid UID.
        """
        expected = {f.name for f in fields(cls)}
        if set(data) != expected:
            raise DicomExportError(
                f"DICOM UIDs record has fields {sorted(data)}; expected {sorted(expected)}"
            )
        return cls(**{name: data[name] for name in expected})

    def to_dict(self) -> dict[str, str]:
        """JSON-ready dict (field name -> UID) to record in the manifest."""
        return asdict(self)

    def instance_uid(self, series_uid: str, number: int) -> str:
        """SOP Instance UID of instance ``number`` (1-based) of ``series_uid``, derived.

        ``2.25.<n>`` with ``n`` the integer of a name-based (SHA-1, RFC 4122 version 5) UUID of
        ``series_uid/number`` (DICOM PS3.5 B.2): the same case always gives the same instance
        UIDs, and distinct series (random UIDs) never share one.
        """
        return f"2.25.{uuid.uuid5(uuid.NAMESPACE_OID, f'{series_uid}/{number}').int}"

    @property
    def patient_id(self) -> str:
        """The case's patient pseudonym: a hash of the (random) study UID, never an identifier."""
        digest = hashlib.sha256(self.study.encode("ascii")).hexdigest()[:12].upper()
        return f"{PATIENT_ID_PREFIX}{digest}"


def set_deidentified_patient_and_study(ds: Dataset, uids: CaseDicomUids) -> None:
    """Fill the Patient and General Study modules of ``ds`` with the case's de-identified values.

    Type 2 attributes that would carry identifying information (birth date, sex, dates,
    accession number, referring physician, study ID) are present and empty, as the Basic
    Application Confidentiality Profile (PS3.15 E.1, action Z) asks.
    """
    ds.PatientName = PLACEHOLDER_PATIENT_NAME
    ds.PatientID = uids.patient_id
    ds.PatientBirthDate = ""
    ds.PatientSex = ""
    ds.PatientIdentityRemoved = "YES"
    ds.DeidentificationMethod = DEIDENTIFICATION_METHOD
    code = Dataset()
    code.CodeValue, code.CodingSchemeDesignator, code.CodeMeaning = BASIC_PROFILE_CODE
    ds.DeidentificationMethodCodeSequence = [code]
    ds.LongitudinalTemporalInformationModified = "REMOVED"
    ds.StudyInstanceUID = uids.study
    ds.StudyDate = ""
    ds.StudyTime = ""
    ds.ReferringPhysicianName = ""
    ds.StudyID = ""
    ds.AccessionNumber = ""
