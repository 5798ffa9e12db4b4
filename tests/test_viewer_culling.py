"""Back-face culling and the translucency pass: faster frames, the same picture.

The viewer culls back faces of closed outward-wound surfaces and turns VTK's
order-independent translucency off when a single culled actor is translucent
(:mod:`surgplan.viewer.actors`). These tests check which surfaces qualify and that the
picture rendered offscreen is the one the order-independent pass gives.
"""

from __future__ import annotations

import numpy as np
import pyvista as pv

from surgplan.viewer.actors import encloses_outward, pick_translucency


def _flipped(mesh: pv.PolyData) -> pv.PolyData:
    f = np.asarray(mesh.regular_faces)[:, ::-1]
    return pv.PolyData(np.asarray(mesh.points), np.hstack([np.full((len(f), 1), 3), f]))


def test_only_closed_outward_surfaces_qualify() -> None:
    sphere = pv.Sphere(radius=20.0, theta_resolution=24, phi_resolution=24).clean()
    assert encloses_outward(sphere)
    assert not encloses_outward(_flipped(sphere))  # wound inward: culling would hide the front
    cut = (
        sphere.clip(normal="z", origin=(0, 0, 5.0))
        .extract_surface(algorithm="dataset_surface")
        .triangulate()
    )
    assert cut.n_open_edges > 0
    assert not encloses_outward(cut)  # open: its inside shows through the hole
    assert not encloses_outward(pv.PolyData())


def _scene(culled: bool) -> pv.Plotter:
    plotter = pv.Plotter(off_screen=True, window_size=(320, 320))
    organ = pv.Sphere(radius=40.0, theta_resolution=48, phi_resolution=48).clean()
    organ.points[:, 0] *= 1.0 + 0.3 * np.sin(organ.points[:, 2] / 8.0)  # folds that overlap
    lesion = pv.Sphere(radius=12.0, center=(5.0, 0.0, 0.0))
    plotter.add_mesh(lesion, color="yellow", smooth_shading=True)
    actor = plotter.add_mesh(organ, color="tan", opacity=0.35, smooth_shading=True)
    actor.prop.culling = "back" if culled else "none"
    plotter.view_xz()
    return plotter


def test_one_culled_translucent_organ_renders_as_the_order_independent_pass() -> None:
    plotter = _scene(culled=True)
    assert pick_translucency(plotter.renderer) is False
    plain = plotter.screenshot(return_img=True).astype(float)
    plotter.renderer.SetUseOIT(True)
    oit = plotter.screenshot(return_img=True).astype(float)
    plotter.close()
    diff = np.abs(plain - oit).max(axis=2)
    assert (diff > 0).any() or plain.std() > 10  # a real picture, not a blank frame
    assert diff.max() <= 16.0
    assert diff.mean() < 0.5
    yellow = (plain[..., 0] > 120) & (plain[..., 1] > 120) & (plain[..., 2] < 110)
    assert yellow.mean() > 0.005  # the lesion shows through the organ


def test_two_translucent_or_unculled_keep_the_order_independent_pass() -> None:
    plotter = _scene(culled=False)
    assert pick_translucency(plotter.renderer) is True
    plotter.close()
    plotter = _scene(culled=True)
    plotter.add_mesh(pv.Cube(center=(60.0, 0.0, 0.0), x_length=10.0), opacity=0.5)
    assert pick_translucency(plotter.renderer) is True
    plotter.close()
    plotter = pv.Plotter(off_screen=True, window_size=(64, 64))
    plotter.add_mesh(pv.Sphere())
    assert pick_translucency(plotter.renderer) is False  # nothing translucent
    plotter.close()
