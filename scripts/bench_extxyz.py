"""Time pipeline.extxyz against ase.io.read(..., format='extxyz'), in one run.

Writes, with ase.io.write, to a temporary folder:

- a snapshot of about --atoms atoms of perturbed FCC Cu with forces (as DFT and MD datasets
  carry them), and
- a trajectory of --frames frames of 256 atoms (4x4x4 FCC cells) with forces and an energy,
- the snapshot's positions written with repr (17 significant digits: the slow path),

then prints, for each, our reader (scan_frames + read_frame, or iter_frames) against
ase.io.read, best of --repeat, the speed-ups, our throughput in atoms/s against the ingest
target (70 % of the descriptors' ~150k atoms/s on 2 cores), and whether positions, numbers,
cell and pbc are exactly equal; then the atom-block parsers that were measured to choose ours
(numba kernel, numpy split + astype, numpy.loadtxt), and scan_frames on --copies copies of
the snapshot (from the page cache, as the file was just written: this measures the scan, not
the disk).

    python scripts/bench_extxyz.py                        # 1M atoms, 200 x 256 atoms
    python scripts/bench_extxyz.py --atoms 100000 --copies 3
"""

import argparse
import logging
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np

from pipeline.extxyz import _header, _parse_atoms, _read_atoms, iter_frames, read_frame, scan_frames

log = logging.getLogger("bench_extxyz")

LATTICE = 3.615  # Cu, Å
TARGET = 0.7 * 150_000  # atoms/s


def fcc_cu(n_atoms: int, rng: np.random.Generator):
    """A cubic FCC Cu supercell of about n_atoms atoms, perturbed by 0.05 Å, with forces."""
    from ase.build import bulk

    n = max(1, round((n_atoms / 4) ** (1 / 3)))
    atoms = bulk("Cu", "fcc", a=LATTICE, cubic=True).repeat(n)
    atoms.positions += rng.normal(0.0, 0.05, atoms.positions.shape)
    atoms.arrays["forces"] = rng.normal(0.0, 0.5, atoms.positions.shape)
    atoms.info["energy"] = -3.5 * len(atoms)
    return atoms


def best_of(repeat: int, function) -> tuple[float, object]:
    times, result = [], None
    for _ in range(repeat):
        started = time.perf_counter()
        result = function()
        times.append(time.perf_counter() - started)
    return min(times), result


def same(frame, atoms) -> bool:
    return (np.array_equal(frame.positions, atoms.positions) and np.array_equal(frame.numbers, atoms.numbers)
            and np.array_equal(frame.cell, atoms.cell.array) and np.array_equal(frame.pbc, atoms.pbc))


def compare(name: str, n_atoms: int, ours: float, theirs: float, equal: bool) -> None:
    log.info("%-28s ours %8.3f s   ase %8.3f s   speed-up %6.1f x   %9.0f atoms/s (%.0f x target)   %s",
             name, ours, theirs, theirs / ours, n_atoms / ours, n_atoms / ours / TARGET,
             "exactly equal" if equal else "DIFFERENT")


