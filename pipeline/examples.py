"""Example datasets made on the fly, so the quick start needs no download: short Langevin
MD of a small fcc Cu crystal with ASE's EMT calculator, at a few temperatures. A config
names one as a dataset with `generate: NAME`; the frames are written once, deterministically
from the recipe's seed, to `<output.dir>/data/NAME-HASH.extxyz` (HASH: of the recipe).

ASE's calculator and dynamics are imported inside `md_frames` only (the adapter for reading
and writing structures stays pipeline.ase_io).
"""

import logging
from dataclasses import dataclass
from pathlib import Path

from .exports import write_atomically

log = logging.getLogger("quests_pipeline")


@dataclass(frozen=True)
class MdRecipe:
    temperature: float  # K
    seed: int
    element: str = "Cu"
    size: int = 3  # cubic fcc cells per side: 4 * size**3 atoms (108)
    n_frames: int = 4
    interval: int = 5  # MD steps between frames
    equilibration: int = 20  # MD steps before the first frame
    timestep_fs: float = 5.0


EXAMPLES = {
    "cu-300K": MdRecipe(temperature=300.0, seed=1),
    "cu-900K": MdRecipe(temperature=900.0, seed=2),
    "cu-1500K": MdRecipe(temperature=1500.0, seed=3),
}


def md_frames(recipe: MdRecipe) -> list:
    """ase.Atoms frames of Langevin MD of a cubic fcc supercell at the recipe's temperature."""
    import numpy as np
    from ase import units
    from ase.build import bulk
    from ase.calculators.emt import EMT
    from ase.md.langevin import Langevin

    atoms = bulk(recipe.element, "fcc", cubic=True).repeat(recipe.size)
    atoms.calc = EMT()
    rng = np.random.default_rng(recipe.seed)
    # Maxwell-Boltzmann momenta: each component normal with variance m kT
    masses = atoms.get_masses()[:, None]
    atoms.set_momenta(rng.normal(size=(len(atoms), 3)) * np.sqrt(masses * units.kB * recipe.temperature))
    dynamics = Langevin(atoms, recipe.timestep_fs * units.fs, temperature_K=recipe.temperature, friction=0.02,
                        fixcm=False, rng=rng)
    dynamics.run(recipe.equilibration)
    frames = []
    for _ in range(recipe.n_frames):
        dynamics.run(recipe.interval)
        frame = atoms.copy()
        frame.calc = None
        frames.append(frame)
    return frames


def generate(name: str, path: Path) -> Path:
    """Write example dataset `name` to path (extended XYZ) unless it is there already."""
    from ase.io import write

    path = Path(path)
    if not path.exists():
        log.info("generating example %s into %s (EMT molecular dynamics)", name, path)
        path.parent.mkdir(parents=True, exist_ok=True)
        frames = md_frames(EXAMPLES[name])
        write_atomically(path, lambda target: write(str(target), frames, format="extxyz"))
    return path
