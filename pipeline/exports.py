"""Per-atom dH written for OVITO and ASE: extended XYZ (arrays dH, and dH_min, dH_max, dH_error
in approximate mode) and LAMMPS text dumps (columns d_dH, ...). Frames are rebuilt from the store: positions, numbers, cell, pbc,
atoms back in their file order."""

import os
from pathlib import Path

import numpy as np

from quests_core.descriptors import bounding_box

from . import ase_io
from .frames import Frame
from .store import DescriptorStore


def frames_with_values(store: DescriptorStore, values: dict[str, np.ndarray]):
    """(Frame, {name: per-atom values}) for every frame of the store, atoms in file order."""
    starts, counts = store.array("frame_start"), store.array("frame_n_atoms")
    cells, pbcs = store.array("frame_cell"), store.array("frame_pbc")
    for frame in range(store.n_frames):
        rows = slice(int(starts[frame]), int(starts[frame] + counts[frame]))
        order = np.argsort(store.group["env_atom"][rows])
        yield (Frame(store.group["env_position"][rows][order], store.group["env_number"][rows][order], cells[frame],
                     pbcs[frame]),
               {name: column[rows][order] for name, column in values.items()})


def write_atomically(path: Path, write) -> None:
    """write(temporary_path), then rename: a failed export leaves no file that looks complete."""
    partial = path.with_name(path.name + ".partial")
    try:
        write(partial)
        os.replace(partial, path)
    finally:
        partial.unlink(missing_ok=True)


def write_extxyz(path: Path, store: DescriptorStore, values: dict[str, np.ndarray]) -> None:
    write_atomically(Path(path), lambda target: ase_io.write_extxyz(target, frames_with_values(store, values)))


def write_lammps_dump(path: Path, store: DescriptorStore, values: dict[str, np.ndarray]) -> None:
    def write(target: Path) -> None:
        with open(target, "w") as handle:
            for index, (frame, columns) in enumerate(frames_with_values(store, values)):
                _write_dump_frame(handle, index, frame, columns)

    write_atomically(Path(path), write)


def _lammps_box(frame: Frame) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Positions rotated into LAMMPS' frame (a along x, b in the xy plane), box origin and
    the lower-triangular cell; an open structure without a cell gets its bounding box."""
    if np.linalg.matrix_rank(frame.cell) < 3:
        low, high = bounding_box(frame.positions)
        return frame.positions, low, np.diag(np.maximum(high - low, 1e-6))
    q, r = np.linalg.qr(frame.cell.T)
    signs = np.sign(np.diag(r))
    q, r = q * signs, (r.T * signs).T
    return frame.positions @ q, np.zeros(3), r.T


def _write_dump_frame(handle, index: int, frame: Frame, columns: dict[str, np.ndarray]) -> None:
    positions, origin, cell = _lammps_box(frame)
    (ax, _, _), (bx, by, _), (cx, cy, cz) = cell
    xy, xz, yz = bx, cx, cy
    xlo, ylo, zlo = origin
    xhi, yhi, zhi = xlo + ax, ylo + by, zlo + cz
    flags = " ".join("pp" if periodic else "ff" for periodic in frame.pbc)
    handle.write(f"ITEM: TIMESTEP\n{index}\nITEM: NUMBER OF ATOMS\n{len(frame)}\n")
    if xy or xz or yz:
        handle.write(f"ITEM: BOX BOUNDS xy xz yz {flags}\n"
                     f"{xlo + min(0, xy, xz, xy + xz):.10f} {xhi + max(0, xy, xz, xy + xz):.10f} {xy:.10f}\n"
                     f"{ylo + min(0, yz):.10f} {yhi + max(0, yz):.10f} {xz:.10f}\n{zlo:.10f} {zhi:.10f} {yz:.10f}\n")
    else:
        handle.write(f"ITEM: BOX BOUNDS {flags}\n{xlo:.10f} {xhi:.10f}\n{ylo:.10f} {yhi:.10f}\n{zlo:.10f} {zhi:.10f}\n")
    species = np.unique(frame.numbers)
    types = np.searchsorted(species, frame.numbers) + 1
    # d_NAME is LAMMPS' name for a per-atom custom double: ASE reads it back, OVITO shows it
    handle.write(f"ITEM: ATOMS id type element x y z {' '.join('d_' + name for name in columns)}\n")
    symbols = np.array(ase_io.chemical_symbols)[frame.numbers]
    table = np.column_stack([np.arange(1, len(frame) + 1), types, symbols, *positions.T.astype(str),
                             *[np.char.mod("%.10g", values) for values in columns.values()]])
    np.savetxt(handle, table, fmt="%s")
