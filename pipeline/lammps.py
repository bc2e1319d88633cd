"""Fast reader of LAMMPS text dumps (``dump atom`` / ``dump custom``): find the frames of a
file, read any one of them by its byte offset, or stream them all; `read_piece` reads a share
of one frame's atom lines alone, so that several tasks read a large frame together.

A frame of a text dump is::

    ITEM: TIMESTEP
    1000
    ITEM: NUMBER OF ATOMS
    4
    ITEM: BOX BOUNDS xy xz yz pp pp fm       orthogonal box: ITEM: BOX BOUNDS pp pp fm
    xlo_bound xhi_bound xy                   orthogonal box: xlo xhi
    ylo_bound yhi_bound xz                                   ylo yhi
    zlo_bound zhi_bound yz                                   zlo zhi
    ITEM: ATOMS id type x y z vx c_pe
    3 1 0.1 0.2 0.3 1.5 -3.2                 NUMBER OF ATOMS lines, in any order of id

``ITEM: UNITS`` and ``ITEM: TIME`` may precede ``ITEM: TIMESTEP`` (``dump_modify units yes`` /
``time yes``); ``ITEM: BOX BOUNDS abc origin pp pp pp`` (general triclinic, one
``ax ay az origin_x`` line per cell vector) is read too.

What a `Frame` holds:

- ``cell`` rows are the LAMMPS vectors a = (xhi - xlo, 0, 0), b = (xy, yhi - ylo, 0),
  c = (xz, yz, zhi - zlo), where a triclinic box's xlo, xhi, ylo, yhi are its bounds with the
  tilt taken off: xlo = xlo_bound - min(0, xy, xz, xy + xz), xhi = xhi_bound - max(0, xy, xz,
  xy + xz), ylo = ylo_bound - min(0, yz), yhi = yhi_bound - max(0, yz).
- ``positions`` are Cartesian, in Å, **relative to the box origin** (xlo, ylo, zlo): the origin
  is subtracted, so the fractional coordinates ``positions @ inv(cell)`` of wrapped atoms lie in
  [0, 1), and a file written with ``x y z`` or with ``xs ys zs`` gives the same positions. (ASE
  keeps the origin in ``positions`` for ``x y z`` and stores it as ``celldisp``; for ``xs ys zs``
  it leaves it out.) Positions are not wrapped: ``xu yu zu`` stay unwrapped.
- Which coordinates: the first complete set of ``x y z``, ``xs ys zs``, ``xu yu zu``,
  ``xsu ysu zsu`` (ASE's order). Other columns (vx, q, c_pe, element, ...) are skipped unread.
- ``numbers`` come from the LAMMPS types through ``species`` ({1: 'Cu', 2: 'Ni'}).
- Atoms are sorted by id. ``pbc`` is True along an axis whose boundary flag is ``pp``; any
  other flag (``ff``, ``ss``, ``fs``, ``sm``, ...) is not periodic.
- Lengths are taken to be Å (LAMMPS ``metal`` and ``real`` units). A frame with
  ``ITEM: UNITS`` is converted to Å (si, cgs, electron, micro, nano); ``lj`` is refused.

Speed: nothing loops over atoms in Python. `scan_frames` reads each header, then skips the
NUMBER OF ATOMS lines by counting newlines over large byte blocks (a numba kernel, ~4 GB/s).
`read_frame` and `iter_frames` read the atom lines a block of whole lines at a time (at most
4 MiB held, in a reused buffer) and parse each block with a numba kernel that converts only
the id, type and position columns, with no line count first; atoms not already in id order
are then put in it by placing each at row id - low (LAMMPS' ids 1..N, in any order), by
counting (ids with a few gaps) or by argsort (sparse ids). Numbers come out exactly as
float() reads them: the parser of `pipeline.textparse` rounds most itself and leaves the rest
(17 or more significant digits, or a decimal exponent beyond +-22) to float(). Measured on one
1M-atom frame by ``scripts/bench_lammps.py`` (a shared 2-core machine, so timings are noisy):
the kernel parsed the atom lines in ~0.1 s of CPU where numpy.loadtxt took ~0.9 s and
float(bytes.split()) ~1.5 s, and read_frame was 11-20x faster than ase.io.read in wall time.

Errors in the file raise `InputError` naming the file and the frame's 0-based index in it.
"""

import logging
import operator
import os
import stat
import time
from dataclasses import dataclass, replace

import numba
import numpy as np
from .ase_io import atomic_numbers, chemical_symbols

from .errors import InputError
from .frames import Frame
from .textparse import INEXACT, INVALID, line_piece, parse_float, parse_int

__all__ = ["FrameLocation", "scan_frames", "read_frame", "read_piece", "iter_frames"]

log = logging.getLogger(__name__)

# nogil so Dask worker threads parse frames side by side; no fastmath: parsing rounds exactly.
_JIT = dict(nogil=True, cache=True)

_BLOCK = 1 << 20  # first read at a frame: its header, and the whole of a small frame
_MAX_BLOCK = 1 << 22  # later reads: at most 4 MiB at a time (a buffer reused block to block)
_MAX_HEADER_LINE = 1 << 16
_MAX_UNKNOWN_ITEM_LINES = 16

_HEADER_LINES = {"UNITS": 1, "TIME": 1, "TIMESTEP": 1, "NUMBER OF ATOMS": 1, "BOX BOUNDS": 3}
_POSITION_COLUMNS = (("x", "y", "z"), ("xs", "ys", "zs"), ("xu", "yu", "zu"), ("xsu", "ysu", "zsu"))
_SCALED = ("xs", "xsu")
_LENGTH_IN_ANGSTROM = {"metal": 1.0, "real": 1.0, "electron": 0.529177210903, "nano": 10.0,
                       "micro": 1e4, "cgs": 1e8, "si": 1e10}

