"""The twin on virtual patients: the issue's "Must show" figures, through the study engine.

1. The liver case (cached in ``--case-dir``; built when missing, as a user would):
   ``surgplan import-model`` of liver, tumour, portal and hepatic veins
   (``../shared/data/liver_models``), ``surgplan mesh`` (default 6 mm edge), ``surgplan rom``
   without a scenario (liver defaults, 30 centres, 100 modes).
2. ``--patients`` virtual patients (:func:`surgplan.virtual_patients.make_virtual_patients`,
   full FE, loads the ROM was not built from, 10-40 mm), cached as ``patients.npz`` there.
3. Two studies on Dask (:func:`surgplan.twin_study.run_twin_study`): good acquisitions
   (swabs and scan patches over 25 % of the anterior surface, 500 points, 1 mm noise, pose
   unknown, ``--repeats`` per patient and sensor; the recommendation experiment on the swab
   trials) and the bad cases (wrong organ, mirrored, 30 % outliers, wrong minimum, too few;
   swabs, ``--bad-repeats`` per patient and case).

Prints one JSON object: mean TRE at the tumour and the vessel points per mode and their ratio,
calibration per mode, the deformable verdict's flag and false-alarm rates, the
recommendation against random swabbing, and each patient's largest displacement.

Usage: nice python benchmarks/twin_virtual_patients.py --case-dir /tmp/twin_bench
       [--patients 10] [--repeats 5] [--bad-repeats 2] [--workers 2]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

LIVER = Path(__file__).resolve().parents[2] / "shared" / "data" / "liver_models"
STRUCTURES = (
    ("liver", "liver.vtk"),
    ("tumour", "liver_tumours.vtk"),
    ("portal_vein", "portal_vein.vtk"),
    ("hepatic_veins", "hepatic_veins.vtk"),
)
BAD = ("wrong_organ", "mirrored", "outliers30", "wrong_minimum", "too_few")
#: Heiselman et al. 2024 (liver Sparse Data Challenge): phantom, several-cm deformation.
SPARSE_DATA_CHALLENGE = {
    "rigid_tre_mm": [3.8, 7.7],
    "best_biomechanical_tre_mm": 3.1,
    "note": "Heiselman et al. 2024, liver phantom with several-centimetre deformation and its "
    "own sparse-data protocol: a different protocol from these virtual patients",
}


def _surgplan(*args: object) -> None:
    exe = Path(sys.executable).parent / "surgplan"
    subprocess.run([str(exe), *map(str, args), "--json"], check=True, stdout=subprocess.DEVNULL)


def build_case(folder: Path) -> Path:
    """The benchmark's liver case, built once (import-model x4, mesh, rom) and reused."""
    case = folder / "case"
    if (case / "rom" / "linear.npz").is_file():
        return case
    folder.mkdir(parents=True, exist_ok=True)
    for name, file in STRUCTURES:
        _surgplan("import-model", LIVER / file, case, "--structure", name)
    _surgplan("mesh", case)
    _surgplan("rom", case)
    return case


