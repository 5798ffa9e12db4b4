"""The OpenXR session backend: :class:`OpenXrBackend` runs :func:`vr.frame_loop.run_frame_loop`.

Set-up, in the order the spec requires:

1. The instance (:func:`vr.openxr_backend.open_instance`) and the head-mounted system.
2. ``xrGetOpenGLGraphicsRequirementsKHR``: OpenGL 3.3 must lie in the runtime's range.
3. The view configuration (primary stereo), each view's recommended image size (or the size
   asked for, clamped to the maximum) and the environment blend mode the runtime prefers
   (its first: opaque on a VR headset, additive on an optical see-through one).
4. An OpenGL 3.3 context (:class:`vr.render_gl.GlEyeRenderer`'s) and the session on it:
   headless EGL through ``XR_MNDX_egl_enable``'s ``XrGraphicsBindingEGLMNDX`` when the runtime
   offers it (Monado), else GLX on ``DISPLAY`` through ``XrGraphicsBindingOpenGLXlibKHR``
   (SteamVR and most desktop runtimes).
5. The reference space: STAGE when the runtime has one, else LOCAL; the VIEW space (the head).
6. One swapchain per view, in the first format the runtime lists of sRGB RGBA8 and RGBA8
   (the values written are display-ready sRGB either way: nothing converts them), three
   textures each, and a quad swapchain for the text, made when the first text is shown.
7. The controller action set (:class:`vr.openxr_actions.ControllerActions`).

Per frame: :meth:`wait_frame`, :meth:`begin_frame`, :meth:`locate_views` (``xrLocateViews`` in
the reference space, and the VIEW space for the head), each eye rendered straight into its
swapchain image by :class:`SwapchainEyeRenderer` (or an RGB array uploaded with
``glTexSubImage2D``), :meth:`end_frame` with a projection layer and the text quad (uploaded
only when its text changes). OpenXR's lost-runtime errors (``XR_ERROR_INSTANCE_LOST``,
``XR_ERROR_SESSION_LOST``, an instance-loss-pending event) become
:class:`~vr.layers.RuntimeLostError`, every other failure a :class:`~vr.errors.VrError` naming
the call. Lengths cross the OpenXR boundary in metres and are millimetres everywhere else.
"""

from __future__ import annotations

import ctypes
import time
from collections.abc import Sequence

import numpy as np

from vr.controllers import ControllerSample
from vr.errors import VrError
from vr.layers import (
    FrameTiming,
    LocatedViews,
    ProjectionLayer,
    QuadLayer,
    RuntimeLostError,
    SwapchainImage,
)
from vr.openxr_backend import OpenXrInstance, open_instance, open_system
from vr.openxr_swapchain import Swapchain, choose_format
from vr.scene import VrScene
from vr.session_state import SessionState
from vr.views import EyeView, Fov, Pose, pose_from_xr, pose_to_xr

__all__ = ["OpenXrBackend", "SwapchainEyeRenderer", "GL_VERSION_NEEDED"]

#: The OpenGL version the renderer needs (major, minor).
GL_VERSION_NEEDED = (3, 3)
_NS_PER_S = 1e9


def xr_call(what: str, function, *args):
    """Call a pyopenxr function, turning its errors into the project's.

    Raises
    ------
    RuntimeLostError
        The instance or session is lost.
    VrError
        Any other OpenXR error (named by ``what``).
    """
    import xr

    try:
        return function(*args)
    except (xr.InstanceLostError, xr.SessionLostError) as error:
        raise RuntimeLostError(f"{what}: the OpenXR runtime went away ({error})") from None
    except xr.XrException as error:
        raise VrError(f"{what} failed: {type(error).__name__} {error}".rstrip()) from None


def _xr_pose(pose: Pose):
    import xr

    position, orientation = pose_to_xr(pose)
    return xr.Posef(xr.Quaternionf(*orientation), xr.Vector3f(*position))


def _pose(xr_pose) -> Pose:
    p, q = xr_pose.position, xr_pose.orientation
    return pose_from_xr((p.x, p.y, p.z), (q.x, q.y, q.z, q.w))


