"""The controller action set of the OpenXR backend: actions, suggested bindings, per-frame input.

One action set ``surgplan`` with three actions, each with the two hands as subaction paths:

- ``grab`` (float): the grip (squeeze); moves and scales the twin during rehearsal.
- ``cycle_layers`` (boolean): the trigger; shows the next layer.
- ``hand_pose`` (pose): the grip pose, located through one action space per hand.

Bindings are suggested for the common interaction profiles (:data:`SUGGESTED_BINDINGS`); the
runtime picks the one that matches the controllers it has. :meth:`ControllerActions.sample`
syncs the actions once per frame and returns a :class:`vr.controllers.ControllerSample`
with each hand's pose located in the reference space at the frame's display time (mm).
"""

from __future__ import annotations

from collections.abc import Callable

from vr.controllers import ControllerSample, HandSample
from vr.errors import VrError
from vr.views import pose_from_xr

__all__ = ["ACTION_SET_NAME", "HANDS", "SUGGESTED_BINDINGS", "ControllerActions"]

ACTION_SET_NAME = "surgplan"
HANDS = ("/user/hand/left", "/user/hand/right")

#: Interaction profile -> action -> input component (under each hand's path).
SUGGESTED_BINDINGS: dict[str, dict[str, str]] = {
    "/interaction_profiles/khr/simple_controller": {
        "grab": "input/select/click",
        "cycle_layers": "input/menu/click",
        "hand_pose": "input/grip/pose",
    },
    "/interaction_profiles/oculus/touch_controller": {
        "grab": "input/squeeze/value",
        "cycle_layers": "input/trigger/value",
        "hand_pose": "input/grip/pose",
    },
    "/interaction_profiles/valve/index_controller": {
        "grab": "input/squeeze/value",
        "cycle_layers": "input/trigger/click",
        "hand_pose": "input/grip/pose",
    },
    "/interaction_profiles/htc/vive_controller": {
        "grab": "input/squeeze/click",
        "cycle_layers": "input/trigger/click",
        "hand_pose": "input/grip/pose",
    },
    "/interaction_profiles/microsoft/motion_controller": {
        "grab": "input/squeeze/click",
        "cycle_layers": "input/trigger/value",
        "hand_pose": "input/grip/pose",
    },
}

_ACTIONS = (
    ("grab", "Grab the twin", "FLOAT_INPUT"),
    ("cycle_layers", "Cycle layers", "BOOLEAN_INPUT"),
    ("hand_pose", "Hand pose", "POSE_INPUT"),
)


class ControllerActions:
    """The action set, attached to a session, and its two hand action spaces.

    Parameters
    ----------
    instance, session : xr.Instance, xr.Session
        Handles.
    call : callable
        ``call(what, function, *args)``: the backend's wrapper that turns OpenXR errors into
        :class:`~vr.errors.VrError` / :class:`~vr.layers.RuntimeLostError`.
    """

    def __init__(self, instance, session, call: Callable) -> None:
        import xr

        self._xr, self._call, self._session = xr, call, session
        self.hand_paths = [call("xrStringToPath", xr.string_to_path, instance, p) for p in HANDS]
        self.action_set = call(
            "xrCreateActionSet",
            xr.create_action_set,
            instance,
            xr.ActionSetCreateInfo(
                action_set_name=ACTION_SET_NAME,
                localized_action_set_name="surgplan twin",
                priority=0,
            ),
        )
        self.actions = {
            name: call(
                "xrCreateAction",
                xr.create_action,
                self.action_set,
                xr.ActionCreateInfo(
                    action_type=getattr(xr.ActionType, kind),
                    action_name=name,
                    localized_action_name=label,
                    subaction_paths=self.hand_paths,
                ),
            )
            for name, label, kind in _ACTIONS
        }
        self._suggest(instance)
        call(
            "xrAttachSessionActionSets",
            xr.attach_session_action_sets,
            session,
            xr.SessionActionSetsAttachInfo(action_sets=[self.action_set]),
        )
        self.spaces = [
            call(
                "xrCreateActionSpace",
                xr.create_action_space,
                session,
                xr.ActionSpaceCreateInfo(action=self.actions["hand_pose"], subaction_path=path),
            )
            for path in self.hand_paths
        ]

    def _suggest(self, instance) -> None:
        xr = self._xr
        for profile, components in SUGGESTED_BINDINGS.items():
            bindings = [
                xr.ActionSuggestedBinding(
                    self.actions[action],
                    self._call("xrStringToPath", xr.string_to_path, instance, f"{hand}/{part}"),
                )
                for action, part in components.items()
                for hand in HANDS
            ]
            profile_path = self._call("xrStringToPath", xr.string_to_path, instance, profile)
            self._call(
                "xrSuggestInteractionProfileBindings",
                xr.suggest_interaction_profile_bindings,
                instance,
                xr.InteractionProfileSuggestedBinding(
                    interaction_profile=profile_path, suggested_bindings=bindings
                ),
            )

    def sample(self, reference_space, display_time_ns: int) -> ControllerSample:
        """Sync the actions and read both hands at a display time (call once per frame)."""
        xr = self._xr
        self._call(
            "xrSyncActions",
            xr.sync_actions,
            self._session,
            xr.ActionsSyncInfo(
                active_action_sets=[xr.ActiveActionSet(self.action_set, xr.NULL_PATH)]
            ),
        )
        hands = [
            self._hand(path, space, reference_space, display_time_ns)
            for path, space in zip(self.hand_paths, self.spaces, strict=True)
        ]
        return ControllerSample(hands[0], hands[1])

    def _state(self, getter: str, action: str, path):
        xr = self._xr
        info = xr.ActionStateGetInfo(action=self.actions[action], subaction_path=path)
        return self._call(getter, getattr(xr, getter), self._session, info)

    def _hand(self, path, space, reference_space, time_ns: int) -> HandSample:
        xr = self._xr
        grab = self._state("get_action_state_float", "grab", path)
        trigger = self._state("get_action_state_boolean", "cycle_layers", path)
        pose_state = self._state("get_action_state_pose", "hand_pose", path)
        pose = None
        if pose_state.is_active:
            location = self._call("xrLocateSpace", xr.locate_space, space, reference_space, time_ns)
            valid = (
                xr.SpaceLocationFlags.POSITION_VALID_BIT
                | xr.SpaceLocationFlags.ORIENTATION_VALID_BIT
            )
            if (int(location.location_flags) & int(valid)) == int(valid):
                p, q = location.pose.position, location.pose.orientation
                pose = pose_from_xr((p.x, p.y, p.z), (q.x, q.y, q.z, q.w))
        return HandSample(
            pose=pose,
            grab=float(grab.current_state) if grab.is_active else 0.0,
            trigger=bool(trigger.current_state) if trigger.is_active else False,
        )

    def destroy(self) -> None:
        """Destroy the hand spaces and the action set (its actions go with it)."""
        xr = self._xr
        errors = []
        for space in self.spaces:
            try:
                xr.destroy_space(space)
            except xr.XrException as error:
                errors.append(str(error))
        self.spaces = []
        try:
            xr.destroy_action_set(self.action_set)
        except xr.XrException as error:
            errors.append(str(error))
        if errors:
            raise VrError(f"destroying the controller actions failed: {'; '.join(errors)}")
