"""Test and benchmark data from ASE's EMT calculator: MD of fcc metals at several
temperatures, a liquid, slabs and clusters. Nothing here is committed data: every file is
made on demand, deterministically from a seed.

    python scripts/make_md.py OUT_DIR [--size 3] [--frames 20]

writes cu_300K.extxyz, cu_1300K.extxyz and cu_liquid.extxyz (3x3x3 cubic cells, 108 atoms).
"""

import argparse
from pathlib import Path

from pipeline.ase_io import md_frames, write_structures


def standard_set(out: Path, size: int = 3, n_frames: int = 20) -> dict[str, Path]:
    """The cold reference, hot crystal and liquid used by the approximate-accuracy checks."""
    out.mkdir(parents=True, exist_ok=True)
    recipes = {
        "cu_300K": dict(temperature=300.0, seed=1),
        "cu_1300K": dict(temperature=1300.0, seed=2),
        "cu_liquid": dict(temperature=1800.0, melt_at=4000.0, seed=3),
    }
    paths = {}
    for name, recipe in recipes.items():
        path = out / f"{name}.extxyz"
        if not path.exists():
            write_structures(path, md_frames(n_frames=n_frames, size=size, **recipe))
        paths[name] = path
    return paths


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("out", type=Path)
    parser.add_argument("--size", type=int, default=3, help="cubic cells per side")
    parser.add_argument("--frames", type=int, default=20)
    args = parser.parse_args()
    for name, path in standard_set(args.out, args.size, args.frames).items():
        print(name, path)


if __name__ == "__main__":
    main()