# column roles for the parser
_SKIP, _ID, _TYPE, _X = -1, 0, 1, 2


@dataclass(frozen=True)
class FrameLocation:
    """Where one frame of a dump file is: what `scan_frames` returns and `read_frame` takes.

    offset is the byte offset of the frame's first ITEM line (``ITEM: TIMESTEP``, or
    ``ITEM: UNITS`` / ``ITEM: TIME`` where the dump writes those first); size is the number of
    bytes from there to the end of its last atom line; index is its 0-based place in the file,
    for messages. read_frame checks that the frame there still has n_atoms atoms and ends at
    offset + size (timestep is not checked). Small and picklable, so it can be sent to Dask
    workers.
    """

    offset: int
    n_atoms: int
    timestep: int
    index: int
    size: int


class _Bad(Exception):
    """A problem with one frame; the public functions add the path and the frame index."""


class _NoFrame(_Bad):
    """No frame begins at the byte offset read_frame was given: an error with no frame index."""


# ---------------------------------------------------------------------------------------------
# numba kernels: pure functions over arrays (the file's bytes as uint8)


_NEED_MORE, _DONE, _AT_ITEM = 0, 1, 2
_RUN = 4096  # bytes _count_lines counts at a time before looking at single lines


@numba.njit(**_JIT)
def _run_counts(buf, start, stop):
    """(newlines, newlines followed by b'I') in buf[start:stop]; reads buf[stop]. Vectorises."""
    here = buf[start:stop]
    after = buf[start + 1:stop + 1]
    newlines = 0
    before_i = 0
    for j in range(here.shape[0]):
        newline = np.int64(here[j] == 10)
        newlines += newline
        before_i += newline & np.int64(after[j] == 73)
    return newlines, before_i


@numba.njit(**_JIT)
def _count_lines(buf, start, end, n_wanted):
    """Count the whole lines of buf[start:end] from start (a line start), stopping after
    n_wanted of them or before a line that begins with b'ITEM:'.

    Returns (n_lines, stop, why): stop is the index just past the last line counted; why is
    _DONE (n_wanted lines counted), _AT_ITEM (an ITEM line begins at stop) or _NEED_MORE (the
    block ended first; buf[stop:end] is an incomplete line). Runs of _RUN bytes that hold
    fewer lines than are still wanted, none starting with 'I', are counted without a branch
    per byte.
    """
    k = 0
    i = start
    while k < n_wanted:
        stop = i + _RUN
        if stop < end and buf[i] != 73:
            newlines, before_i = _run_counts(buf, i, stop)
            if before_i == 0 and newlines > 0 and k + newlines < n_wanted:
                last = stop - 1
                while buf[last] != 10:
                    last -= 1
                k += newlines
                i = last + 1
                continue
        j = i
        while j < end and buf[j] != 10:
            j += 1
        if j >= end:
            return k, i, _NEED_MORE
        if (j - i >= 5 and buf[i] == 73 and buf[i + 1] == 84 and buf[i + 2] == 69
                and buf[i + 3] == 77 and buf[i + 4] == 58):
            return k, i, _AT_ITEM
        k += 1
        i = j + 1
    return k, i, _DONE


_OK, _TRUNCATED, _TOO_FEW, _TOO_MANY, _BAD_INT, _BAD_FLOAT, _BAD_TYPE, _NON_FINITE = range(8)


@numba.njit(**_JIT)
def _copy_positions(buf, i, roles, text, n_text):
    """Append the texts of the position columns of the line at buf[i] (in column order), each
    followed by a blank, to text[n_text:]; the new length of text."""
    for column in range(roles.shape[0]):
        while buf[i] <= 32:
            i += 1
        if roles[column] >= _X:
            while buf[i] > 32:
                text[n_text] = buf[i]
                n_text += 1
                i += 1
            text[n_text] = 32
            n_text += 1
        else:
            while buf[i] > 32:
                i += 1
    return n_text


