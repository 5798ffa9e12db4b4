"""The deterministic core of a live session: accepted messages in, twin states out.

:class:`SessionCore` is a pure state machine shared by the server and by replay: given the
same batches of the same messages in the same order it produces the same states (the log
records every batch, :mod:`surgplan.live.log`). Each batch's points are, in message order,

- POINT: its positions (LPS unless :attr:`WireFrames.points_ras`);
- POLYDATA: its points (cells ignored; LPS unless :attr:`WireFrames.scan_ras`);
- TRANSFORM of the pointer: the tip ``T_tracker_pointer @ tip_offset_mm`` (the case's pivot
  calibration, :mod:`surgplan.live.pivot`).

Before the twin's first state, batches with fewer than :data:`MIN_FIRST_POINTS` points in all
are held (``"pending"``) and joined to the next batch. A batch the twin refuses
(:class:`~surgplan.twin.PointsError`, units...) gives an ``"error"`` outcome and is dropped.
"""

from __future__ import annotations

import math
import os
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

import numpy as np
from numpy.typing import NDArray

from surgplan.errors import PROJECT_ERRORS
from surgplan.live.codec import Message, PointMessage, PolyDataMessage, TransformMessage
from surgplan.live.errors import LiveError, MessageError
from surgplan.live.frames import WireFrames, from_wire_points, from_wire_transform

__all__ = [
    "MIN_FIRST_POINTS",
    "RIGID_TOLERANCE",
    "TwinSpec",
    "SessionConfig",
    "UpdateOutcome",
    "SessionCore",
    "state_difference",
]

#: Points the twin's first update needs (``Twin.update``).
MIN_FIRST_POINTS = 6
#: Largest ``|R^T R - I|`` (max abs entry) of a pointer TRANSFORM (float32 on the wire).
RIGID_TOLERANCE = 1e-3


