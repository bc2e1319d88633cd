"""Test and benchmark data from ASE's EMT calculator: MD of fcc metals at several
temperatures, a liquid, slabs and clusters. Nothing here is committed data: every file is
made on demand, deterministically from a seed.

    python scripts/make_md.py OUT_DIR [--size 3] [--frames 20]

writes cu_300K.extxyz, cu_1300K.extxyz and cu_liquid.extxyz (3x3x3 cubic cells, 108 atoms).
"""

import argparse
from pathlib import Path

import numpy as np
from ase import units
from ase.build import bulk
from ase.calculators.emt import EMT
from ase.io import write
from ase.md.langevin import Langevin
from ase.md.velocitydistribution import MaxwellBoltzmannDistribution


def md_frames(temperature: float, n_frames: int, *, element: str = "Cu", size: int = 3, interval: int = 20,
              equilibration: int = 200, melt_at: float | None = None, seed: int = 0, timestep_fs: float = 5.0):
    """Frames of Langevin MD of a cubic fcc supercell at `temperature` (K). With melt_at, the
    crystal is first held at that temperature until it melts, then cooled to `temperature`."""
    atoms = bulk(element, "fcc", cubic=True) * (size, size, size)
    atoms.calc = EMT()
    rng = np.random.default_rng(seed)
    MaxwellBoltzmannDistribution(atoms, temperature_K=melt_at or temperature, rng=rng)
    if melt_at:
        Langevin(atoms, timestep_fs * units.fs, temperature_K=melt_at, friction=0.02, rng=rng).run(400)
    dynamics = Langevin(atoms, timestep_fs * units.fs, temperature_K=temperature, friction=0.02, rng=rng)
    dynamics.run(equilibration)
    frames = []
    for _ in range(n_frames):
        dynamics.run(interval)
        frame = atoms.copy()
        frame.calc = None
        frames.append(frame)
    return frames


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
            write(path, md_frames(n_frames=n_frames, size=size, **recipe))
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
