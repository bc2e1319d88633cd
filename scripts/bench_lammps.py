"""Time pipeline.lammps against ase.io.read on one large LAMMPS text dump, in one run.

Writes a perturbed FCC Cu supercell (shuffled atom order, as LAMMPS writes from several
processes) as a one-frame dump to a temporary folder, then prints:

- read_frame (from a byte offset, and from a FrameLocation) vs ase.io.read(path,
  format='lammps-dump-text') on that file, runs interleaved, fastest wall and CPU time of each,
  and the speed-up (target >= 10x); the largest position difference between the two;
- the atom-block parser (numba kernel) vs numpy.loadtxt and float(bytes.split()) on the same
  bytes, which is how the parser was chosen;
- scan_frames and iter_frames on a file of --frames copies of the frame (read from the page
  cache, as the file was just written: this measures the reader, not the disk).

CPU seconds are this process's (user + system); on a machine shared with other jobs they move
less than wall seconds do.

    python scripts/bench_lammps.py                       # 1M atoms, 10-frame scan file
    python scripts/bench_lammps.py --atoms 100000 --frames 50
"""

import argparse
import logging
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np

from pipeline.lammps import _parse_atoms, _species_table, iter_frames, read_frame, scan_frames

log = logging.getLogger("bench_lammps")

LATTICE = 3.615  # Cu, Å
SPECIES = {1: "Cu"}


def fcc_positions(n_atoms: int, rng: np.random.Generator) -> tuple[np.ndarray, float]:
    """A cubic FCC supercell of about n_atoms atoms, perturbed by 0.05 Å, wrapped into the box."""
    n = max(1, round((n_atoms / 4) ** (1 / 3)))
    basis = np.array([[0, 0, 0], [0.5, 0.5, 0], [0.5, 0, 0.5], [0, 0.5, 0.5]])
    cells = np.stack(np.meshgrid(*[np.arange(n)] * 3, indexing="ij"), axis=-1).reshape(-1, 1, 3)
    positions = ((cells + basis).reshape(-1, 3) * LATTICE + rng.normal(0, 0.05, (4 * n ** 3, 3)))
    length = n * LATTICE
    return positions % length, length


def frame_text(positions: np.ndarray, length: float, timestep: int, rng: np.random.Generator) -> bytes:
    """One dump frame, `id type x y z` with LAMMPS' 8 significant digits, atoms in random order."""
    n = len(positions)
    order = rng.permutation(n)
    rows = np.column_stack([order + 1, np.ones(n), positions[order]])
    body = tempfile.SpooledTemporaryFile()
    np.savetxt(body, rows, fmt=["%d", "%d", "%.8g", "%.8g", "%.8g"])
    body.seek(0)
    header = (f"ITEM: TIMESTEP\n{timestep}\nITEM: NUMBER OF ATOMS\n{n}\nITEM: BOX BOUNDS pp pp pp\n"
              f"0 {length!r}\n0 {length!r}\n0 {length!r}\nITEM: ATOMS id type x y z\n")
    return header.encode() + body.read()


def timed(function) -> tuple[float, float, object]:
    """(wall seconds, CPU seconds of this process, result) of one call."""
    wall, cpu = time.perf_counter(), time.process_time()
    result = function()
    return time.perf_counter() - wall, time.process_time() - cpu, result


def best_of(repeat: int, function) -> tuple[float, float, object]:
    """Fastest wall and CPU time of repeat calls (other jobs on the machine only slow a run)."""
    runs = [timed(function) for _ in range(repeat)]
    return min(r[0] for r in runs), min(r[1] for r in runs), runs[-1][2]