def parsers(path: Path, location, repeat: int) -> None:
    """The numba kernel against numpy on the atom block of the snapshot."""
    data = path.read_bytes()[location.offset:location.offset + location.size]
    _, comment, block = data.split(b"\n", 2)
    cell, pbc, layout = _header(comment)
    buf = np.frombuffer(bytearray(block + b"\n"), np.uint8)  # writable, as read_frame's
    n, n_columns = location.n_atoms, len(layout.labels)

    def kernel():
        return _read_atoms(buf, n, layout)

    def kernel_only():  # the parse alone, without the species table
        positions, kinds = np.empty((n, 3)), np.empty(n, np.int64)
        _parse_atoms(buf, layout.roles, positions, kinds, np.zeros(256, np.int64), np.empty(3 * n, np.int64),
                     np.empty(len(buf), np.uint8))
        return positions

    def split():
        columns = np.array(block.split()).reshape(n, n_columns)
        symbols, numbers = np.unique(columns[:, 0], return_inverse=True)
        return columns[:, 1:4].astype(np.float64), numbers

    def loadtxt():
        return np.loadtxt(block.splitlines(), usecols=(1, 2, 3))

    expected = kernel()[0]
    for name, function, times in (("numba kernel", kernel, repeat), ("numba parse alone", kernel_only, repeat),
                                  ("numpy split+astype", split, 1), ("numpy.loadtxt", loadtxt, 1)):
        seconds, result = best_of(times, function)
        positions = result[0] if isinstance(result, tuple) else result
        log.info("parse atom block: %-20s %8.3f s  %6.1f M atoms/s  %s", name, seconds, n / seconds / 1e6,
                 "equal" if np.array_equal(positions, expected) else "DIFFERENT")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--atoms", type=int, default=1_000_000, help="atoms in the snapshot (rounded to an FCC cube)")
    parser.add_argument("--frames", type=int, default=200, help="frames of 256 atoms in the trajectory")
    parser.add_argument("--copies", type=int, default=10, help="copies of the snapshot in the file scan_frames reads")
    parser.add_argument("--repeat", type=int, default=3, help="best of this many runs of our reader")
    parser.add_argument("--ase-repeat", type=int, default=1, help="best of this many runs of ASE")
    parser.add_argument("--dir", type=Path, default=None, help="folder for the files (default: a temporary one)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    import ase.io

    folder = Path(tempfile.mkdtemp(dir=args.dir, prefix="bench_extxyz_"))
    try:
        rng = np.random.default_rng(args.seed)
        started = time.perf_counter()
        snapshot = folder / "snapshot.extxyz"
        atoms = fcc_cu(args.atoms, rng)
        ase.io.write(snapshot, atoms, format="extxyz")
        trajectory = folder / "trajectory.extxyz"
        ase.io.write(trajectory, [fcc_cu(256, rng) for _ in range(args.frames)], format="extxyz")
        log.info("wrote %s (%d atoms, %.1f MB) and %s (%d x 256 atoms, %.1f MB) in %.1f s", snapshot.name,
                 len(atoms), snapshot.stat().st_size / 1e6, trajectory.name, args.frames,
                 trajectory.stat().st_size / 1e6, time.perf_counter() - started)

        started = time.perf_counter()
        list(iter_frames(trajectory))
        log.info("first call (numba cache load or compile): %.2f s", time.perf_counter() - started)

        def ours_snapshot():
            return read_frame(snapshot, scan_frames(snapshot)[0])

        ours, frame = best_of(args.repeat, ours_snapshot)
        theirs, reference = best_of(args.ase_repeat, lambda: ase.io.read(snapshot, format="extxyz"))
        compare("snapshot scan + read_frame", len(atoms), ours, theirs, same(frame, reference))
        location = scan_frames(snapshot)[0]
        seconds, _ = best_of(args.repeat, lambda: read_frame(snapshot, location))
        log.info("%-28s ours %8.3f s   (%.0f atoms/s)", "  read_frame alone", seconds, len(atoms) / seconds)

        n_atoms = 256 * args.frames
        ours, frames = best_of(args.repeat, lambda: list(iter_frames(trajectory)))
        theirs, references = best_of(args.ase_repeat, lambda: ase.io.read(trajectory, index=":", format="extxyz"))
        compare("trajectory iter_frames", n_atoms, ours, theirs,
                len(frames) == len(references) and all(map(same, frames, references)))
        locations = scan_frames(trajectory)
        seconds, _ = best_of(args.repeat, lambda: [read_frame(trajectory, loc) for loc in locations])
        log.info("%-28s ours %8.3f s   (%.0f us a frame)", "  read_frame each frame", seconds,
                 seconds / args.frames * 1e6)
        seconds, _ = best_of(args.repeat, lambda: scan_frames(trajectory))
        log.info("%-28s ours %8.3f s", "  scan_frames", seconds)

        parsers(snapshot, location, args.repeat)

        # the worst case: every number written as repr (up to 17 significant digits; about a
        # third of them need float(), as the kernel cannot round them exactly itself)
        digits17 = folder / "repr.extxyz"
        with open(digits17, "w") as f:
            f.write(f"{len(atoms)}\nProperties=species:S:1:pos:R:3\n")
            f.writelines(f"Cu {x!r} {y!r} {z!r}\n" for x, y, z in atoms.positions.tolist())
        seconds, frame = best_of(args.repeat, lambda: read_frame(digits17, scan_frames(digits17)[0]))
        log.info("%-28s ours %8.3f s   (%.0f atoms/s, %.1f x target)   %s", "snapshot written with repr",
                 seconds, len(atoms) / seconds, len(atoms) / seconds / TARGET,
                 "exactly equal" if np.array_equal(frame.positions, atoms.positions) else "DIFFERENT")

        many = folder / "many.extxyz"
        text = snapshot.read_bytes()
        with open(many, "wb") as f:
            for _ in range(args.copies):
                f.write(text)
        size = many.stat().st_size
        seconds, found = best_of(args.repeat, lambda: scan_frames(many))
        assert len(found) == args.copies
        log.info("scan_frames %d frames, %.2f GB: %.3f s (%.2f GB/s)", len(found), size / 1e9, seconds,
                 size / 1e9 / seconds)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
