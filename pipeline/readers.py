"""Structure files to Frames: format choice, scanning (frame sizes, and byte offsets where
the format allows random access) and reading selected frames, streamed."""

import re
from dataclasses import dataclass
from pathlib import Path

from . import ase_io
from .errors import InputError
from .frames import Frame

LAMMPS_DUMP = "lammps-dump-text"
EXTXYZ = "extxyz"
_LAMMPS_SUFFIXES = (".lammpstrj", ".dump")
_EXTXYZ_SUFFIXES = (".extxyz",)


@dataclass(frozen=True)
class FrameRef:
    index: int  # position of the frame in its file
    n_atoms: int
    offset: int = -1  # byte offset for random access, -1 where the format has none
    size: int = -1  # bytes of the frame from offset


@dataclass(frozen=True)
class FrameSelection:
    """START:STOP:STEP over the frames of each file (non-negative, so files can be streamed)."""

    start: int = 0
    stop: int | None = None
    step: int = 1

    @classmethod
    def parse(cls, text: str | None) -> "FrameSelection":
        if text is None or text in ("", ":", "::"):
            return cls()
        match = re.fullmatch(r"(\d*)(?::(\d*))?(?::(\d*))?", text.strip())
        if not match:
            raise InputError(f"frames {text!r} is not START:STOP:STEP with non-negative integers")
        start, stop, step = (int(part) if part else None for part in match.groups())
        if match.group(2) is None and text.count(":") == 0:  # a single index
            stop = start + 1
        if step == 0:
            raise InputError(f"frames {text!r}: STEP must be >= 1")
        return cls(start or 0, stop, step or 1)

    def __str__(self) -> str:
        return f"{self.start}:{'' if self.stop is None else self.stop}:{self.step}"

    def selects(self, index: int) -> bool:
        return index >= self.start and (self.stop is None or index < self.stop) and (index - self.start) % self.step == 0


def _lammps():
    from . import lammps

    return lammps


def _extxyz():
    from . import extxyz

    return extxyz


# formats read by our own readers (random access by byte offset); all others go through ASE
_FAST_READERS = {LAMMPS_DUMP: _lammps, EXTXYZ: _extxyz}


def resolve_format(path: Path, fmt: str | None) -> str:
    if not path.is_file():
        raise InputError("no such file", path=path)
    if fmt:
        if fmt != LAMMPS_DUMP:
            ase_io.check_format(fmt)
        return fmt
    if path.suffix.lower() in _LAMMPS_SUFFIXES:
        return LAMMPS_DUMP
    if path.suffix.lower() in _EXTXYZ_SUFFIXES:  # ASE would read the head of the file to say the same
        return EXTXYZ
    return ase_io.guess_format(path)


def scan(path: Path, fmt: str, selection: FrameSelection) -> list[FrameRef]:
    """The selected frames of a file, with their atom counts."""
    if fmt in _FAST_READERS:
        located = _FAST_READERS[fmt]().scan_frames(path)
        refs = [FrameRef(i, loc.n_atoms, loc.offset, loc.size) for i, loc in enumerate(located) if selection.selects(i)]
    else:
        refs = [FrameRef(i, len(frame)) for i, frame in ase_io.iterate(path, fmt, selection.start, selection.stop)
                if selection.selects(i)]
    if not refs:
        raise InputError(f"no frames selected (frames {selection})", path=path)
    return refs


def read(path: Path, fmt: str, refs: list[FrameRef], species: dict | None):
    """Frames for refs (ascending index), streamed: yields (ref, Frame)."""
    if fmt == LAMMPS_DUMP:
        from . import lammps

        for ref in refs:
            yield ref, lammps.read_frame(path, lammps.FrameLocation(ref.offset, ref.n_atoms, -1, ref.index, ref.size),
                                         species or {})
        return
    if fmt == EXTXYZ:
        from . import extxyz

        for ref in refs:
            yield ref, extxyz.read_frame(path, extxyz.FrameLocation(ref.offset, ref.n_atoms, ref.index, ref.size))
        return
    wanted = {ref.index: ref for ref in refs}
    for index, frame in ase_io.iterate(path, fmt, refs[0].index, refs[-1].index + 1):
        if index in wanted:
            yield wanted[index], frame


def read_piece(path: Path, fmt: str, ref: FrameRef, species: dict | None, piece: int, n_pieces: int):
    """(Frame, ids) of piece `piece` of `n_pieces` of one frame's atoms, in file order: a near
    equal share of its atom lines, read alone by our own readers; ids are LAMMPS atom ids, or
    None where atoms are numbered by their line (the piece's atoms follow those of the pieces
    before it). Formats read through ASE are read whole, and the piece is a share of the atoms."""
    if fmt == LAMMPS_DUMP:
        from . import lammps

        return lammps.read_piece(path, lammps.FrameLocation(ref.offset, ref.n_atoms, -1, ref.index, ref.size),
                                 species or {}, piece, n_pieces)
    if fmt == EXTXYZ:
        from . import extxyz

        return extxyz.read_piece(path, extxyz.FrameLocation(ref.offset, ref.n_atoms, ref.index, ref.size),
                                 piece, n_pieces), None
    (_, frame), = read(path, fmt, [ref], species)
    share = slice(len(frame) * piece // n_pieces, len(frame) * (piece + 1) // n_pieces)
    return Frame(frame.positions[share], frame.numbers[share], frame.cell, frame.pbc), None