def atom_block(path: Path) -> tuple[bytes, int]:
    """The atom lines of the first frame, as bytes, and how many there are."""
    location = scan_frames(path)[0]
    with open(path, "rb") as f:
        f.seek(location.offset)
        frame = f.read(location.size)
    start = frame.index(b"\n", frame.index(b"ITEM: ATOMS")) + 1
    return frame[start:], location.n_atoms


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--atoms", type=int, default=1_000_000, help="atoms in the frame (rounded to an FCC cube)")
    parser.add_argument("--frames", type=int, default=10, help="frames in the file scan_frames reads")
    parser.add_argument("--repeat", type=int, default=3, help="best of this many runs of our reader")
    parser.add_argument("--ase-repeat", type=int, default=3, help="best of this many runs of ASE (at most --repeat)")
    parser.add_argument("--dir", type=Path, default=None, help="folder for the dumps (default: a temporary one)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    import ase.io

    folder = Path(tempfile.mkdtemp(dir=args.dir, prefix="bench_lammps_"))
    try:
        rng = np.random.default_rng(args.seed)
        positions, length = fcc_positions(args.atoms, rng)
        started = time.perf_counter()
        text = frame_text(positions, length, 0, rng)
        one = folder / "one.dump"
        one.write_bytes(text)
        log.info("wrote %s: %d atoms, %.1f MB in %.1f s", one, len(positions), len(text) / 1e6,
                 time.perf_counter() - started)

        started = time.perf_counter()
        small = folder / "small.dump"
        small.write_bytes(frame_text(positions[:4], length, 0, rng))
        read_frame(small, 0, SPECIES)
        log.info("first call (numba load or compile): %.2f s", time.perf_counter() - started)

        location = scan_frames(one)[0]
        contenders = {
            "read_frame(path, 0)": lambda: read_frame(one, 0, SPECIES),
            "read_frame(path, location)": lambda: read_frame(one, location, SPECIES),
            "ase.io.read": lambda: ase.io.read(one, format="lammps-dump-text"),
        }
        runs = {name: [] for name in contenders}
        names = list(contenders)
        for round_ in range(args.repeat):  # interleaved, in turn first, so that all see the same load
            for name in names[round_ % 3:] + names[:round_ % 3]:
                if name != "ase.io.read" or len(runs[name]) < args.ase_repeat:
                    runs[name].append(timed(contenders[name]))
        best = {name: (min(r[0] for r in rs), min(r[1] for r in rs)) for name, rs in runs.items()}
        frame, atoms = runs["read_frame(path, 0)"][-1][2], runs["ase.io.read"][-1][2]
        difference = np.abs(frame.positions - (atoms.positions - atoms.get_celldisp().ravel())).max()
        ase_wall, ase_cpu = best["ase.io.read"]
        log.info("%-28s %8s %8s %9s", "best of runs", "wall s", "CPU s", "speed-up")
        for name, (wall, cpu) in best.items():
            log.info("%-28s %8.3f %8.3f %8.1fx", name, wall, cpu, ase_wall / wall)
        log.info("(speed-up from CPU times: %.1fx from an offset, %.1fx from a location; max |position "
                 "difference| vs ASE %.1e Å)", ase_cpu / best["read_frame(path, 0)"][1],
                 ase_cpu / best["read_frame(path, location)"][1], difference)

        block, n = atom_block(one)
        roles = np.array([0, 1, 2, 3, 4], dtype=np.int64)
        table = _species_table(SPECIES, one)

        def kernel():
            ids, positions, numbers = np.empty(n, np.int64), np.empty((n, 3)), np.empty(n, np.int64)
            buf = np.frombuffer(block, np.uint8)
            _parse_atoms(buf, 0, 0, roles, table, np.zeros(3), np.eye(3), ids, positions, numbers,
                         np.empty((n, 2), np.int64), np.empty(len(buf), np.uint8))
            return positions

        def loadtxt():
            return np.loadtxt(block.splitlines(), usecols=(2, 3, 4))

        def split():
            return np.array(block.split(), dtype=float).reshape(n, 5)[:, 2:]

        for name, function in (("numba kernel", kernel), ("numpy.loadtxt", loadtxt), ("float(split)", split)):
            wall, cpu, _ = best_of(args.repeat if name == "numba kernel" else 1, function)
            log.info("parse atom block: %-14s %8.3f %8.3f", name, wall, cpu)

        many = folder / "many.dump"
        with open(many, "wb") as f:
            for step in range(args.frames):
                f.write(text.replace(b"ITEM: TIMESTEP\n0\n", f"ITEM: TIMESTEP\n{step}\n".encode(), 1))
        size = many.stat().st_size
        seconds, _, locations = best_of(args.repeat, lambda: scan_frames(many))
        assert [loc.timestep for loc in locations] == list(range(args.frames))
        log.info("scan_frames                  %8.3f s for %d frames, %.2f GB (%.2f GB/s)", seconds,
                 len(locations), size / 1e9, size / 1e9 / seconds)
        seconds, _, count = timed(lambda: sum(1 for _ in iter_frames(many, SPECIES)))
        log.info("iter_frames                  %8.3f s for %d frames (%.3f s a frame)", seconds, count,
                 seconds / count)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