def _spec(case: Path, patients: Path, name: str, cases: list[str], sensors: list[str],
          repeats: int, recommend: bool) -> str:  # fmt: skip
    return (
        f'kind = "twin_virtual_patients"\nname = "{name}"\nseed = 0\nrepeats = {repeats}\n'
        f'case = "{case}"\ndecoy_surface = "{LIVER / "gallbladder.vtk"}"\n'
        f'modes = ["rigid", "deformable"]\n[patients]\nfile = "{patients}"\n'
        f"[protocol]\nsensor = {json.dumps(sensors)}\nn_points = [500]\n"
        f"anterior_coverage = [0.25]\nnoise_mm = [1.0]\nrotation_deg = [180.0]\n"
        f"translation_mm = [50.0]\ncase = {json.dumps(cases)}\n"
        f"[recommendation]\nenabled = {'true' if recommend else 'false'}\n"
    )


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--case-dir", type=Path, required=True)
    ap.add_argument("--patients", type=int, default=10)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--bad-repeats", type=int, default=2)
    ap.add_argument("--workers", type=int, default=2)
    args = ap.parse_args()
    from surgplan.twin_study import load_twin_spec, run_twin_study
    from surgplan.virtual_patients import make_virtual_patients, save_virtual_patients

    t0 = time.perf_counter()
    case = build_case(args.case_dir)
    patients = args.case_dir / f"patients_{args.patients}.npz"
    if not patients.is_file():
        save_virtual_patients(make_virtual_patients(LIVER, args.patients, 0), patients)
    t_setup = time.perf_counter() - t0
    summaries = {}
    for name, cases, sensors, reps, rec in (
        ("good", ["good"], ["swabs", "scan"], args.repeats, True),
        ("bad", list(BAD), ["swabs"], args.bad_repeats, False),
    ):
        spec_path = args.case_dir / f"{name}_{args.patients}_{reps}.toml"
        spec_path.write_text(_spec(case, patients, name, cases, sensors, reps, rec))
        out = run_twin_study(load_twin_spec(spec_path), args.case_dir / f"study_{name}_"
                             f"{args.patients}_{reps}", n_workers=args.workers)  # fmt: skip
        summaries[name] = json.loads(out.summary.read_text())
    good, bad = summaries["good"], summaries["bad"]
    result = {
        "n_trials": {"good": good["n_trials"], "bad": bad["n_trials"]},
        "patients": good["patients"],
        "tre_mean_mm": {
            mode: {g: good["tre_mm"][mode][g].get("mean") for g in ("tumour", "vessels", "all")}
            for mode in ("rigid", "deformable")
        },
        "tre_mm": good["tre_mm"],
        "tre_mean_mm_trusted": {
            mode: {
                g: good["tre_mm_trusted"][mode][g].get("mean") for g in ("tumour", "vessels", "all")
            }
            for mode in ("rigid", "deformable")
        },
        "n_trusted_good": {
            m: good["tre_mm_trusted"][m]["tumour"].get("n", 0) for m in ("rigid", "deformable")
        },
        "tre_mean_mm_by_sensor": good["by_sensor"],
        "deformable_over_rigid": good["deformable_over_rigid"],
        "goals": {
            "deformable_over_rigid_max": 0.7,
            "deformable_tumour_tre_max_mm": 3.0,
            "calibration": [0.90, 0.98],
            "bad_flagged_min": 0.99,
            "good_false_alarm_max": 0.05,
        },  # fmt: skip
        "calibration": {
            m: good["calibration"][m]["fraction_inside_radius95"] for m in ("rigid", "deformable")
        },  # fmt: skip
        "calibration_trusted": {
            m: good["calibration"][m].get("fraction_inside_radius95_trusted")
            for m in ("rigid", "deformable")
        },  # fmt: skip
        "calibration_successful": {
            m: good["calibration"][m].get("fraction_inside_radius95_successful")
            for m in ("rigid", "deformable")
        },  # fmt: skip
        "radius95_mean_mm": {
            m: {g: good["radius95_mm"][m][g].get("mean") for g in ("tumour", "vessels")}
            for m in ("rigid", "deformable")
        },  # fmt: skip
        "verdict": {
            m: {
                "good_false_alarm_rate": good["verdict"][m]["good_false_alarm_rate"],
                "good_success_rate": good["verdict"][m]["good_success_rate"],
                "good_false_alarm_rate_successful": good["verdict"][m][
                    "good_false_alarm_rate_successful"
                ],
                "good_missed_failures": good["verdict"][m]["good_missed_failures"],
                "bad_flag_rate_all": bad["verdict"][m]["bad_flag_rate_all"],
                "bad_cases": bad["verdict"][m]["bad_cases"],
            }
            for m in ("rigid", "deformable")
        },
        "recommendation": good["recommendation"],
        "sparse_data_challenge": SPARSE_DATA_CHALLENGE,
        "setup_s": t_setup,
        "total_s": time.perf_counter() - t0,
    }
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
