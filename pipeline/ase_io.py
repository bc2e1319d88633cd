"""ASE adapter: the one module of pipeline that imports ase. Reads any format ASE reads,
streaming (ase.io.iread), into plain Frames, writes extended XYZ, lends the periodic table
(atomic_numbers, chemical_symbols) to the other modules, and runs the EMT molecular dynamics
that makes example and benchmark data."""

from pathlib import Path

import numpy as np
from ase.data import atomic_numbers, chemical_symbols  # noqa: F401  (re-exported)

from .errors import InputError
from .frames import Frame


def guess_format(path: Path) -> str:
    from ase.io.formats import filetype, ioformats

    try:
        fmt = filetype(str(path), read=True)
    except Exception as error:  # ASE raises several types for unknown content
        raise InputError(f"cannot tell the file format ({error}); pass --format", path=path) from None
    if fmt not in ioformats or not ioformats[fmt].can_read:
        raise InputError(f"cannot tell the file format (looks like {fmt!r}, which cannot be read); pass --format",
                         path=path)
    return fmt


def check_format(fmt: str) -> None:
    from ase.io.formats import ioformats

    if fmt not in ioformats:
        raise InputError(f"unknown format {fmt!r}; use one ASE reads (see `ase info --formats`) or lammps-dump-text")


def frame_from_atoms(atoms) -> Frame:
    return Frame(
        positions=np.asarray(atoms.positions, dtype=np.float64),
        numbers=np.asarray(atoms.numbers, dtype=np.int64),
        cell=np.asarray(atoms.cell.array, dtype=np.float64),
        pbc=np.asarray(atoms.pbc, dtype=bool),
    )


def iterate(path: Path, fmt: str, start: int = 0, stop: int | None = None):
    """(index in file, Frame) for frames start..stop-1, streamed; errors name file and frame."""
    from ase.io import iread

    index = start
    try:
        for atoms in iread(str(path), index=slice(start, stop), format=fmt):
            yield index, frame_from_atoms(atoms)
            index += 1
    except InputError:
        raise
    except Exception as error:
        raise InputError(f"cannot read ({type(error).__name__}: {error})", path=path, frame=index) from None


def write_extxyz(path: Path, frames_and_values) -> None:
    """Write (Frame, {name: per-atom array}) pairs as extended XYZ with those arrays."""
    from ase import Atoms
    from ase.io import write

    def atoms():
        for frame, values in frames_and_values:
            structure = Atoms(numbers=frame.numbers, positions=frame.positions, cell=frame.cell, pbc=frame.pbc)
            for name, column in values.items():
                structure.new_array(name, np.asarray(column, dtype=np.float64))
            yield structure

    write(str(path), atoms(), format="extxyz")


def write_structures(path: Path, structures: list) -> None:
    """Write ase.Atoms structures as extended XYZ."""
    from ase.io import write

    write(str(path), structures, format="extxyz")


def md_frames(temperature: float, n_frames: int, *, element: str = "Cu", size: int = 3, interval: int = 20,
              equilibration: int = 200, melt_at: float | None = None, seed: int = 0, timestep_fs: float = 5.0):
    """ase.Atoms frames of Langevin MD (ASE's EMT calculator) of a cubic fcc supercell of
    size**3 cells at `temperature` (K), deterministic from seed. With melt_at, the crystal is
    first held at that temperature until it melts, then brought to `temperature`."""
    from ase import units
    from ase.build import bulk
    from ase.calculators.emt import EMT
    from ase.md.langevin import Langevin
    from ase.md.velocitydistribution import MaxwellBoltzmannDistribution

    atoms = bulk(element, "fcc", cubic=True) * (size, size, size)
    atoms.calc = EMT()
    rng = np.random.default_rng(seed)
    MaxwellBoltzmannDistribution(atoms, temperature_K=melt_at or temperature, rng=rng)
    if melt_at:
        Langevin(atoms, timestep_fs * units.fs, temperature_K=melt_at, friction=0.02, fixcm=False, rng=rng).run(400)
    dynamics = Langevin(atoms, timestep_fs * units.fs, temperature_K=temperature, friction=0.02, fixcm=False, rng=rng)
    dynamics.run(equilibration)
    frames = []
    for _ in range(n_frames):
        dynamics.run(interval)
        frame = atoms.copy()
        frame.calc = None
        frames.append(frame)
    return frames
