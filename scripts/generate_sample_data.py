"""Regenerate ``sample_data/`` (the synthetic CT phantom) deterministically.

Usage::

    python scripts/generate_sample_data.py [--seed 0] [--output sample_data]

Writes ``phantom_ct.nii.gz``, ``phantom_labels.nrrd``, ``phantom_labels.json``,
``phantom.json`` and the ``phantom_dicom/`` series; the same seed gives byte-identical files.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from rich.console import Console

from surgplan.phantom import PhantomError, generate_phantom, write_sample_data

REPO_ROOT = Path(__file__).resolve().parents[1]
MAX_TOTAL_MB = 20.0


def folder_size_mb(folder: Path) -> float:
    return sum(f.stat().st_size for f in folder.rglob("*") if f.is_file()) / 1e6


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=0, help="phantom seed (default 0)")
    parser.add_argument(
        "--output", type=Path, default=REPO_ROOT / "sample_data", help="destination folder"
    )
    args = parser.parse_args(argv)
    console = Console()
    try:
        start = time.perf_counter()
        with console.status(f"Generating the phantom (seed {args.seed})..."):
            phantom = generate_phantom(seed=args.seed)
        generated = time.perf_counter()
        with console.status(f"Writing {args.output}..."):
            paths = write_sample_data(phantom, args.output)
        written = time.perf_counter()
    except PhantomError as exc:
        console.print(f"[red]error:[/red] {exc}")
        return 1
    for role, path in paths.items():
        console.print(f"{role:12s} {path}")
    size = folder_size_mb(args.output)
    console.print(
        f"liver {phantom.volume_ml('liver'):.0f} ml, tumour {phantom.volume_ml('tumour'):.1f} ml; "
        f"generated in {generated - start:.1f} s, written in {written - generated:.1f} s; "
        f"{size:.1f} MB in {args.output}"
    )
    if size > MAX_TOTAL_MB:
        console.print(f"[red]error:[/red] sample data is {size:.1f} MB, over {MAX_TOTAL_MB} MB")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
