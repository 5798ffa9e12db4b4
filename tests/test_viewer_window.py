"""The real viewer window under a private Xvfb, driven with pytest-qt.

One window on a copy of the phantom case (liver, tumour, portal vein, bone with the CT) is
shared by the module; tests toggle structures, move slices, click slices and the 3D view,
measure, place targets and fiducials (checked in the saved ``.mrk.json``), undo, clip, and
check rendered pixels (structure colours in 3D, CT grey levels and label colours in slices).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PySide6.QtCore import QPoint, Qt
from PySide6.QtTest import QTest

from tests.viewer_cases import copy_case, hue_like, liver_like, phantom_viewer_case

pytest_plugins = ["tests.viewer_display"]


def wait_until(qapp, condition, timeout_s: float = 120.0) -> None:
    """Process Qt events until ``condition()`` holds (fails after ``timeout_s``)."""
    import time

    end = time.monotonic() + timeout_s
    while not condition():
        qapp.processEvents()
        time.sleep(0.01)
        assert time.monotonic() < end, "timed out waiting for the window"


@pytest.fixture(scope="module")
def case(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return copy_case(phantom_viewer_case(tmp_path_factory), tmp_path_factory.mktemp("viewer"))


@pytest.fixture(scope="module")
def window(qapp, case: Path):
    from surgplan.viewer.window import ViewerWindow

    w = ViewerWindow(case)
    w.show()
    wait_until(qapp, lambda: w.loaded or w.status.text().startswith("error"))
    assert w.loaded, w.status.text()
    yield w
    w.close()


def screenshot(window) -> np.ndarray:
    window.plotter.render()
    return np.asarray(window.plotter.screenshot(return_img=True))


def display_xy(window, point_mm) -> tuple[float, float]:
    """VTK display coordinates (pixels from the bottom left) of an LPS point."""
    ren = window.plotter.renderer
    ren.SetWorldPoint(*point_mm, 1.0)
    ren.WorldToDisplay()
    x, y, _ = ren.GetDisplayPoint()
    return x, y


def widget_point(window, point_mm) -> QPoint:
    x, y = display_xy(window, point_mm)
    ratio = window.plotter.devicePixelRatioF()
    return QPoint(round(x / ratio), round(window.plotter.height() - y / ratio))


def test_every_structure_in_its_colour_and_toggling(window) -> None:
    from surgplan.case import Case
    from surgplan.export import display_style
    from surgplan.render import STYLE

    case = Case.open(window.case_dir)
    assert display_style(case, "liver")[0] == pytest.approx(STYLE["liver"][0])
    assert liver_like(screenshot(window)).sum() > 2000
    window.set_structure_visible("liver", False)  # the others, seen without the organ
    img = screenshot(window)
    for name in ("tumour", "portal_vein", "bone"):
        assert hue_like(img, display_style(case, name)[0]).sum() > 150, name
    assert liver_like(img).sum() < 0.1 * liver_like(screenshot(window)).sum() + 50
    window.set_structure_visible("liver", True)
    tumour = display_style(case, "tumour")[0]
    window.set_structure_visible("liver", False)
    shown = hue_like(screenshot(window), tumour).sum()
    window.set_structure_visible("tumour", False)
    assert hue_like(screenshot(window), tumour).sum() < 0.05 * shown
    assert "tumour" not in window.visible_structures()
    window.set_structure_visible("tumour", True)
    assert hue_like(screenshot(window), tumour).sum() == shown
    window.set_structure_visible("liver", True)
    window.set_structure_opacity("liver", 1.0)  # an opaque liver hides the tumour inside it
    assert hue_like(screenshot(window), tumour).sum() < 0.05 * shown
    window.set_structure_opacity("liver", 0.35)


def test_liver_on_the_patients_right_seen_from_the_front(window) -> None:
    mask = liver_like(screenshot(window))
    cols = np.nonzero(mask)[1]
    assert cols.mean() < mask.shape[1] / 2  # LPS -x (patient right) on the viewer's left


def test_moving_a_slice_moves_the_crosshair(window) -> None:
    image = window.scene.image
    before = window.slice_views["axial"].rgb.copy()
    window.slice_views["axial"].slider.setValue(20)  # the widget, as a user drags it
    assert window.slice_index["axial"] == 20
    z = image.index_to_lps([0, 0, 20])[2]
    pts = np.asarray(window._crosshair.points)
    np.testing.assert_allclose(pts[:4, 2], z)  # the x and y lines lie in the axial slice
    assert not np.array_equal(before, window.slice_views["axial"].rgb)
    window.set_slice("axial", 45)
    assert window.slice_views["axial"].slider.value() == 45


def test_clicking_a_slice_moves_the_other_slices(window) -> None:
    window.set_slice("axial", 40)
    sv = window.slice_views["axial"]
    QTest.mouseClick(sv.picture, Qt.MouseButton.LeftButton, pos=sv.pixel_to_widget(60, 120))
    assert window.slice_index["sagittal"] == 120  # column = i
    assert window.slice_index["coronal"] == 60  # row = j
    assert window.slice_index["axial"] == 40


def test_slice_shows_ct_grey_with_the_label_colour_inside_the_organ(window) -> None:
    from surgplan.sample_data import REPO_SAMPLE_DIR, SampleData
    from surgplan.viewer.slices import PRESETS

    seed = np.asarray(SampleData(REPO_SAMPLE_DIR).seeds_lps_mm["liver"])
    window.set_preset("abdomen")
    window.set_crosshair(seed)
    image = window.scene.image
    i, j, k = image.lps_to_index(seed)
    rgb = window.slice_views["axial"].rgb
    liver_value = image.label_names.index("liver") + 1
    assert image.labels[k, j, i] == liver_value
    assert image.labels[k, j + 3, i + 3] == liver_value  # beside the crosshair lines
    grey = float(PRESETS["abdomen"].grey(image.ct[k, j + 3, i + 3]))
    expected = 0.55 * grey + 0.45 * image.label_colours[liver_value - 1].astype(float)
    np.testing.assert_allclose(rgb[j + 3, i + 3], expected, atol=1.0)
    assert rgb[2, 2].tolist() == [0, 0, 0]  # air outside the body is black
    body = (image.labels[k] == 0) & (image.ct[k] > -100) & (image.ct[k] < 100)
    r, c = np.argwhere(body)[0]
    assert (
        rgb[r, c, 0] == rgb[r, c, 1] == rgb[r, c, 2] == PRESETS["abdomen"].grey(image.ct[k, r, c])
    )
    # what is on screen: the label's pixmap at that pixel has the same colour
    sv = window.slice_views["axial"]
    shot = sv.picture.grab().toImage()
    p = sv.pixel_to_widget(j + 3, i + 3)
    ratio = shot.devicePixelRatio()
    pixel = shot.pixelColor(round(p.x() * ratio), round(p.y() * ratio))
    np.testing.assert_allclose(
        [pixel.red(), pixel.green(), pixel.blue()], rgb[j + 3, i + 3], atol=2
    )
    window.set_structure_visible("liver", False)  # hidden structure: no overlay in the slice
    assert np.ptp(window.slice_views["axial"].rgb[j + 3, i + 3]) == 0
    window.set_structure_visible("liver", True)


def test_window_level_presets(window) -> None:

    image = window.scene.image
    k = window.slice_index["axial"]
    body = (image.labels[k] == 0) & (image.ct[k] > -100) & (image.ct[k] < 100)
    r, c = np.argwhere(body)[0]
    hu = float(image.ct[k, r, c])
    for name, (width, level) in {"liver": (150, 30), "bone": (1800, 400)}.items():
        window.set_preset(name)
        expected = np.clip((hu - (level - width / 2)) * 255 / width, 0, 255)
        assert abs(int(window.slice_views["axial"].rgb[r, c, 0]) - expected) <= 1
        assert window.preset_box.currentText() == name
    window.set_preset("abdomen")


def test_clip_plane_removes_one_side(window) -> None:
    img = screenshot(window)
    w = img.shape[1]
    drawn = ~np.all(img[..., :3] > 245, axis=-1)
    assert drawn[:, : w // 3].sum() > 2000
    centre = np.asarray(window.plotter.bounds).reshape(3, 2).mean(axis=1)
    window.set_clip_plane(centre, (1.0, 0.0, 0.0))  # keep the patient's left (+x)
    window.plotter.remove_actor("crosshair")
    clipped = ~np.all(screenshot(window)[..., :3] > 245, axis=-1)
    assert clipped[:, : w // 3].sum() < 0.02 * drawn[:, : w // 3].sum()
    assert clipped[:, 2 * w // 3 :].sum() > 0.8 * drawn[:, 2 * w // 3 :].sum()
    window.clear_clip()
    assert window.clip_plane is None


def test_measure_distance_and_undo(window) -> None:
    window.set_mode("measure")
    a, b = np.array([-60.0, -10.0, -840.0]), np.array([-60.0, 20.0, -800.0])
    window.handle_pick(a)
    assert window.measurement_mm is None
    window.handle_pick(b)
    assert window.measurement_mm == pytest.approx(50.0)  # 3-4-5 triangle: 30 and 40 mm
    assert "50.0 mm" in window.measure_label.text()
    assert window.undo() == "measurement"
    assert window.measurement_mm is None
    window.set_mode("navigate")


def test_place_name_and_undo_targets_saved_as_slicer_markups(window) -> None:
    from registration.markups import read_slicer_markups

    window.set_mode("target")
    window.name_edit.setText("resection margin")
    window.handle_pick(np.array([-80.0, 10.0, -775.0]))
    window.set_mode("fiducial")
    window.handle_pick(np.array([-30.5, -20.25, -850.0]))
    path = window.case_dir / "targets" / "viewer_targets.mrk.json"
    points, labels = read_slicer_markups(path)
    np.testing.assert_allclose(points, [[-80.0, 10.0, -775.0]])
    assert labels == ["resection margin"]
    doc = json.loads(path.read_text())["markups"][0]
    assert doc["coordinateSystem"] == "LPS" and doc["name"] == "targets"
    fid, fid_labels = read_slicer_markups(window.case_dir / "markups" / "fiducials.mrk.json")
    np.testing.assert_allclose(fid, [[-30.5, -20.25, -850.0]])
    assert fid_labels == ["fiducial-1"]
    manifest = json.loads((window.case_dir / "case.json").read_text())
    assert manifest["artifacts"]["markups/targets"]["path"] == "targets/viewer_targets.mrk.json"
    assert window.undo() == "fiducial fiducial-1"
    assert not (window.case_dir / "markups" / "fiducials.mrk.json").exists()
    assert (
        "markups/fiducials"
        not in json.loads((window.case_dir / "case.json").read_text())["artifacts"]
    )
    assert path.is_file()  # the target stays
    assert window.undo() == "target resection margin"
    assert not path.exists()
    assert window.undo() is None
    window.set_mode("navigate")


def test_real_click_on_the_3d_view_picks_the_surface_under_the_cursor(window) -> None:
    from surgplan.viewer.markups_store import MarkupStore

    window.set_mode("target")
    tumour = window.scene.structure("tumour").mesh
    centre = np.asarray(tumour.center)
    click = widget_point(window, centre)
    QTest.mouseClick(window.plotter, Qt.MouseButton.LeftButton, pos=click)
    placed = MarkupStore(window.case_dir).of_kind("target")
    assert len(placed) == 1
    p = np.asarray(placed[0].position_mm)
    x, y = display_xy(window, p)  # the picked point lies under the clicked pixel...
    ratio = window.plotter.devicePixelRatioF()
    assert (
        abs(x / ratio - click.x()) <= 1.5
        and abs(window.plotter.height() - y / ratio - click.y()) <= 1.5
    )
    nearest = min(
        float(np.linalg.norm(s.mesh.find_closest_cell(p, return_closest_point=True)[1] - p))
        for s in window.scene.structures
    )
    assert nearest < 0.5  # ...on a drawn surface (mm from its nearest triangle)
    window.undo()
    window.set_mode("navigate")


def test_case_without_a_scan_opens_in_3d_only(qapp, tmp_path: Path, liver_models_dir: Path) -> None:
    from surgplan.model_import import import_model
    from surgplan.viewer.window import ViewerWindow

    case = tmp_path / "models"
    import_model(liver_models_dir / "liver_tumours.vtk", case, structure="tumour")
    w = ViewerWindow(case, load_async=False)
    w.show()
    assert w.loaded and w.scene.image is None
    assert w.slice_views == {} and w.slice_panel.isHidden()
    assert "no scan" in w.status.text()
    assert hue_like(screenshot(w), (1.0, 0.85, 0.10)).sum() > 500
    w.close()


def test_errors_are_shown_not_raised(qapp, tmp_path: Path, case: Path) -> None:
    from surgplan.viewer.window import ViewerWindow

    w = ViewerWindow(tmp_path / "nothing")
    wait_until(qapp, lambda: w.status.text().startswith("error"))
    assert "not a surgplan case" in w.status.text() and w.error_dialog.isVisible()
    w.close()
    broken = copy_case(case, tmp_path)
    (broken / "meshes" / "tumour.vtp").unlink()
    w = ViewerWindow(broken)
    wait_until(qapp, lambda: w.status.text().startswith("error"))
    assert "tumour.vtp" in w.status.text() and not w.loaded
    w.close()


def test_clamping_a_branch_drops_the_pressure_downstream(window, qapp) -> None:
    from biomech.vessel_tree import solve_flow
    from surgplan.viewer.clamp_panel import PRESSURE_ARRAY
    from surgplan.viewer.vessel_clamp import INLET_KPA, OUTLET_KPA

    assert window.clamp.vessel_box.currentText() == "portal_vein"
    window.clamp.load_button.click()
    wait_until(qapp, lambda: window.clamp.ready or window.status.text().startswith("error"))
    model = window.clamp.model
    assert window.clamp.branch_list.count() == len(model.branches) >= 5
    open_ = model.branch_pressures_kpa()
    assert np.all((open_ > OUTLET_KPA) & (open_ <= INLET_KPA))  # every branch perfused
    inlet = next(i for i, b in enumerate(model.branches) if model.tree.inlet in b.nodes)
    # a branch that is neither the inlet nor a leaf: clamping it cuts off what lies beyond
    leaves = {n for n in model.tree.outlets}
    inner = next(i for i, b in enumerate(model.branches)
                 if i != inlet and not (set(b.nodes) & leaves))  # fmt: skip
    window.clamp.branch_list.setCurrentRow(inner)
    window.clamp.clamp_button.click()
    p = window.clamp.pressures_kpa
    assert window.clamp.clamped == inner and np.isnan(p[inner])
    direct = solve_flow(model.tree, inlet_pressure_kpa=INLET_KPA, outlet_pressure_kpa=OUTLET_KPA,
                        clamped=[inner])  # fmt: skip
    seg = model.tree.segments
    expected = np.nan_to_num(direct.pressure_kpa, nan=OUTLET_KPA)[seg].mean(axis=1)
    np.testing.assert_allclose(np.delete(p, inner), np.delete(expected, inner))
    cut = np.delete(p, inner) < OUTLET_KPA + 1e-6
    assert cut.sum() >= 1 and (~cut).sum() >= 1  # some branches lose their supply, not all
    assert p[inlet] == pytest.approx(open_[inlet], abs=0.05)
    drawn = window.actors["portal_vein"].mapper.dataset.point_data[PRESSURE_ARRAY]
    assert np.nanmin(drawn) == pytest.approx(OUTLET_KPA) and np.nanmax(drawn) > 1.2


def test_live_follow_attached_to_the_window_is_closed_with_it(
    qapp, tmp_path: Path, liver_models_dir: Path
) -> None:
    import socket

    from surgplan.model_import import import_model
    from surgplan.viewer.app import attach_follow
    from surgplan.viewer.window import ViewerWindow

    case = tmp_path / "models"
    import_model(liver_models_dir / "liver_tumours.vtk", case, structure="tumour")
    w = ViewerWindow(case, load_async=False)
    w.show()
    with socket.socket() as s:  # a port nobody listens on: the client keeps reconnecting
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    controller = attach_follow(w, case, live=("127.0.0.1", port), session=None)
    assert w.controllers == [controller] and not controller._closed
    assert controller.connection_label.parent() is not None  # shown in the status bar
    w.close()
    assert controller._closed and w.controllers == []