@numba.njit(**_JIT)
def _parse_atoms(buf, start, first_line, roles, table, shift, matrix, ids, positions, numbers, slow, text):
    """Parse atom lines first_line, first_line + 1, ... len(ids) - 1 from buf[start:], which
    ends with a newline: columns separated by blanks (bytes up to 32 other than the newline).
    roles[c] says what column c is: _ID, _TYPE, _X + axis, or _SKIP (stepped over, never read).

    Line k gives ids[k] = id, positions[k] = (xyz - shift) @ matrix and numbers[k] =
    table[type] (-type where the table has no element for it), in file order: dumps are
    usually sorted by id, and then these are the frame's arrays as they are. (Writing each
    atom straight to row id - 1 instead was measured twice as slow: the scattered stores stall
    the parse.)

    A line with a coordinate that parse_float cannot round exactly (it needs float()) gets
    its number here but not its position: slow[:n_slow] holds (line, index of its start in
    buf) of each such line, and text[:n_text] the texts of their position columns, in column
    order, each followed by a blank (slow holds len(ids) rows and text len(buf) bytes, so
    neither can overflow); _parse_block fills in their positions.

    Returns (status, line, column, index, line_start, n_slow, n_text): _OK (index: past the
    last line), or the first problem on line `line`, which starts at buf[line_start]:
    _TRUNCATED (buf ends before it; index = line_start), _TOO_FEW / _TOO_MANY values, _BAD_INT
    / _BAD_FLOAT for the token at buf[index], _BAD_TYPE (type < 1), _NON_FINITE (a nan or inf
    coordinate; one that needs float() is checked by _parse_block). An ITEM line among the atom
    lines fails as one of these.
    """
    end = buf.shape[0]
    n_atoms = ids.shape[0]
    n_columns = roles.shape[0]
    n_types = table.shape[0]
    n_slow = 0
    n_text = 0
    i = start
    for line in range(first_line, n_atoms):
        line_start = i
        if i >= end:
            return _TRUNCATED, line, 0, i, line_start, n_slow, n_text
        atom_id = 0
        atom_type = 0
        x = y = z = 0.0
        inexact = False
        for column in range(n_columns):
            c = buf[i]
            while c <= 32 and c != 10:
                i += 1
                c = buf[i]
            if c == 10:
                return _TOO_FEW, line, column, i, line_start, n_slow, n_text
            role = roles[column]
            start = i
            if role == _SKIP:
                while buf[i] > 32:
                    i += 1
            elif role >= _X:
                value, i, state = parse_float(buf, i)
                if state == INVALID or buf[i] > 32:
                    return _BAD_FLOAT, line, column, start, line_start, n_slow, n_text
                inexact |= state == INEXACT
                if role == _X:
                    x = value
                elif role == _X + 1:
                    y = value
                else:
                    z = value
            else:
                number, i, ok = parse_int(buf, i)
                if not ok or buf[i] > 32:
                    return _BAD_INT, line, column, start, line_start, n_slow, n_text
                if role == _ID:
                    atom_id = number
                else:
                    atom_type = number
        c = buf[i]
        while c <= 32 and c != 10:
            i += 1
            c = buf[i]
        if c != 10:
            return _TOO_MANY, line, n_columns, i, line_start, n_slow, n_text
        i += 1
        if inexact:  # recorded before the checks below: a non-finite position comes first
            slow[n_slow, 0] = line
            slow[n_slow, 1] = line_start
            n_slow += 1
            n_text = _copy_positions(buf, line_start, roles, text, n_text)
        if not (np.isfinite(x) and np.isfinite(y) and np.isfinite(z)):
            return _NON_FINITE, line, 0, line_start, line_start, n_slow, n_text
        if atom_type < 1:
            return _BAD_TYPE, line, 0, line_start, line_start, n_slow, n_text
        ids[line] = atom_id
        number = table[atom_type] if atom_type < n_types else 0
        x -= shift[0]
        y -= shift[1]
        z -= shift[2]
        positions[line, 0] = x * matrix[0, 0] + y * matrix[1, 0] + z * matrix[2, 0]
        positions[line, 1] = x * matrix[0, 1] + y * matrix[1, 1] + z * matrix[2, 1]
        positions[line, 2] = x * matrix[0, 2] + y * matrix[1, 2] + z * matrix[2, 2]
        numbers[line] = number if number > 0 else -atom_type
    return _OK, n_atoms, 0, i, i, n_slow, n_text


@numba.njit(**_JIT)
def _order_by_id(ids, low, span):
    """Row order that sorts ids (each in [low, low + span)) by counting, and the first id seen
    twice (low - 1 if none). O(n + span): span should be a few times len(ids) at most."""
    slots = np.full(span, -1, dtype=np.int64)
    for i in range(ids.shape[0]):
        s = ids[i] - low
        if slots[s] >= 0:
            return slots[:0], ids[i]
        slots[s] = i
    k = 0
    for s in range(span):
        if slots[s] >= 0:
            slots[k] = slots[s]
            k += 1
    return slots[:k], low - 1


@numba.njit(**_JIT)
def _scatter(positions, numbers, ids, low, by_id, numbers_by_id):
    """by_id[ids[k] - low] = positions[k] and numbers_by_id[...] = numbers[k]: id order in one
    pass when the ids are exactly low, low + 1, ... in some order. (An id seen twice leaves a
    row unwritten: numbers are never 0, so a 0 left in a zeroed numbers_by_id shows it.)"""
    for k in range(positions.shape[0]):
        row = ids[k] - low
        by_id[row, 0] = positions[k, 0]
        by_id[row, 1] = positions[k, 1]
        by_id[row, 2] = positions[k, 2]
        numbers_by_id[row] = numbers[k]


@numba.njit(**_JIT)
def _find_newline(buf, start, end):
    """Index of the first newline in buf[start:end], or -1."""
    for i in range(start, end):
        if buf[i] == 10:
            return i
    return -1


@numba.njit(**_JIT)
def _last_newline(buf, start, end):
    """Index of the last newline in buf[start:end], or -1."""
    for i in range(end - 1, start - 1, -1):
        if buf[i] == 10:
            return i
    return -1


# ---------------------------------------------------------------------------------------------
# reading bytes


