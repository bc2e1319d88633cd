"""Example datasets made on the fly, so the quick start needs no download: short Langevin
MD of a small fcc Cu crystal with ASE's EMT calculator, at a few temperatures. A config
names one as a dataset with `generate: NAME`; the frames are written once, deterministically
from the recipe's seed, to `<output.dir>/data/NAME-HASH.extxyz` (HASH: of the recipe).

The MD runs in pipeline.ase_io.md_frames (the one module that imports ASE).
"""

import logging
from pathlib import Path

from .exports import write_atomically

log = logging.getLogger("quests_pipeline")


EXAMPLES = {  # keyword arguments of pipeline.ase_io.md_frames: 108 Cu atoms, 4 frames
    name: dict(temperature=temperature, seed=seed, n_frames=4, interval=5, equilibration=20)
    for name, temperature, seed in (("cu-300K", 300.0, 1), ("cu-900K", 900.0, 2), ("cu-1500K", 1500.0, 3))
}


def generate(name: str, path: Path) -> Path:
    """Write example dataset `name` to path (extended XYZ) unless it is there already."""
    from .ase_io import md_frames, write_structures

    path = Path(path)
    if not path.exists():
        log.info("generating example %s into %s (EMT molecular dynamics)", name, path)
        path.parent.mkdir(parents=True, exist_ok=True)
        frames = md_frames(**EXAMPLES[name])
        write_atomically(path, lambda target: write_structures(target, frames))
    return path
