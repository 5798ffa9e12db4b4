"""The OpenXR path on ``pyopenxr``: the instance, its extensions and API layers, the system.

What this module does, and what has run
---------------------------------------
- :func:`open_instance` checks ``XR_RUNTIME_JSON`` (when set, the file must exist), asks the
  Khronos loader for the runtime's instance extensions, requires ``XR_KHR_opengl_enable``,
  optionally enables the core (and best-practices) validation API layers that ship in
  pyopenxr's wheel, and creates the instance. With no runtime the loader raises
  ``RuntimeUnavailableError``; this becomes one :class:`OpenXrRuntimeMissing` line naming the
  missing runtime and ``XR_RUNTIME_JSON`` and suggesting ``--backend simulated``.
- :func:`open_system` gets the head-mounted-display system of an instance.
- Both have run through the Khronos loader and the core validation layer against the
  project's headless test runtime (``tests/openxr_test_runtime/runtime.c``); never against a
  real headset runtime (none can be installed here).
- The session, its spaces, swapchains, frame loop and actions over this instance are
  :class:`vr.openxr_session.OpenXrBackend`.

The loader's own stderr logging is silenced (``XR_LOADER_DEBUG=none``) unless the user set
``XR_LOADER_DEBUG``: its errors are turned into the one-line message instead.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from vr.errors import VrError

__all__ = [
    "CORE_VALIDATION_LAYER",
    "BEST_PRACTICES_LAYER",
    "REQUIRED_EXTENSIONS",
    "OpenXrRuntimeMissing",
    "OpenXrInstance",
    "available_api_layers",
    "open_instance",
    "open_system",
]

#: Instance extensions the project needs.
REQUIRED_EXTENSIONS = ("XR_KHR_opengl_enable",)
#: Enabled when the runtime offers them: the headless EGL graphics binding (Monado, the test
#: runtime). Without it the session needs the Xlib/GLX binding (an X display).
OPTIONAL_EXTENSIONS = ("XR_MNDX_egl_enable",)
#: The validation API layers shipped in pyopenxr's wheel.
CORE_VALIDATION_LAYER = "XR_APILAYER_LUNARG_core_validation"
BEST_PRACTICES_LAYER = "XR_APILAYER_KHRONOS_best_practices_validation"

_SUGGESTION = "use --backend simulated to run without a headset"


class OpenXrRuntimeMissing(VrError):
    """No OpenXR runtime is installed or active (or ``XR_RUNTIME_JSON`` points nowhere)."""


def _quiet_loader() -> None:
    os.environ.setdefault("XR_LOADER_DEBUG", "none")


def _check_runtime_json() -> None:
    value = os.environ.get("XR_RUNTIME_JSON")
    if value and not Path(value).is_file():
        raise OpenXrRuntimeMissing(
            f"no OpenXR runtime: XR_RUNTIME_JSON={value} is not a file (it must name the "
            f"runtime's manifest JSON); {_SUGGESTION}"
        )


def _missing_runtime_message(detail: str) -> str:
    where = os.environ.get("XR_RUNTIME_JSON")
    hint = (
        f"XR_RUNTIME_JSON={where} did not load"
        if where
        else "XR_RUNTIME_JSON is not set and no active runtime is registered"
    )
    return (
        f"no OpenXR runtime found (install and start one, e.g. Monado or SteamVR, or set "
        f"XR_RUNTIME_JSON to its manifest; {hint}; loader: {detail.rstrip('.')}); {_SUGGESTION}"
    )


def available_api_layers() -> tuple[str, ...]:
    """API layers the loader can find, including those packaged with pyopenxr."""
    import xr

    _quiet_loader()
    xr.expose_packaged_api_layers()
    return tuple(layer.layer_name.decode() for layer in xr.enumerate_api_layer_properties())


@dataclass(frozen=True)
class OpenXrInstance:
    """A created instance and what it was created with.

    Attributes
    ----------
    handle : object
        The ``xr.Instance``.
    runtime_name : str
        ``XrInstanceProperties.runtimeName``.
    extensions : tuple of str
        Enabled instance extensions.
    layers : tuple of str
        Enabled API layers.
    """

    handle: object
    runtime_name: str
    extensions: tuple[str, ...]
    layers: tuple[str, ...]

    def destroy(self) -> None:
        """``xrDestroyInstance``."""
        import xr

        xr.destroy_instance(self.handle)


def open_instance(
    application_name: str = "surgplan", *, validation: Sequence[str] = ()
) -> OpenXrInstance:
    """Create the OpenXR instance with ``XR_KHR_opengl_enable``.

    ``XR_MNDX_egl_enable`` is enabled too when the runtime offers it.

    Parameters
    ----------
    application_name : str
        ``XrApplicationInfo.applicationName``.
    validation : sequence of str
        API layers to enable (e.g. :data:`CORE_VALIDATION_LAYER`); each must be available.

    Returns
    -------
    OpenXrInstance

    Raises
    ------
    OpenXrRuntimeMissing
        No runtime (the loader's ``RuntimeUnavailableError``) or a bad ``XR_RUNTIME_JSON``.
    VrError
        The runtime lacks a required extension, a requested layer is missing, or instance
        creation failed.
    """
    import xr

    _quiet_loader()
    _check_runtime_json()
    layers = tuple(validation)
    if layers:
        missing_layers = sorted(set(layers) - set(available_api_layers()))
        if missing_layers:
            raise VrError(f"OpenXR API layer(s) not found: {', '.join(missing_layers)}")
    try:
        offered = {e.extension_name.decode() for e in xr.enumerate_instance_extension_properties()}
    except xr.RuntimeUnavailableError as error:
        raise OpenXrRuntimeMissing(_missing_runtime_message(str(error))) from None
    except xr.XrException as error:
        raise VrError(f"OpenXR loader failed listing instance extensions: {error}") from None
    missing = [name for name in REQUIRED_EXTENSIONS if name not in offered]
    if missing:
        raise VrError(
            f"the OpenXR runtime does not offer {', '.join(missing)} (needed for OpenGL "
            f"rendering); {_SUGGESTION}"
        )
    extensions = REQUIRED_EXTENSIONS + tuple(n for n in OPTIONAL_EXTENSIONS if n in offered)
    info = xr.InstanceCreateInfo(
        application_info=xr.ApplicationInfo(application_name=application_name),
        enabled_extension_names=list(extensions),
        enabled_api_layer_names=list(layers) or None,
    )
    try:
        handle = xr.create_instance(info)
        properties = xr.get_instance_properties(handle)
    except xr.RuntimeUnavailableError as error:
        raise OpenXrRuntimeMissing(_missing_runtime_message(str(error))) from None
    except xr.XrException as error:
        raise VrError(f"xrCreateInstance failed: {error}") from None
    return OpenXrInstance(handle, properties.runtime_name.decode(), extensions, layers)


def open_system(instance: OpenXrInstance) -> object:
    """The head-mounted-display system (``xrGetSystem``).

    Raises
    ------
    VrError
        No headset is connected (``XR_ERROR_FORM_FACTOR_UNAVAILABLE``) or the call failed.
    """
    import xr

    info = xr.SystemGetInfo(form_factor=xr.FormFactor.HEAD_MOUNTED_DISPLAY)
    try:
        return xr.get_system(instance.handle, info)
    except xr.FormFactorUnavailableError:
        raise VrError(
            f"OpenXR runtime {instance.runtime_name!r} reports no head-mounted display "
            f"(is the headset connected and on?); {_SUGGESTION}"
        ) from None
    except xr.XrException as error:
        raise VrError(f"xrGetSystem failed: {error}") from None