class _Source:
    """A binary file read forward in large blocks from some offset. Header lines and atom
    blocks are taken from the same buffer, so a small frame costs no extra read.

    The buffer (uint8, never zero-filled) is reused from block to block, and holds at most
    _MAX_BLOCK bytes past a partial line: a view of it is valid only until the next read.
    """

    def __init__(self, f, offset: int):
        self.f = f
        f.seek(offset)
        self.base = offset  # file offset of buf[0]
        self.buf = np.empty(0, dtype=np.uint8)
        self.pos = 0  # next unread byte
        self.end = 0  # bytes of buf that hold data

    def tell(self) -> int:
        return self.base + self.pos

    def read_more(self, n_bytes: int, keep_from: int) -> bool:
        """Drop buf[:keep_from] (indices into buf shift down by keep_from) and read at least
        n_bytes more where the file has them. False at the end of the file."""
        tail = self.end - keep_from
        if len(self.buf) >= tail + n_bytes:
            if keep_from:
                self.buf[:tail] = self.buf[keep_from:self.end]  # numpy copes with the overlap
        else:
            new = np.empty(tail + n_bytes, dtype=np.uint8)
            new[:tail] = self.buf[keep_from:self.end]
            self.buf = new
        got = self.f.readinto(self.buf[tail:])
        self.base += keep_from
        self.pos -= keep_from
        self.end = tail + got
        return got > 0

    def starts_item(self) -> bool:
        return self.end - self.pos >= 5 and self.buf[self.pos:self.pos + 5].tobytes() == b"ITEM:"

    def readline(self) -> bytes:
        """The next line with its newline; b'' at the end of the file."""
        while True:
            i = _find_newline(self.buf, self.pos, self.end)
            if i >= 0:
                line = self.buf[self.pos:i + 1].tobytes()
                self.pos = i + 1
                return line
            if self.end - self.pos > _MAX_HEADER_LINE:
                raise _Bad(f"a header line at byte {self.tell()} is longer than "
                           f"{_MAX_HEADER_LINE} bytes: not a LAMMPS text dump")
            if not self.read_more(_BLOCK, self.pos):
                line = self.buf[self.pos:self.end].tobytes()
                self.pos = self.end
                return line

    def peek_item(self) -> bool:
        """The next line starts with 'ITEM:' (False at the end of the file)."""
        while self.end - self.pos < 5 and _find_newline(self.buf, self.pos, self.end) < 0:
            if not self.read_more(_BLOCK, self.pos):
                break
        return self.starts_item()

    def skip_lines(self, n: int):
        """Step over the next n lines, or fewer where the file ends or an ITEM line comes first.
        Returns (n_skipped, why): why is _DONE, _AT_ITEM or _NEED_MORE (the file ended)."""
        found = 0
        counted_bytes = 0
        while True:
            before = self.pos
            k, self.pos, why = _count_lines(self.buf, self.pos, self.end, n - found)
            found += k
            counted_bytes += self.pos - before
            if why != _NEED_MORE:
                return found, why
            if not self.read_more(self.estimate(n - found, counted_bytes, found), self.pos):
                if self.pos < self.end:  # the last line of the file has no newline
                    if self.starts_item():
                        return found, _AT_ITEM
                    found += 1
                    self.pos = self.end
                return found, _DONE if found == n else _NEED_MORE

    @staticmethod
    def estimate(lines_left: int, bytes_done: int, lines_done: int) -> int:
        """Bytes to read next for lines_left more lines, from the length of those done."""
        line_bytes = bytes_done / lines_done if lines_done else 100.0
        return min(max(int(lines_left * line_bytes * 1.02) + 65536, _BLOCK), _MAX_BLOCK)

    def complete_lines_end(self) -> int:
        """Index just past the last whole line in the buffer (self.pos if there is none)."""
        return max(_last_newline(self.buf, self.pos, self.end) + 1, self.pos)


# ---------------------------------------------------------------------------------------------
# the frame header


@dataclass(frozen=True)
class _Header:
    offset: int
    timestep: int
    n_atoms: int
    cell: np.ndarray  # (3, 3), rows a, b, c, in the file's length unit
    origin: np.ndarray  # (3,)
    pbc: np.ndarray
    columns: tuple
    roles: np.ndarray  # per column: _SKIP, _ID, _TYPE or _X + axis
    position_columns: tuple  # the three columns positions are read from
    angstrom: float  # Å per length unit of the file


def _text(line: bytes) -> str:
    return line.decode("latin-1").strip()


def _read_header(src: _Source, offset: int | None = None) -> _Header | None:
    """Read one frame header up to and including its ITEM: ATOMS line; None at the end of the
    file. offset: the byte offset a caller asked for (for the message when it is not a frame)."""
    line = src.readline()
    while line and not line.strip():
        line = src.readline()
    if not line:
        return None
    start = src.tell() - len(line)
    items = {}
    while True:
        text = _text(line)
        if not text.startswith("ITEM:"):
            if items:
                raise _Bad(f"expected an ITEM line after ITEM: {next(reversed(items))}, found "
                           f"{text[:60]!r}: is the ITEM: ATOMS line missing?")
            if offset is not None:
                raise _NoFrame(f"byte offset {offset} is not the start of a frame (found {text[:60]!r}): "
                           "use an offset from scan_frames")
            raise _Bad(f"expected 'ITEM: TIMESTEP' at byte {start}, found {text[:60]!r}: not a LAMMPS "
                       "text dump, or the frame before has more atom lines than its NUMBER OF ATOMS")
        name = text[5:].strip()
        key = ("ATOMS" if name.split()[:1] == ["ATOMS"]
               else "BOX BOUNDS" if name.startswith("BOX BOUNDS") else name)
        if key == "ATOMS":
            break
        if key in items:
            raise _Bad(f"ITEM: {key} appears twice before ITEM: ATOMS: the ITEM: ATOMS section is missing")
        wanted = _HEADER_LINES.get(key)
        values = []
        while wanted is None or len(values) < wanted:
            if src.peek_item():
                break
            value = src.readline()
            if not value:
                break
            values.append(_text(value))
            if wanted is None and len(values) > _MAX_UNKNOWN_ITEM_LINES:
                raise _Bad(f"unexpected section 'ITEM: {name}': not a LAMMPS atom dump "
                           "(dump atom or dump custom)")
        if wanted is not None and len(values) < wanted:
            raise _Bad(f"ITEM: {key} needs {wanted} line{'s' if wanted > 1 else ''} of values, "
                       f"found {len(values)}")
        items[key] = (name, values)
        line = src.readline()
        if not line:
            raise _Bad(f"file ends after ITEM: {key}, before ITEM: ATOMS (truncated)")
    for required in ("TIMESTEP", "NUMBER OF ATOMS", "BOX BOUNDS"):
        if required not in items:
            raise _Bad(f"missing ITEM: {required} section before ITEM: ATOMS")
    timestep = _integer(items["TIMESTEP"][1][0], "ITEM: TIMESTEP")
    n_atoms = _integer(items["NUMBER OF ATOMS"][1][0], "ITEM: NUMBER OF ATOMS")
    if n_atoms < 0:
        raise _Bad(f"ITEM: NUMBER OF ATOMS is negative ({n_atoms})")
    if n_atoms == 0:
        raise _Bad("frame has zero atoms (ITEM: NUMBER OF ATOMS is 0)")
    angstrom = 1.0
    if "UNITS" in items:
        units = items["UNITS"][1][0]
        if units not in _LENGTH_IN_ANGSTROM:
            raise _Bad(f"ITEM: UNITS is {units!r}, which has no length in Å: dump with units "
                       f"{', '.join(_LENGTH_IN_ANGSTROM)}")
        angstrom = _LENGTH_IN_ANGSTROM[units]
    cell, origin, pbc = _box(*items["BOX BOUNDS"])
    columns = tuple(name.split()[1:])
    roles, position_columns = _roles(columns)
    return _Header(start, timestep, n_atoms, cell, origin, pbc, columns, roles, position_columns, angstrom)


