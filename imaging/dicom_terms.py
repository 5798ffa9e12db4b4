"""Coded DICOM values that may be copied out of a file: only known defined terms.

A coded attribute such as Modality holds, in a real export, whatever the sending system wrote;
a value outside the standard's defined terms may be anything, a patient's name included. Only
values from the list below are kept; any other becomes :data:`UNKNOWN_MODALITY`.
"""

from __future__ import annotations

#: DICOM PS3.3 C.7.3.1.1.1 Modality defined terms (current and retired), 2024 edition.
MODALITY_DEFINED_TERMS: frozenset[str] = frozenset(
    (
        "ANN AR ASMT AU BDUS BI BMD CFM CR CT CTPROTOCOL DG DMS DOC DX ECG EEG EMG EOG EPS ES "
        "FID GM HC HD IO IOL IVOCT IVUS KER KO LEN LS MG MR M3D NM OAM OCT OP OPM OPT OPTBSV "
        "OPTENF OPV OSS OT PA PLAN POS PR PT PX REG RESP RF RG RTDOSE RTIMAGE RTINTENT RTPLAN "
        "RTRAD RTRECORD RTSEGANN RTSTRUCT RWV SEG SM SMR SR SRF STAIN TEXTUREMAP TG US VA XA "
        "XAPROTOCOL XC "
        # retired terms still found in archives
        "AS CD CF CP CS DD DF DM DS EC FA FS LP MA MS OPR ST VF"
    ).split()
)
#: What an unknown Modality value is recorded as (``OT``: "Other", itself a defined term).
UNKNOWN_MODALITY = "OT"


def safe_modality(value: object) -> str | None:
    """The Modality to record: a defined term as it is, ``"OT"`` for any other value.

    Parameters
    ----------
    value
        The file's Modality (0008,0060) value, or ``None`` when absent.

    Returns
    -------
    str or None
        ``None`` for an absent or empty value; the upper-case defined term; otherwise
        :data:`UNKNOWN_MODALITY`. The original text is never returned.
    """
    if value is None:
        return None
    text = str(value).strip().upper()
    if not text:
        return None
    return text if text in MODALITY_DEFINED_TERMS else UNKNOWN_MODALITY