@dataclass(frozen=True)
class TwinSpec:
    """How to build the session's twin (recorded in the log, so that replay builds the same).

    Attributes
    ----------
    source : {"case", "synthetic"}
        ``"case"``: :func:`surgplan.twin.case_twin.twin_from_case` on the case's reduced model;
        ``"synthetic"``: the bumpy ellipsoid of :mod:`surgplan.twin.synthetic` (tests, demo,
        benchmarks).
    mode : {"rigid", "deformable"}
        The twin's mode.
    noise_mm : float
        Sensor localisation noise (standard deviation per axis), mm.
    structure : str
        The organ (``source="case"``).
    subdivisions : int
        Icosphere subdivisions of the synthetic organ.
    seed : int
        Seed of the twin's rigid global search.
    """

    source: Literal["case", "synthetic"] = "case"
    mode: Literal["rigid", "deformable"] = "rigid"
    noise_mm: float = 1.0
    structure: str = "liver"
    subdivisions: int = 3
    seed: int = 0

    def __post_init__(self) -> None:
        if self.source not in ("case", "synthetic"):
            raise LiveError(f"twin source must be 'case' or 'synthetic', got {self.source!r}")
        if self.mode not in ("rigid", "deformable"):
            raise LiveError(f"twin mode must be 'rigid' or 'deformable', got {self.mode!r}")
        if not (math.isfinite(self.noise_mm) and self.noise_mm > 0):
            raise LiveError(f"noise_mm must be a positive number of mm, got {self.noise_mm!r}")

    def build(self, case_dir: str | os.PathLike[str]) -> Any:
        """A fresh :class:`~surgplan.twin.Twin`."""
        from surgplan.twin import Twin

        if self.source == "synthetic":
            from surgplan.twin.synthetic import synthetic_basis, synthetic_organ

            model = synthetic_organ(self.subdivisions)
            return Twin(
                synthetic_basis(model),
                mode=self.mode,
                noise_mm=self.noise_mm,
                surface=model,
                seed=self.seed,
            )
        from surgplan.twin.case_twin import twin_from_case

        return twin_from_case(
            case_dir,
            structure=self.structure,
            mode=self.mode,
            noise_mm=self.noise_mm,
            seed=self.seed,
        )

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict."""
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> TwinSpec:
        """Inverse of :meth:`to_dict`."""
        return cls(**d)


@dataclass(frozen=True)
class SessionConfig:
    """Everything that decides a session's states (recorded in its log).

    Attributes
    ----------
    twin : TwinSpec
        The twin.
    frames : WireFrames
        Which messages are RAS on the wire, and the pointer's device name.
    tip_offset_mm : tuple of 3 floats, optional
        The pointer's tip in the pointer's frame (pivot calibration), mm; ``None``: pointer
        TRANSFORMs are refused.
    """

    twin: TwinSpec = field(default_factory=TwinSpec)
    frames: WireFrames = field(default_factory=WireFrames)
    tip_offset_mm: tuple[float, float, float] | None = None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict."""
        return {
            "twin": self.twin.to_dict(),
            "frames": self.frames.to_dict(),
            "tip_offset_mm": None if self.tip_offset_mm is None else list(self.tip_offset_mm),
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> SessionConfig:
        """Inverse of :meth:`to_dict`."""
        tip = d.get("tip_offset_mm")
        return cls(
            twin=TwinSpec.from_dict(d["twin"]),
            frames=WireFrames.from_dict(d["frames"]),
            tip_offset_mm=None if tip is None else tuple(float(x) for x in tip),
        )


@dataclass(frozen=True)
class UpdateOutcome:
    """What one batch did.

    Attributes
    ----------
    status : {"state", "pending", "error"}
        A new state; held (too few points before the first state); or refused by the twin.
    n_points : int
        Points this batch contributed.
    state : TwinState or None
        The new state (``status == "state"``).
    error : str or None
        The twin's message (``status == "error"``).
    """

    status: Literal["state", "pending", "error"]
    n_points: int
    state: Any = None
    error: str | None = None


class SessionCore:
    """Twin plus the batching rules; see the module docstring.

    Parameters
    ----------
    twin : surgplan.twin.Twin
        A fresh twin (no update yet).
    config : SessionConfig
        Frames and pointer calibration.
    """

    def __init__(self, twin: Any, config: SessionConfig) -> None:
        self.twin = twin
        self.config = config
        self._pending = np.zeros((0, 3))
        self.state: Any = None

    def check(self, message: Message) -> None:
        """Non-fatal :class:`MessageError` unless the session takes ``message`` (an acquisition)."""
        f = self.config.frames
        if isinstance(message, TransformMessage):
            if message.device_name != f.pointer_device:
                raise MessageError(
                    "device",
                    f"TRANSFORM {message.device_name!r} is not the "
                    f"pointer ({f.pointer_device!r}); nothing else is accepted",
                )
            if self.config.tip_offset_mm is None:
                raise MessageError(
                    "device",
                    "pointer TRANSFORM refused: the case has no pivot "
                    "calibration (run 'surgplan pivot CASE TRANSFORMS')",
                )
            R = message.matrix[:3, :3]
            err = float(np.abs(R.T @ R - np.eye(3)).max())
            if err > RIGID_TOLERANCE or np.linalg.det(R) < 0:
                raise MessageError(
                    "layout",
                    f"pointer TRANSFORM {message.device_name!r} is not a "
                    f"rotation (|R^T R - I| = {err:.2g}, det {np.linalg.det(R):.3g})",
                )
        elif isinstance(message, (PointMessage, PolyDataMessage)):
            n = len(message.positions if isinstance(message, PointMessage) else message.points)
            if n == 0:
                raise MessageError(
                    "layout", f"{message.TYPE} {message.device_name!r} has no points"
                )
        else:
            raise MessageError(
                "type",
                f"{message.TYPE} {message.device_name!r} is not accepted "
                "(POINT, POLYDATA and the pointer's TRANSFORM are)",
            )

    def points_of(self, message: Message) -> NDArray[np.float64]:
        """The message's acquired points, tracker frame (LPS-signed), mm, shape (N, 3)."""
        f = self.config.frames
        if isinstance(message, PointMessage):
            return from_wire_points(message.positions, f.points_ras)
        if isinstance(message, PolyDataMessage):
            return from_wire_points(message.points, f.scan_ras)
        T = from_wire_transform(message.matrix, f.pointer_ras)
        tip = np.asarray(self.config.tip_offset_mm, np.float64)
        return (T[:3, :3] @ tip + T[:3, 3])[None, :]

    def apply(self, messages: list[Message]) -> UpdateOutcome:
        """Assimilate one batch (messages in log order)."""
        pts = [self.points_of(m) for m in messages]
        new = np.vstack(pts) if pts else np.zeros((0, 3))
        allpts = np.vstack([self._pending, new])
        if self.state is None and len(allpts) < MIN_FIRST_POINTS:
            self._pending = allpts
            return UpdateOutcome("pending", len(new))
        self._pending = np.zeros((0, 3))
        try:
            self.state = self.twin.update(allpts)
        except PROJECT_ERRORS as exc:
            return UpdateOutcome("error", len(new), error=str(exc))
        return UpdateOutcome("state", len(new), state=self.state)


def _numbers(x: Any, path: str, out: dict[str, Any]) -> None:
    if isinstance(x, dict):
        for k, v in x.items():
            if k != "time_ms":  # wall-clock duration: differs between runs by nature
                _numbers(v, f"{path}.{k}", out)
    elif isinstance(x, list):
        out[f"{path}#len"] = len(x)
        for i, v in enumerate(x):
            _numbers(v, f"{path}[{i}]", out)
    else:
        out[path] = x


def state_difference(a: Any, b: Any) -> float:
    """Largest absolute difference between two states' numbers (``inf`` if they differ in kind).

    Compares :meth:`TwinState.to_dict` leaf by leaf, ``time_ms`` excepted; strings, booleans
    and integers must be equal (else ``inf``), NaN equals NaN.
    """
    if a is None or b is None:
        return 0.0 if a is b else math.inf
    da: dict[str, Any] = {}
    db: dict[str, Any] = {}
    _numbers(a.to_dict(), "", da)
    _numbers(b.to_dict(), "", db)
    if da.keys() != db.keys():
        return math.inf
    worst = 0.0
    for k, va in da.items():
        vb = db[k]
        if isinstance(va, float) or isinstance(vb, float):
            fa, fb = float(va), float(vb)
            if math.isnan(fa) and math.isnan(fb):
                continue
            d = abs(fa - fb)
            if math.isnan(d):
                return math.inf
            worst = max(worst, d)
        elif va != vb:
            return math.inf
    return worst