def _integer(text: str, what: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise _Bad(f"{what} value {text[:40]!r} is not an integer") from None


def _box(name: str, lines: list[str]):
    """cell (rows a, b, c), origin and pbc from ITEM: BOX BOUNDS and its three lines."""
    words = name.split()[2:]
    general = words[:2] == ["abc", "origin"]
    tilts = [w for w in words if w in ("xy", "xz", "yz")]
    flags = words[2:] if general else [w for w in words if w not in ("xy", "xz", "yz")]
    if len(flags) != 3 or any(len(f) != 2 or set(f) - set("pfsm") for f in flags):
        raise _Bad(f"'ITEM: {name}' needs three boundary flags such as 'pp pp ff' (each two of "
                   "p, f, s, m)")
    if tilts and sorted(tilts) != ["xy", "xz", "yz"]:
        raise _Bad(f"'ITEM: {name}' must name the tilts xy xz yz")
    width = 4 if general else 3 if tilts else 2
    try:
        rows = np.array([[float(v) for v in line.split()] for line in lines], dtype=float)
    except ValueError:
        raise _Bad(f"ITEM: BOX BOUNDS has a line that is not numbers: {lines!r}") from None
    if rows.shape != (3, width):
        raise _Bad(f"'ITEM: {name}' needs {width} numbers on each of its 3 lines, found {lines!r}")
    if not np.isfinite(rows).all():
        raise _Bad(f"ITEM: BOX BOUNDS is not finite: {lines!r}")
    pbc = np.array([f == "pp" for f in flags])
    if general:
        cell, origin = rows[:, :3].copy(), rows[:, 3].copy()
        if abs(np.linalg.det(cell)) <= 1e-12 * np.prod(np.linalg.norm(cell, axis=1)):
            raise _Bad(f"the box vectors of ITEM: BOX BOUNDS are linearly dependent: {lines!r}")
        return cell, origin, pbc
    xlo, xhi = rows[0, :2]
    ylo, yhi = rows[1, :2]
    zlo, zhi = rows[2, :2]
    xy = xz = yz = 0.0
    if tilts:
        tilt = dict(zip(tilts, rows[:, 2]))
        xy, xz, yz = tilt["xy"], tilt["xz"], tilt["yz"]
        xlo, xhi = xlo - min(0.0, xy, xz, xy + xz), xhi - max(0.0, xy, xz, xy + xz)
        ylo, yhi = ylo - min(0.0, yz), yhi - max(0.0, yz)
    for axis, lo, hi in (("x", xlo, xhi), ("y", ylo, yhi), ("z", zlo, zhi)):
        if not hi > lo:
            raise _Bad(f"ITEM: BOX BOUNDS gives a box of length {hi - lo:g} along {axis}: {lines!r}")
    cell = np.array([[xhi - xlo, 0.0, 0.0], [xy, yhi - ylo, 0.0], [xz, yz, zhi - zlo]])
    return cell, np.array([xlo, ylo, zlo]), pbc


def _roles(columns: tuple):
    """What the parser does with each column, and the three position columns it reads."""
    if not columns:
        raise _Bad("ITEM: ATOMS names no columns")
    if len(set(columns)) != len(columns):
        raise _Bad(f"ITEM: ATOMS names a column twice: {' '.join(columns)}")
    for missing, fix in (("id", "atoms are sorted by id"), ("type", "elements come from types")):
        if missing not in columns:
            raise _Bad(f"ITEM: ATOMS has no {missing} column ({fix}): add {missing} to the dump "
                       f"command; columns are {' '.join(columns)}")
    for names in _POSITION_COLUMNS:
        if all(n in columns for n in names):
            break
    else:
        partial = [n for names in _POSITION_COLUMNS for n in names if n in columns]
        found = f"only {' '.join(partial)} of them" if partial else f"columns are {' '.join(columns)}"
        raise _Bad("ITEM: ATOMS has no position columns (x y z, xs ys zs, xu yu zu or xsu ysu zsu): "
                   + found)
    roles = np.full(len(columns), _SKIP, dtype=np.int64)
    roles[columns.index("id")] = _ID
    roles[columns.index("type")] = _TYPE
    for axis, n in enumerate(names):
        roles[columns.index(n)] = _X + axis
    return roles, names


# ---------------------------------------------------------------------------------------------
# the atom block


def _atoms_error(block, header: _Header, status: int, line: int, column: int, index: int, line_start: int) -> str:
    n = header.n_atoms
    if status == _TRUNCATED:
        return f"ITEM: NUMBER OF ATOMS is {n} but only {line} atom lines follow, before the end of the file (truncated)"
    if block[line_start:line_start + 5].tobytes() == b"ITEM:":
        return f"ITEM: NUMBER OF ATOMS is {n} but only {line} atom lines follow, before the next ITEM line"
    end = _find_newline(block, line_start, len(block))
    text = block[line_start:end if end >= 0 else len(block)].tobytes().decode("latin-1")
    values = dict(zip(header.columns, text.split()))
    where = f"atom line {line + 1} (of {n})"
    names = f"ITEM: ATOMS names {len(header.columns)} ({' '.join(header.columns)})"
    if status == _TOO_FEW:
        return f"{where} has {column} values, {names}"
    if status == _TOO_MANY:
        return f"{where} has more values than the {names}"
    if status == _NON_FINITE:
        return (f"atom id {values.get('id')} has a non-finite position: {' '.join(header.position_columns)} = "
                f"{' '.join(values.get(c, '?') for c in header.position_columns)}")
    if status == _BAD_TYPE:
        return f"{where}: type {values.get('type')} is not a LAMMPS type (types are 1, 2, ...)"
    token = block[index:index + 40].tobytes().decode("latin-1").split()[0]
    kind = "an integer" if status == _BAD_INT else "a number"
    return f"{where}: cannot read {token!r} in column {header.columns[column]} as {kind}"


def _parse_block(block, start: int, first_line: int, header: _Header, table, shift, matrix, ids, positions, numbers,
                 slow):
    """_parse_atoms over block from start, then the positions of the lines whose numbers need
    float(): its (status, line, column, index, line_start), where such a line that float()
    makes non-finite is the first problem, as _NON_FINITE (they are all at or before `line`)."""
    text = np.empty(len(block), dtype=np.uint8)  # np.empty: no page is touched unless written
    status, line, column, index, line_start, n_slow, n_text = _parse_atoms(
        block, start, first_line, header.roles, table, shift, matrix, ids, positions, numbers, slow, text)
    if n_slow:
        values = np.fromiter(map(float, text[:n_text].tobytes().split()), dtype=np.float64, count=3 * n_slow)
        xyz = np.empty((n_slow, 3))
        xyz[:, header.roles[header.roles >= _X] - _X] = values.reshape(n_slow, 3)  # columns to x, y, z
        finite = np.isfinite(xyz).all(axis=1)
        if not finite.all():
            line, line_start = (int(v) for v in slow[np.argmin(finite)])
            return _NON_FINITE, line, 0, line_start, line_start
        # as _parse_atoms computes them, operation for operation, so rounded the same
        x, y, z = xyz[:, 0] - shift[0], xyz[:, 1] - shift[1], xyz[:, 2] - shift[2]
        rows = slow[:n_slow, 0]
        for axis in range(3):
            positions[rows, axis] = x * matrix[0, axis] + y * matrix[1, axis] + z * matrix[2, axis]
    return status, line, column, index, line_start


def _transform(header: _Header):
    """(cell in Å, shift, matrix): an atom's position is (its coordinates - shift) @ matrix."""
    cell = header.cell * header.angstrom
    if header.position_columns[0] in _SCALED:
        return cell, np.zeros(3), cell
    return cell, header.origin, np.eye(3) * header.angstrom


def _read_atoms(src: _Source, header: _Header, table: np.ndarray, frame_end: int | None = None) -> Frame:
    """Parse the NUMBER OF ATOMS lines after header as the file is read, a block of whole
    lines at a time (at most _MAX_BLOCK bytes held). frame_end: where scan_frames found the
    frame to end (for the message when the file has changed since)."""
    n = header.n_atoms
    cell, shift, matrix = _transform(header)
    ids = np.empty(n, dtype=np.int64)
    positions = np.empty((n, 3), dtype=np.float64)
    numbers = np.empty(n, dtype=np.int64)
    slow = np.empty((n, 2), dtype=np.int64)  # lines whose numbers need float(), for _parse_block
    line = 0
    parsed_bytes = 0
    while True:
        block = src.buf[:src.complete_lines_end()]
        status, line, column, index, line_start = _parse_block(
            block, src.pos, line, header, table, shift, matrix, ids, positions, numbers, slow)
        if status != _TRUNCATED:
            if status == _OK:
                src.pos = index
            break
        parsed_bytes += index - src.pos
        src.pos = index
        if not src.read_more(src.estimate(n - line, parsed_bytes, line), src.pos):
            if src.pos < src.end:  # the last line of the file has no newline: the parser needs one
                block = np.append(src.buf[src.pos:src.end], np.uint8(10))
                status, line, column, index, line_start = _parse_block(
                    block, 0, line, header, table, shift, matrix, ids, positions, numbers, slow)
                src.pos = src.end
            break
    if frame_end is not None and status != _OK and src.base + src.end < frame_end:
        raise _Bad(f"the file ends at byte {src.base + src.end}, before the end of the frame scan_frames "
                   f"found (byte {frame_end}): the file changed since scan_frames")
    if frame_end is not None and status == _OK and src.tell() != frame_end:
        raise _Bad(f"the frame ends at byte {src.tell()}, where scan_frames found byte {frame_end}: the "
                   "file changed since scan_frames")
    if status != _OK:
        raise _Bad(_atoms_error(block, header, status, line, column, index, line_start))
    del block
    if not (n == 1 or (ids[1:] > ids[:-1]).all()):  # rows to id order
        low, high = int(ids.min()), int(ids.max())
        placed = False
        if high - low + 1 == n:  # ids low..low + n - 1, as LAMMPS numbers them: place each by id
            by_id, numbers_by_id = np.empty((n, 3)), np.zeros(n, dtype=np.int64)
            _scatter(positions, numbers, ids, low, by_id, numbers_by_id)
            placed = numbers_by_id.all()  # a 0 left means an id came twice
        if placed:
            positions, numbers = by_id, numbers_by_id
        else:
            order = _id_order(ids, low, high)
            positions, numbers = positions[order], numbers[order]
    _check_types(numbers, table)
    return Frame(positions=positions, numbers=numbers, cell=cell, pbc=header.pbc.copy())


def _check_types(numbers, table) -> None:
    """Raises _Bad naming the types that have no element (numbers -type from the parser)."""
    if numbers.min() < 1:
        missing = np.unique(-numbers[numbers < 1]).tolist()
        example = {**{t: repr(chemical_symbols[z]) for t, z in enumerate(table) if z},
                   **{t: "<symbol>" for t in missing}}
        hint = "{" + ", ".join(f"{t}: {s}" for t, s in sorted(example.items())) + "}"
        which = f"type {missing[0]} has" if len(missing) == 1 else f"types {', '.join(map(str, missing))} have"
        raise _Bad(f"{which} no element: pass species={hint}")


def _id_order(ids: np.ndarray, low: int, high: int) -> np.ndarray:
    """The row order that sorts atoms by id (ids in [low, high]): by counting where ids are
    dense (a few gaps where atoms were deleted), else argsort (on 1M shuffled ids counting
    measured 18 ms, argsort 117 ms). Raises _Bad for an id seen twice."""
    span = high - low + 1
    if span <= 4 * len(ids):
        order, repeated = _order_by_id(ids, low, span)
        if repeated != low - 1:
            raise _Bad(f"atom id {repeated} appears more than once")
        return order
    order = np.argsort(ids)
    repeated = np.flatnonzero(ids[order[1:]] == ids[order[:-1]])
    if len(repeated):
        raise _Bad(f"atom id {ids[order[repeated[0]]]} appears more than once")
    return order


_MAX_TYPE = 1 << 16


def _species_table(species, path) -> np.ndarray:
    """Check species once, at the boundary. Returns table[type] = atomic number (0: none)."""
    example = "e.g. species={1: 'Cu', 2: 'Ni'}"
    if not isinstance(species, dict) or not species:
        raise InputError(f"species must be a non-empty dict of LAMMPS type -> chemical symbol, {example}; "
                         f"got {species!r}", path=path)
    table = np.zeros(1, dtype=np.int64)
    for key, symbol in species.items():
        if isinstance(key, bool) or not isinstance(key, (int, np.integer)) or not 1 <= key < _MAX_TYPE:
            raise InputError(f"species key {key!r} is not a LAMMPS type (1, 2, ...), {example}", path=path)
        number = atomic_numbers.get(symbol) if isinstance(symbol, str) else None
        if not number:
            raise InputError(f"species[{key!r}] = {symbol!r} is not a chemical symbol, {example}", path=path)
        if key >= len(table):
            table = np.concatenate([table, np.zeros(key + 1 - len(table), dtype=np.int64)])
        table[key] = number
    return table


# ---------------------------------------------------------------------------------------------
# files


class _File:
    """open() for reading with every failure turned into an InputError naming the path."""

    def __init__(self, path):
        self.path = path

    def __enter__(self):
        path = self.path
        try:
            mode = os.stat(path).st_mode
        except FileNotFoundError:
            raise InputError("no such file", path=path) from None
        except OSError as err:
            raise InputError(f"cannot read: {err.strerror or err}", path=path) from None
        if stat.S_ISDIR(mode):
            raise InputError("is a directory, not a LAMMPS dump file", path=path)
        if not stat.S_ISREG(mode):
            raise InputError("is not a regular file (random access needs one)", path=path)
        try:
            self.f = open(path, "rb", buffering=0)
            magic = self.f.read(2)
        except OSError as err:
            raise InputError(f"cannot read: {err.strerror or err}", path=path) from None
        if magic == b"\x1f\x8b":
            self.f.close()
            raise InputError("is gzip-compressed: decompress it first (gunzip), frames are read by "
                             "byte offset", path=path)
        return self.f

    def __exit__(self, kind, value, traceback):
        self.f.close()
        if isinstance(value, OSError):
            raise InputError(f"cannot read: {value.strerror or value}", path=self.path) from None
        return False


def _frames_before(path, offset: int) -> int | None:
    """How many frames begin before byte offset (the index of the frame there); for messages."""
    marker = b"ITEM: TIMESTEP"
    count, tail, position = 0, b"", 0
    try:
        with open(path, "rb") as f:
            while position < offset:
                data = f.read(min(_MAX_BLOCK, offset - position))
                if not data:
                    break
                position += len(data)
                chunk = tail + data
                count += chunk.count(marker)
                tail = chunk[-(len(marker) - 1):]
    except OSError:
        return None
    return count


def scan_frames(path) -> list[FrameLocation]:
    """Find every frame of a LAMMPS text dump without parsing atom lines: one location per
    frame, in file order. Reads each header, then skips NUMBER OF ATOMS lines by counting
    newlines in large byte blocks, so it runs at close to disk speed on multi-GB files.

    Raises InputError for a missing or unreadable file, an empty one, and any frame whose
    header is bad or whose atom lines are fewer than its NUMBER OF ATOMS.
    """
    started = time.perf_counter()
    locations = []
    with _File(path) as f:
        src = _Source(f, 0)
        try:
            while (header := _read_header(src)) is not None:
                found, why = src.skip_lines(header.n_atoms)
                if found < header.n_atoms:
                    after = ("before the next ITEM line" if why == _AT_ITEM
                             else "before the end of the file (truncated)")
                    raise _Bad(f"ITEM: NUMBER OF ATOMS is {header.n_atoms} but only {found} atom lines "
                               f"follow, {after}")
                locations.append(FrameLocation(offset=header.offset, n_atoms=header.n_atoms,
                                               timestep=header.timestep, index=len(locations),
                                               size=src.tell() - header.offset))
        except _Bad as err:
            raise InputError(str(err), path=path, frame=len(locations)) from None
    if not locations:
        raise InputError("no frames: the file is empty (a LAMMPS text dump starts with ITEM: TIMESTEP)",
                         path=path)
    log.debug("%s: %d frames scanned in %.3f s", path, len(locations), time.perf_counter() - started)
    return locations


def read_frame(path, location: "FrameLocation | int", species: dict[int, str]) -> Frame:
    """Read one frame: at a FrameLocation from scan_frames, or at a byte offset (that of its
    first ITEM line). species maps LAMMPS types to chemical symbols, e.g. {1: 'Cu', 2: 'Ni'}.

    Positions are Cartesian Å relative to the box origin, atoms sorted by id (see the module
    docstring). Raises InputError naming the file and the frame index.
    """
    table = _species_table(species, path)
    if isinstance(location, FrameLocation):
        offset, index, frame_end = location.offset, location.index, location.offset + location.size
    else:
        offset, index, frame_end = operator.index(location), None, None
        if offset < 0:
            raise InputError(f"byte offset {offset} is negative: use an offset from scan_frames", path=path)
    with _File(path) as f:
        try:
            src = _Source(f, offset)
            header = _read_header(src, offset=offset)
            if header is None:
                raise _NoFrame(f"no frame at byte offset {offset}: the file ends before it")
            if isinstance(location, FrameLocation) and header.n_atoms != location.n_atoms:
                raise _Bad(f"the frame at byte {offset} has {header.n_atoms} atoms, its location "
                           f"{location.n_atoms}: the file changed since scan_frames")
            return _read_atoms(src, header, table, frame_end)
        except _Bad as err:
            if index is None and not isinstance(err, _NoFrame):
                index = _frames_before(path, offset)
            raise InputError(str(err), path=path, frame=index) from None


def read_piece(path, location: FrameLocation, species: dict[int, str], piece: int,
               n_pieces: int) -> tuple[Frame, np.ndarray]:
    """(Frame, ids) of the atoms of piece `piece` of `n_pieces` of a frame's atom lines
    (textparse.line_piece: near equal shares of the bytes), in file order, so a frame is read
    by several tasks, each holding only its share. Positions and numbers as read_frame gives them;
    the caller puts the atoms in id order (and checks that no id comes twice). Raises
    InputError naming the file, the frame and the byte where a bad atom line begins."""
    table = _species_table(species, path)
    with _File(path) as f:
        try:
            src = _Source(f, location.offset)
            header = _read_header(src, offset=location.offset)
            if header is None or header.n_atoms != location.n_atoms:
                raise _Bad(f"the frame at byte {location.offset} is not the {location.n_atoms}-atom frame scan_frames "
                           "found there: the file changed since scan_frames")
            try:
                first, block = line_piece(f, src.tell(), location.offset + location.size, piece, n_pieces)
            except EOFError as err:
                raise _Bad(f"{err}: the file changed since scan_frames") from None
            n = int(np.count_nonzero(block == 10))
            cell, shift, matrix = _transform(header)
            ids, numbers = np.empty(n, dtype=np.int64), np.empty(n, dtype=np.int64)
            positions = np.empty((n, 3))
            piece_header = replace(header, n_atoms=n)
            status, line, column, index, line_start = _parse_block(
                block, 0, 0, piece_header, table, shift, matrix, ids, positions, numbers, np.empty((n, 2), dtype=np.int64))
            if status != _OK:
                raise _Bad(f"in the {n} atom lines from byte {first}: "
                           + _atoms_error(block, piece_header, status, line, column, index, line_start))
            if n:
                _check_types(numbers, table)
        except _Bad as err:
            raise InputError(str(err), path=path, frame=location.index) from None
    return Frame(positions=positions, numbers=numbers, cell=cell, pbc=header.pbc.copy()), ids


def iter_frames(path, species: dict[int, str]):
    """Yield every frame of the file in order, reading it once, front to back (no scan first).
    Same conventions and errors as read_frame."""
    table = _species_table(species, path)
    index = 0
    with _File(path) as f:
        src = _Source(f, 0)
        while True:
            try:
                header = _read_header(src)
                if header is None:
                    break
                frame = _read_atoms(src, header, table)
            except _Bad as err:
                raise InputError(str(err), path=path, frame=index) from None
            yield frame
            index += 1
    if index == 0:
        raise InputError("no frames: the file is empty (a LAMMPS text dump starts with ITEM: TIMESTEP)",
                         path=path)