class OpenXrBackend:
    """A headset through the active OpenXR runtime (the :class:`vr.frame_loop.Backend` protocol).

    Parameters
    ----------
    validation : sequence of str
        API layers to enable (e.g. the core validation layer).
    eye_size : (int, int) or None
        Per-eye image size, px; default the runtime's recommended size. Clamped to the maximum.
    binding : {"auto", "egl", "xlib"}
        The graphics binding: ``"auto"`` takes EGL when the runtime offers
        ``XR_MNDX_egl_enable``, else Xlib/GLX (needs ``DISPLAY``).

    Attributes
    ----------
    runtime_name : str
    eye_size : (int, int)
    blend_mode : str
        The environment blend mode submitted (``"OPAQUE"``, ``"ADDITIVE"``, ``"ALPHA_BLEND"``).
    reference_space : str
        ``"STAGE"`` or ``"LOCAL"``.
    swapchain_format : int
        The OpenGL internal format of the eye swapchains.
    """

    def __init__(
        self,
        *,
        validation: Sequence[str] = (),
        eye_size: tuple[int, int] | None = None,
        binding: str = "auto",
    ):
        import xr

        self._xr = xr
        self.instance: OpenXrInstance = open_instance(validation=validation)
        self.runtime_name = self.instance.runtime_name
        self.session = None
        self._swapchains: list[Swapchain] = []
        self._quad: Swapchain | None = None
        self._quad_image: np.ndarray | None = None
        self._spaces: list = []
        self.actions = None
        self.renderer = None
        self._located: LocatedViews | None = None
        self._display_ns: dict[float, int] = {}
        self.state = SessionState.UNKNOWN
        try:
            self.binding = self._pick_binding(binding)
            self._set_up(eye_size)
        except BaseException:
            self.destroy_session()
            self.destroy_instance()
            raise

    # -- set-up ---------------------------------------------------------------------------
    def _set_up(self, eye_size: tuple[int, int] | None) -> None:
        xr = self._xr
        self.system = open_system(self.instance)
        handle = self.instance.handle
        self._check_gl_requirements(handle)
        stereo = xr.ViewConfigurationType.PRIMARY_STEREO
        views = xr_call(
            "xrEnumerateViewConfigurationViews",
            xr.enumerate_view_configuration_views,
            handle,
            self.system,
            stereo,
        )
        if len(views) != 2:
            raise VrError(f"the runtime's primary stereo configuration has {len(views)} views")
        self.eye_size = self._eye_size(views[0], eye_size)
        modes = xr_call(
            "xrEnumerateEnvironmentBlendModes",
            xr.enumerate_environment_blend_modes,
            handle,
            self.system,
            stereo,
        )
        self._blend = xr.EnvironmentBlendMode(modes[0])
        self.blend_mode = self._blend.name
        from vr.render_gl import GlEyeRenderer

        self.renderer = GlEyeRenderer(
            *self.eye_size, platform="egl" if self.binding == "egl" else "glx"
        )
        self.session = xr_call(
            "xrCreateSession",
            xr.create_session,
            handle,
            xr.SessionCreateInfo(system_id=self.system, next=self._graphics_binding()),
        )
        self._make_spaces()
        formats = xr_call(
            "xrEnumerateSwapchainFormats", xr.enumerate_swapchain_formats, self.session
        )
        self.swapchain_format = choose_format(formats)
        self._swapchains = [
            Swapchain.create(self.session, self.swapchain_format, *self.eye_size, xr_call)
            for _ in range(2)
        ]
        from vr.openxr_actions import ControllerActions

        self.actions = ControllerActions(handle, self.session, xr_call)

    def _check_gl_requirements(self, handle) -> None:
        xr = self._xr
        needs = xr_call(
            "xrGetOpenGLGraphicsRequirementsKHR",
            xr.get_opengl_graphics_requirements_khr,
            handle,
            self.system,
        )
        low, high = needs.min_api_version_supported, needs.max_api_version_supported
        wanted = xr.Version(*GL_VERSION_NEEDED, 0)
        if not (low.number() <= wanted.number() <= high.number()):
            raise VrError(
                f"the OpenXR runtime supports OpenGL {low} to {high}; the renderer needs "
                f"{GL_VERSION_NEEDED[0]}.{GL_VERSION_NEEDED[1]}"
            )

    @staticmethod
    def _eye_size(view, wanted: tuple[int, int] | None) -> tuple[int, int]:
        if wanted is None:
            return int(view.recommended_image_rect_width), int(view.recommended_image_rect_height)
        return (
            max(1, min(int(wanted[0]), int(view.max_image_rect_width))),
            max(1, min(int(wanted[1]), int(view.max_image_rect_height))),
        )

    def _pick_binding(self, wanted: str) -> str:
        has_egl = "XR_MNDX_egl_enable" in self.instance.extensions
        if wanted == "auto":
            return "egl" if has_egl else "xlib"
        if wanted == "egl" and not has_egl:
            raise VrError(
                f"OpenXR runtime {self.runtime_name!r} does not offer XR_MNDX_egl_enable "
                "(the headless EGL binding); use the Xlib binding under X"
            )
        if wanted not in ("egl", "xlib"):
            raise VrError(f"binding must be 'auto', 'egl' or 'xlib', got {wanted!r}")
        return wanted

    def _graphics_binding(self):
        xr = self._xr
        context = self.renderer.context
        kind = (
            xr.GraphicsBindingEGLMNDX if self.binding == "egl" else xr.GraphicsBindingOpenGLXlibKHR
        )
        types = dict(kind._fields_)

        def handle(name: str, value: int):
            return ctypes.cast(ctypes.c_void_p(value or None), types[name])

        if self.binding == "xlib":
            return xr.GraphicsBindingOpenGLXlibKHR(
                x_display=handle("x_display", context.display),
                visualid=context.visualid,
                glx_fbconfig=handle("glx_fbconfig", context.fbconfig),
                glx_drawable=context.drawable,
                glx_context=handle("glx_context", context.context),
            )
        return xr.GraphicsBindingEGLMNDX(
            get_proc_address=ctypes.cast(
                ctypes.c_void_p(context.get_proc_address), xr.PFN_xrEglGetProcAddressMNDX
            ),
            display=handle("display", context.display),
            config=handle("config", context.config),
            context=handle("context", context.context),
        )

    def _make_spaces(self) -> None:
        xr = self._xr
        offered = xr_call("xrEnumerateReferenceSpaces", xr.enumerate_reference_spaces, self.session)
        kind = (
            xr.ReferenceSpaceType.STAGE
            if xr.ReferenceSpaceType.STAGE in [xr.ReferenceSpaceType(k) for k in offered]
            else xr.ReferenceSpaceType.LOCAL
        )
        self.reference_space = kind.name
        self._space = self._reference(kind)
        self._view_space = self._reference(xr.ReferenceSpaceType.VIEW)

    def _reference(self, kind):
        xr = self._xr
        space = xr_call(
            "xrCreateReferenceSpace",
            xr.create_reference_space,
            self.session,
            xr.ReferenceSpaceCreateInfo(
                reference_space_type=kind, pose_in_reference_space=xr.Posef()
            ),
        )
        self._spaces.append(space)
        return space

    # -- events and session -----------------------------------------------------------------
    def poll_events(self) -> Sequence[SessionState]:
        """Session states reported since the last poll (``xrPollEvent`` until empty).

        Raises
        ------
        RuntimeLostError
            The runtime announced that the instance is going away.
        """
        xr = self._xr
        states: list[SessionState] = []
        while True:
            try:
                event = xr.poll_event(self.instance.handle)
            except xr.EventUnavailable:
                return states
            except (xr.InstanceLostError, xr.SessionLostError) as error:
                raise RuntimeLostError(
                    f"xrPollEvent: the OpenXR runtime went away ({error})"
                ) from None
            except xr.XrException as error:
                raise VrError(f"xrPollEvent failed: {error}") from None
            kind = xr.StructureType(event.type)
            if kind == xr.StructureType.EVENT_DATA_INSTANCE_LOSS_PENDING:
                raise RuntimeLostError("the OpenXR runtime is going away (instance loss pending)")
            if kind == xr.StructureType.EVENT_DATA_SESSION_STATE_CHANGED:
                changed = ctypes.cast(
                    ctypes.byref(event), ctypes.POINTER(xr.EventDataSessionStateChanged)
                ).contents
                self.state = SessionState(int(changed.state))
                states.append(self.state)

    def wait_idle(self) -> None:
        """Sleep 5 ms (no frames are waited for while the session is not running)."""
        time.sleep(0.005)

    def begin_session(self) -> None:
        """``xrBeginSession`` (primary stereo)."""
        xr = self._xr
        xr_call(
            "xrBeginSession",
            xr.begin_session,
            self.session,
            xr.SessionBeginInfo(xr.ViewConfigurationType.PRIMARY_STEREO),
        )

    def end_session(self) -> None:
        """``xrEndSession``."""
        xr_call("xrEndSession", self._xr.end_session, self.session)

    def request_exit(self) -> None:
        """``xrRequestExitSession``."""
        xr_call("xrRequestExitSession", self._xr.request_exit_session, self.session)

    # -- frames -----------------------------------------------------------------------------
    def wait_frame(self) -> FrameTiming:
        """``xrWaitFrame``: the predicted display time (s of the runtime's clock)."""
        state = xr_call("xrWaitFrame", self._xr.wait_frame, self.session, self._xr.FrameWaitInfo())
        time_ns = int(state.predicted_display_time)
        seconds = time_ns / _NS_PER_S
        self._display_ns = {seconds: time_ns}
        return FrameTiming(
            seconds, int(state.predicted_display_period) / _NS_PER_S, bool(state.should_render)
        )

    def _ns(self, display_time_s: float) -> int:
        return self._display_ns.get(display_time_s, round(display_time_s * _NS_PER_S))

    def begin_frame(self) -> None:
        """``xrBeginFrame``."""
        xr_call("xrBeginFrame", self._xr.begin_frame, self.session, self._xr.FrameBeginInfo())

    def locate_views(self, display_time_s: float) -> LocatedViews:
        """Both eyes' poses and fields of view in the reference space at a display time, mm."""
        xr = self._xr
        time_ns = self._ns(display_time_s)
        _, views = xr_call(
            "xrLocateViews",
            xr.locate_views,
            self.session,
            xr.ViewLocateInfo(xr.ViewConfigurationType.PRIMARY_STEREO, time_ns, self._space),
        )
        head = xr_call("xrLocateSpace", xr.locate_space, self._view_space, self._space, time_ns)
        width, height = self.eye_size
        eyes = tuple(
            EyeView(
                _pose(v.pose),
                Fov(v.fov.angle_left, v.fov.angle_right, v.fov.angle_up, v.fov.angle_down),
                width,
                height,
            )
            for v in views
        )
        self._located = LocatedViews(_pose(head.pose), eyes)
        return self._located

    def view_index(self, view: EyeView) -> int:
        """Which located view (0 left, 1 right) ``view`` is."""
        if self._located is not None:
            for index, located in enumerate(self._located.views):
                if located is view:
                    return index
        raise VrError("render a view from this frame's locate_views")

    def head_anchor(self) -> np.ndarray | None:
        """The head's latest pose turned upright (position and heading only), 4x4 mm.

        ``None`` before the first located views. The rehearsal twin is placed relative to it.
        """
        if self._located is None:
            return None
        T = self._located.head.matrix()
        ahead = -T[:3, 2]
        heading = np.array([ahead[0], 0.0, ahead[2]])
        if np.linalg.norm(heading) < 1e-6:  # looking straight up or down: keep the axes
            heading = np.array([0.0, 0.0, -1.0])
        back = -heading / np.linalg.norm(heading)
        up = np.array([0.0, 1.0, 0.0])
        anchor = np.eye(4)
        anchor[:3, :3] = np.column_stack([np.cross(up, back), up, back])
        anchor[:3, 3] = T[:3, 3]
        return anchor

    def sample_controllers(self, display_time_s: float) -> ControllerSample | None:
        """Both controllers at a display time (``None`` unless the session has input focus)."""
        if self.actions is None or self.state is not SessionState.FOCUSED:
            return None
        return self.actions.sample(self._space, self._ns(display_time_s))

    def end_frame(
        self, display_time_s: float, layers: Sequence[ProjectionLayer | QuadLayer]
    ) -> None:
        """``xrEndFrame`` with the projection layer and any quad layers."""
        xr = self._xr
        built = [self._layer(layer) for layer in layers]
        info = xr.FrameEndInfo(
            display_time=self._ns(display_time_s),
            environment_blend_mode=self._blend,
            layers=[ctypes.byref(layer) for layer in built],
        )
        xr_call("xrEndFrame", xr.end_frame, self.session, info)

    def _layer(self, layer: ProjectionLayer | QuadLayer):
        if isinstance(layer, ProjectionLayer):
            return self._projection(layer)
        return self._quad_layer(layer)

    def _projection(self, layer: ProjectionLayer):
        xr = self._xr
        views = []
        for index, (view, image) in enumerate(zip(layer.views, layer.images, strict=True)):
            chain = self._swapchains[index]
            if not isinstance(image, SwapchainImage):
                chain.upload(image)
            views.append(
                xr.CompositionLayerProjectionView(
                    pose=_xr_pose(view.pose),
                    fov=xr.Fovf(
                        view.fov.angle_left,
                        view.fov.angle_right,
                        view.fov.angle_up,
                        view.fov.angle_down,
                    ),
                    sub_image=chain.sub_image(),
                )
            )
        return xr.CompositionLayerProjection(space=self._space, views=views)

    def _quad_layer(self, quad: QuadLayer):
        xr = self._xr
        height, width = quad.rgba.shape[:2]
        if self._quad is None or (self._quad.width, self._quad.height) != (width, height):
            if self._quad is not None:
                self._quad.destroy()
            self._quad = Swapchain.create(
                self.session, self.swapchain_format, width, height, xr_call
            )
            self._quad_image = None
        if self._quad_image is not quad.rgba:
            self._quad.upload(quad.rgba)
            self._quad_image = quad.rgba
        flags = (
            xr.CompositionLayerFlags.BLEND_TEXTURE_SOURCE_ALPHA_BIT
            | xr.CompositionLayerFlags.UNPREMULTIPLIED_ALPHA_BIT
        )
        space = self._view_space if quad.space == "view" else self._space
        return xr.CompositionLayerQuad(
            layer_flags=flags,
            space=space,
            eye_visibility=xr.EyeVisibility.BOTH,
            sub_image=self._quad.sub_image(),
            pose=_xr_pose(quad.pose),
            size=xr.Extent2Df(quad.size_mm[0] / 1000.0, quad.size_mm[1] / 1000.0),
        )

    # -- teardown ---------------------------------------------------------------------------
    def destroy_session(self) -> None:
        """Destroy the actions, swapchains, spaces and the session (each attempted).

        Raises
        ------
        VrError
            One or more destroy calls failed (all were attempted).
        """
        xr = self._xr
        errors: list[str] = []
        steps = [("actions", self.actions.destroy if self.actions else None)]
        steps += [("swapchain", chain.destroy) for chain in self._swapchains]
        steps += [("quad swapchain", self._quad.destroy if self._quad else None)]
        steps += [("space", lambda s=s: xr.destroy_space(s)) for s in self._spaces]
        if self.session is not None:
            steps.append(("session", lambda: xr.destroy_session(self.session)))
        for name, step in steps:
            if step is None:
                continue
            try:
                step()
            except (xr.XrException, VrError) as error:
                errors.append(f"{name}: {error}")
        self.actions, self._swapchains, self._quad, self._spaces = None, [], None, []
        self.session = None
        if errors:
            raise VrError(f"xrDestroy* failed: {'; '.join(errors)}")

    def destroy_instance(self) -> None:
        """Close the OpenGL context and ``xrDestroyInstance``."""
        if self.renderer is not None:
            self.renderer.close()
            self.renderer = None
        if self.instance is not None:
            try:
                self.instance.destroy()
            except self._xr.XrException as error:
                raise VrError(f"xrDestroyInstance failed: {error}") from None
            finally:
                self.instance = None


class SwapchainEyeRenderer:
    """Draws each eye straight into the backend's swapchain image (no read-back, no upload).

    Parameters
    ----------
    backend : OpenXrBackend
    """

    def __init__(self, backend: OpenXrBackend) -> None:
        self.backend = backend

    def render(self, scene: VrScene, view: EyeView) -> SwapchainImage:
        """Acquire the eye's image, render into it, release it."""
        backend = self.backend
        chain = backend._swapchains[backend.view_index(view)]
        texture = chain.acquire()
        try:
            backend.renderer.render_to_texture(scene, view, texture)
        finally:
            chain.release()
        return SwapchainImage(view.width, view.height)
