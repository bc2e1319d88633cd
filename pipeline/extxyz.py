"""Fast reader of extended XYZ files (as ``ase.io.write(..., format='extxyz')`` writes them):
find the frames of a file, read any one of them by its location, or stream them all;
`read_piece` reads a share of one frame's atom lines alone, so that several tasks read a large
frame together.

A frame is a count line, a comment line of key=value pairs, and one line per atom::

    2
    Lattice="3.6 0 0 0 3.6 0 0 0 3.6" Properties=species:S:1:pos:R:3:forces:R:3 pbc="T T T" e=-1.5
    Cu  0.00000000  0.00000000  0.00000000  0.10000000  0.00000000  0.00000000
    Cu  1.80000000  1.80000000  0.00000000 -0.10000000  0.00000000  0.00000000

Values on the comment line are bare words, "quoted" (backslash escapes) or bracketed
({...} or [...]); keys without a value are allowed. Of them, a `Frame` takes:

- ``cell``: rows a, b, c of ``Lattice="ax ay az bx by bz cx cy cz"``; zeros without Lattice.
- ``pbc``: ``pbc="T T F"`` (T, F, True or False, any case; one value or three), all True
  where Lattice is given without pbc, all False where there is no Lattice (ASE would keep a
  pbc written without a Lattice, with a zero cell).
- the columns, from ``Properties=NAME:TYPE:COLUMNS:...`` (types S, R, I, L; by default
  ``species:S:1:pos:R:3``): ``positions`` from ``pos:R:3``, exactly as float() reads each
  number; ``numbers`` from ``Z:I:1`` where there is one (as ASE), else from the chemical
  symbols of ``species:S:1``, capitalised as ASE does ('CU' is Cu). Other columns (forces,
  momenta, tags, ...) and other keys are skipped unread; NaN and inf positions are returned
  as they are (callers validate).

Speed: nothing loops over atoms in Python. `scan_frames` reads the two header lines of each
frame and skips its atom lines by counting newlines in large blocks (a numba kernel);
`read_frame` reads a frame's bytes in one call and parses the atom lines with a numba kernel
that reads only the species and position columns, with the number parser of
`pipeline.textparse`. Numbers it cannot round exactly itself (17 or more significant digits,
or a decimal exponent beyond +-22) go to float(); ASE writes ``%16.8f``, which never needs it.
Measured against numpy and ASE by ``scripts/bench_extxyz.py``.

Errors in the file raise `InputError` naming the file and the frame's 0-based index in it.
Not read: the old ``VEC1 ...`` lines after the atoms, and compressed files.
"""

import functools
import logging
import os
import re
import time
from contextlib import contextmanager
from dataclasses import dataclass

import numba
import numpy as np
from .ase_io import atomic_numbers, chemical_symbols

from .errors import InputError
from .frames import Frame
from .textparse import INEXACT, INVALID, line_piece, parse_float

__all__ = ["FrameLocation", "scan_frames", "read_frame", "read_piece", "iter_frames"]

log = logging.getLogger(__name__)

# nogil so Dask worker threads parse frames side by side; no fastmath: parsing rounds exactly.
_JIT = dict(nogil=True, cache=True)

_BLOCK = 1 << 24  # scan_frames reads 16 MiB at a time; no count or comment line may be longer
_RUN = 4096  # bytes _count_lines counts without a branch per byte
_MAX_KINDS = 256  # distinct species (or Z) values a frame may hold


@dataclass(frozen=True)
class FrameLocation:
    """Where one frame of an extxyz file is: what `scan_frames` returns and `read_frame` takes.

    offset is the byte offset of the frame's count line; size the number of bytes from there
    to the end of its last atom line; index its 0-based place in the file. Small and
    picklable, so it can be sent to Dask workers.
    """

    offset: int
    n_atoms: int
    index: int
    size: int


class _Bad(Exception):
    """A problem with one frame; the public functions add the path and the frame index."""


# ---------------------------------------------------------------------------------------------
# numba kernels: pure functions over the file's bytes (uint8 arrays)


@numba.njit(**_JIT)
def _find_newline(buf, start, end):
    """Index of the first newline in buf[start:end], or -1."""
    for i in range(start, end):
        if buf[i] == 10:
            return i
    return -1


@numba.njit(**_JIT)
def _newlines(buf, start, stop):
    """The number of newlines in buf[start:stop], without a branch per byte. (The same loop
    written inline in _count_lines does not vectorise and measured 4x slower.)"""
    n = 0
    for byte in buf[start:stop]:
        n += np.int64(byte == 10)
    return n


@numba.njit(**_JIT)
def _count_lines(buf, start, end, n_wanted):
    """Count up to n_wanted newlines in buf[start:end]: (how many, index just past the last one
    counted). Runs of _RUN bytes that hold fewer newlines than are still wanted are counted by
    _newlines."""
    if n_wanted <= 0:
        return 0, start
    found = 0
    i = start
    while i < end:
        stop = min(i + _RUN, end)
        newlines = _newlines(buf, i, stop)
        if found + newlines < n_wanted:
            found += newlines
            i = stop
            continue
        for j in range(i, stop):
            if buf[j] == 10:
                found += 1
                if found == n_wanted:
                    return found, j + 1
    last = end - 1
    while last >= start and buf[last] != 10:
        last -= 1
    return found, last + 1


# what _parse_atoms does with a column
_SKIP, _SYMBOL, _NUMBER, _X = 0, 1, 2, 3  # _X + axis for positions
# what it returns
_OK, _TRUNCATED, _TOO_FEW, _TOO_MANY, _BAD_FLOAT, _BAD_INT, _BAD_SYMBOL, _TOO_MANY_KINDS = range(8)


@numba.njit(**_JIT)
def _parse_atoms(buf, roles, positions, kinds, codes, slow, text):
    """Parse len(positions) atom lines of blank-separated columns from buf, which ends with a
    newline; bytes up to 32 other than the newline are blanks. roles[c] is what column c is:
    _X + axis, _SYMBOL (a chemical symbol), _NUMBER (an atomic number) or _SKIP (unread).

    Fills positions; codes[:n_codes] with the distinct species of the frame in order of
    appearance (a symbol's bytes packed little-endian into an int64, or an atomic number) and
    kinds[k] with atom k's index in codes; slow[:n_slow] with the indices into positions.ravel()
    of the numbers that need float(), and text[:n_text] with their texts, each followed by a
    blank (slow holds 3 * len(positions), text len(buf), so neither can overflow).

    Returns (status, line, column, index, n_codes, n_slow, n_text): status is _OK, or the first
    problem: _TRUNCATED (buf holds only `line` lines), _TOO_FEW / _TOO_MANY values on a line,
    or _BAD_FLOAT / _BAD_INT / _BAD_SYMBOL (longer than 7 bytes) / _TOO_MANY_KINDS for the
    token at buf[index].
    """
    end = buf.shape[0]
    n_columns = roles.shape[0]
    n_codes = 0
    n_slow = 0
    n_text = 0
    last = 0
    i = 0
    for line in range(positions.shape[0]):
        if i >= end:
            return _TRUNCATED, line, 0, i, n_codes, n_slow, n_text
        for column in range(n_columns):
            c = buf[i]
            while c <= 32 and c != 10:
                i += 1
                c = buf[i]
            if c == 10:
                return _TOO_FEW, line, column, i, n_codes, n_slow, n_text
            role = roles[column]
            start = i
            if role == _SKIP:
                while buf[i] > 32:
                    i += 1
                continue
            if role >= _X:
                value, i, state = parse_float(buf, i)
                if state == INVALID or buf[i] > 32:
                    return _BAD_FLOAT, line, column, start, n_codes, n_slow, n_text
                if state == INEXACT:
                    slow[n_slow] = 3 * line + role - _X
                    n_slow += 1
                    for j in range(start, i):
                        text[n_text] = buf[j]
                        n_text += 1
                    text[n_text] = 32
                    n_text += 1
                positions[line, role - _X] = value
                continue
            code = 0
            if role == _SYMBOL:
                while buf[i] > 32:
                    if i - start == 7:
                        return _BAD_SYMBOL, line, column, start, n_codes, n_slow, n_text
                    code |= np.int64(buf[i]) << (8 * (i - start))
                    i += 1
            else:
                c = np.int64(buf[i])
                while 48 <= c <= 57 and i - start < 18:
                    code = code * 10 + (c - 48)
                    i += 1
                    c = np.int64(buf[i])
                if i == start or buf[i] > 32:
                    return _BAD_INT, line, column, start, n_codes, n_slow, n_text
            if n_codes == 0 or codes[last] != code:
                last = 0
                while last < n_codes and codes[last] != code:
                    last += 1
                if last == n_codes:
                    if n_codes == codes.shape[0]:
                        return _TOO_MANY_KINDS, line, column, start, n_codes, n_slow, n_text
                    codes[n_codes] = code
                    n_codes += 1
            kinds[line] = last
        c = buf[i]
        while c <= 32 and c != 10:
            i += 1
            c = buf[i]
        if c != 10:
            return _TOO_MANY, line, n_columns, i, n_codes, n_slow, n_text
        i += 1
    return _OK, 0, 0, 0, n_codes, n_slow, n_text


# ---------------------------------------------------------------------------------------------
# the comment line

_QUOTED = r'"(?:[^"\\]|\\.)*"?'  # an unclosed quote takes the rest of the line
_PAIR = re.compile(rf"""(?P<key>{_QUOTED}|[^\s="]+) (?:[ \t]*=[ \t]*(?P<value>{_QUOTED}
                         | \[(?:[^\[\]]|\[[^\[\]]*\])*\]? | \{{(?:[^{{}}]|\{{[^{{}}]*\}})*\}}? | [^\s]*))?""", re.X)
_CLOSED = re.compile(r'"((?:[^"\\]|\\.)*)"')
_ESCAPE = re.compile(r"\\(.)")


def _key_values(line: str) -> dict:
    """The key=value pairs of a comment line ({key: text}; a key without a value is left out).
    A value is "quoted" (backslash escapes), bracketed ([...] or {...}, nested once) or a bare
    word."""
    pairs = {}
    for match in _PAIR.finditer(line):
        key, value = match.group("key", "value")
        if value is not None:
            pairs[_unquote(key)] = _unquote(value)
    return pairs


def _unquote(word: str) -> str:
    if not word.startswith('"'):
        return word
    closed = _CLOSED.fullmatch(word)
    word = closed.group(1) if closed else word[1:]
    return _ESCAPE.sub(r"\1", word) if "\\" in word else word


@dataclass(frozen=True)
class _Layout:
    """The column layout a Properties value gives."""

    text: str  # the Properties value, for messages
    roles: np.ndarray  # per column: _SKIP, _SYMBOL, _NUMBER or _X + axis
    labels: tuple  # per column, for messages: 'pos[0]', 'species', ...


@functools.lru_cache(maxsize=64)
def _layout(properties: str) -> _Layout:
    fields = properties.split(":")
    example = "e.g. Properties=species:S:1:pos:R:3"
    if len(fields) % 3 or not all(f.isdigit() and int(f) > 0 for f in fields[2::3]):
        raise _Bad(f"Properties={properties} is not NAME:TYPE:COLUMNS triples ({example})")
    found = {}
    labels, roles = [], []
    for name, kind, width in zip(fields[::3], fields[1::3], map(int, fields[2::3])):
        if kind not in ("S", "R", "I", "L"):
            raise _Bad(f"Properties={properties}: column {name} has type {kind!r}, not one of S, R, I, L")
        if name in found:
            raise _Bad(f"Properties={properties} names {name} twice")
        found[name] = (kind, width, len(roles))
        labels += [name] if width == 1 else [f"{name}[{c}]" for c in range(width)]
        roles += [_SKIP] * width
    for name, want in (("pos", ("R", 3)), ("Z", ("I", 1)), ("species", ("S", 1))):
        if name in found and found[name][:2] != want:
            raise _Bad(f"Properties={properties} gives {name} as {':'.join(map(str, found[name][:2]))}, "
                       f"not {name}:{':'.join(map(str, want))}")
    if "pos" not in found:
        raise _Bad(f"Properties={properties} has no pos:R:3 column, so no positions ({example})")
    if "Z" not in found and "species" not in found:
        raise _Bad(f"Properties={properties} has no species:S:1 (or Z:I:1) column, so no elements ({example})")
    first = found["pos"][2]
    roles[first:first + 3] = [_X, _X + 1, _X + 2]
    if "Z" in found:  # ASE takes the elements from Z where both are given
        roles[found["Z"][2]] = _NUMBER
    else:
        roles[found["species"][2]] = _SYMBOL
    return _Layout(properties, np.array(roles, dtype=np.int64), tuple(labels))


_BOOLS = {"t": True, "true": True, "f": False, "false": False}


def _header(comment: bytes):
    """(cell, pbc, layout) from a comment line."""
    pairs = _key_values(comment.decode("utf-8", errors="replace"))
    layout = _layout(pairs.get("Properties", "species:S:1:pos:R:3"))
    if "Lattice" not in pairs:
        return np.zeros((3, 3)), np.zeros(3, dtype=bool), layout
    lattice = pairs["Lattice"]
    try:
        cell = np.array([float(v) for v in re.split(r"[\s,\[\]{}]+", lattice) if v], dtype=np.float64)
    except ValueError:
        cell = None
    if cell is None or cell.shape != (9,):
        raise _Bad(f'Lattice="{lattice}" is not 9 numbers (rows a, b, c of the cell)')
    pbc = np.ones(3, dtype=bool)
    if "pbc" in pairs:
        words = [_BOOLS.get(v.lower()) for v in pairs["pbc"].split()]
        if len(words) not in (1, 3) or None in words:
            raise _Bad(f'pbc="{pairs["pbc"]}" is not three (or one) of T, F, True, False (e.g. pbc="T T F")')
        pbc[:] = words
    return cell.reshape(3, 3), pbc, layout


# ---------------------------------------------------------------------------------------------
# the atom block


def _count(line: bytes, index: int) -> int:
    """The number of atoms a count line gives."""
    text = line.decode("utf-8", errors="replace").strip()
    try:
        n = int(text)
    except ValueError:
        hint = (": VEC lines (an old way to give the cell) are not read, give it as Lattice=\"...\""
                if text.startswith("VEC") else ": does the frame before have more atom lines than its count says?"
                if index else ": not an XYZ file")
        raise _Bad(f"expected the number of atoms, found {text[:60]!r}{hint}") from None
    if n < 0:
        raise _Bad(f"the number of atoms is negative ({n})")
    return n


def _token(block: np.ndarray, index: int) -> str:
    stop = index
    while stop < len(block) and block[stop] > 32 and stop - index < 60:
        stop += 1
    return block[index:stop].tobytes().decode("utf-8", errors="replace")


def _atoms_error(block, n: int, layout: _Layout, status: int, line: int, column: int, index: int) -> str:
    where = f"atom line {line + 1} (of {n})"
    columns = f"{len(layout.labels)} columns of Properties={layout.text}"
    if status == _TRUNCATED:
        return (f"only {line} of the {n} atom lines the count line gives are in the frame's bytes: "
                "the file changed since scan_frames")
    if status == _TOO_FEW:
        return f"{where} has {column} values, not the {columns}"
    if status == _TOO_MANY:
        return f"{where} has more values than the {columns}"
    token = _token(block, index)
    if status == _BAD_SYMBOL:
        return f"{where}: unknown chemical symbol {token!r}"
    if status == _TOO_MANY_KINDS:
        return f"more than {_MAX_KINDS} distinct elements in column {layout.labels[column]}"
    kind = "a number" if status == _BAD_FLOAT else "an atomic number"
    return f"{where}: cannot read {token!r} in column {layout.labels[column]} as {kind}"


def _element(code: int, by_symbol: bool) -> int:
    """The atomic number of a species code from _parse_atoms; -1 for none."""
    if not by_symbol:
        return code if 0 <= code < len(chemical_symbols) else -1
    return atomic_numbers.get(_element_text(code).capitalize(), -1)


def _element_text(code) -> str:
    return int(code).to_bytes(8, "little").rstrip(b"\0").decode("utf-8", errors="replace")


def _read_atoms(block: np.ndarray, n: int, layout: _Layout) -> tuple[np.ndarray, np.ndarray]:
    """(positions, numbers) of the n atom lines of block, which ends with a newline."""
    positions = np.empty((n, 3), dtype=np.float64)
    kinds = np.empty(n, dtype=np.int64)
    codes = np.zeros(_MAX_KINDS, dtype=np.int64)
    slow = np.empty(3 * n, dtype=np.int64)  # np.empty: no page is touched unless written
    text = np.empty(len(block), dtype=np.uint8)
    status, line, column, index, n_codes, n_slow, n_text = _parse_atoms(
        block, layout.roles, positions, kinds, codes, slow, text)
    if status != _OK:
        raise _Bad(_atoms_error(block, n, layout, status, line, column, index))
    if n_slow:
        values = map(float, text[:n_text].tobytes().split())
        positions.reshape(-1)[slow[:n_slow]] = np.fromiter(values, dtype=np.float64, count=n_slow)
    by_symbol = _SYMBOL in layout.roles
    table = [_element(code, by_symbol) for code in codes[:n_codes].tolist()]
    if -1 in table:
        kind = table.index(-1)
        line = int(np.argmax(kinds == kind))
        what = (f"unknown chemical symbol {_element_text(codes[kind])!r}" if by_symbol
                else f"Z = {codes[kind]} is not an atomic number")
        raise _Bad(f"atom line {line + 1} (of {n}): {what}")
    return positions, np.array(table, dtype=np.int64)[kinds]


# ---------------------------------------------------------------------------------------------
# files


@contextmanager
def _open(path):
    """The file opened for binary reading, every failure an InputError naming the path."""
    try:
        f = open(path, "rb", buffering=0)
    except FileNotFoundError:
        raise InputError("no such file", path=path) from None
    except IsADirectoryError:
        raise InputError("is a directory, not an extxyz file", path=path) from None
    except OSError as err:
        raise InputError(f"cannot read: {err.strerror or err}", path=path) from None
    with f:
        try:
            if f.read(2) == b"\x1f\x8b":
                raise InputError("is gzip-compressed: decompress it first (gunzip), frames are read by "
                                 "byte offset", path=path)
            f.seek(0)
            yield f
        except OSError as err:
            raise InputError(f"cannot read: {err.strerror or err}", path=path) from None


class _Scanner:
    """A file read forward in _BLOCK-byte blocks: whole lines, or lines counted and skipped."""

    def __init__(self, f):
        self.f = f
        self.buf = np.empty(min(_BLOCK, os.fstat(f.fileno()).st_size + 1), dtype=np.uint8)
        self.base = 0  # file offset of buf[0]
        self.pos = 0  # next unread byte
        self.end = 0  # bytes of buf that hold data

    def tell(self) -> int:
        return self.base + self.pos

    def _more(self) -> bool:
        """Move the unread bytes to the front of the buffer and read after them; False at the end
        of the file."""
        tail = self.end - self.pos
        if tail == len(self.buf) < _BLOCK:  # the file grew since it was opened
            self.buf = np.concatenate([self.buf, np.empty(_BLOCK - tail, dtype=np.uint8)])
        self.buf[:tail] = self.buf[self.pos:self.end]
        self.base += self.pos
        self.pos, self.end = 0, tail
        got = self.f.readinto(memoryview(self.buf)[tail:]) if tail < len(self.buf) else 0
        self.end += got
        return got > 0

    def readline(self) -> bytes:
        """The next line, with its newline; b'' at the end of the file."""
        while (i := _find_newline(self.buf, self.pos, self.end)) < 0:
            if self.end - self.pos == _BLOCK:
                raise _Bad(f"the line at byte {self.tell()} is longer than {_BLOCK >> 20} MiB: not an XYZ file")
            if not self._more():
                i = self.end - 1  # the last line, without a newline
                break
        line = self.buf[self.pos:i + 1].tobytes()
        self.pos = i + 1
        return line

    def skip_lines(self, n: int) -> int:
        """Skip the next n lines, or the rest of the file where it has fewer; how many."""
        found = 0
        while True:
            counted, self.pos = _count_lines(self.buf, self.pos, self.end, n - found)
            found += counted
            if found == n or not self._more():
                break
        if found < n and self.pos < self.end:  # the last line, without a newline
            found, self.pos = found + 1, self.end
        return found


def _locate(f, path):
    """The FrameLocations of the file open as f, in order; raises InputError."""
    scanner = _Scanner(f)
    index = 0
    try:
        while True:
            line = scanner.readline()
            while line and not line.strip():  # blank lines between frames, or at the end
                line = scanner.readline()
            if not line:
                break
            offset = scanner.tell() - len(line)
            n = _count(line, index)
            if not scanner.readline():
                raise _Bad(f"the file ends after the count line ({n} atoms), before the comment line (truncated)")
            found = scanner.skip_lines(n)
            if found < n:
                raise _Bad(f"the count line gives {n} atoms but only {found} atom lines follow before the end "
                           "of the file (truncated)")
            yield FrameLocation(offset=offset, n_atoms=n, index=index, size=scanner.tell() - offset)
            index += 1
    except _Bad as err:
        raise InputError(str(err), path=path, frame=index) from None
    if index == 0:
        raise InputError("no frames: the file is empty", path=path)


def _frame_head(buf: np.ndarray, location: FrameLocation):
    """(cell, pbc, layout, index of the first atom line) from buf, the frame's bytes from its
    count line on (at least its two header lines, the comment line ending with a newline);
    raises _Bad where the count is not the one scan_frames found there."""
    count_end = _find_newline(buf, 0, len(buf))
    try:
        n = _count(buf[:count_end].tobytes(), location.index)
    except _Bad:
        n = None
    comment_end = _find_newline(buf, count_end + 1, len(buf))
    if n != location.n_atoms or comment_end < 0:
        raise _Bad(f"the frame at byte {location.offset} is not the {location.n_atoms}-atom frame scan_frames "
                   "found there: the file changed since scan_frames")
    cell, pbc, layout = _header(buf[count_end + 1:comment_end].tobytes())
    return cell, pbc, layout, comment_end + 1


def _read_located(f, location: FrameLocation, path) -> Frame:
    """The frame at location of the file open as f; raises InputError."""
    offset, size = location.offset, location.size
    try:
        buf = np.empty(size + 1, dtype=np.uint8)
        f.seek(offset)
        got = 0
        while got < size and (chunk := f.readinto(memoryview(buf)[got:size])):
            got += chunk
        if got < size:
            raise _Bad(f"the file ends at byte {offset + got}, inside the frame scan_frames found at bytes "
                       f"{offset}-{offset + size}: the file changed since scan_frames")
        buf[size] = 10  # the parser needs a newline at the end
        cell, pbc, layout, atoms_start = _frame_head(buf, location)
        positions, numbers = _read_atoms(buf[atoms_start:], location.n_atoms, layout)
    except _Bad as err:
        raise InputError(str(err), path=path, frame=location.index) from None
    return Frame(positions=positions, numbers=numbers, cell=cell, pbc=pbc)


def read_piece(path, location: FrameLocation, piece: int, n_pieces: int) -> Frame:
    """A Frame of the atoms of piece `piece` of `n_pieces` of a frame's atom lines
    (textparse.line_piece: near equal shares of the bytes), in file order, so a frame is read
    by several tasks, each holding only its share. Raises InputError naming the file, the frame and the byte where the
    piece's atom lines begin."""
    with _open(path) as f:
        try:
            cell, pbc, layout, atoms_start = _frame_head(np.frombuffer(_head_lines(f, location), dtype=np.uint8),
                                                         location)
            try:
                first, block = line_piece(f, location.offset + atoms_start, location.offset + location.size, piece,
                                          n_pieces)
            except EOFError as err:
                raise _Bad(f"{err}: the file changed since scan_frames") from None
            n = int(np.count_nonzero(block == 10))
            try:
                positions, numbers = _read_atoms(block, n, layout) if n else (np.empty((0, 3)), np.empty(0, dtype=np.int64))
            except _Bad as err:
                raise _Bad(f"in the {n} atom lines from byte {first}: {err}") from None
        except _Bad as err:
            raise InputError(str(err), path=path, frame=location.index) from None
    return Frame(positions=positions, numbers=numbers, cell=cell, pbc=pbc)


def _head_lines(f, location: FrameLocation) -> bytes:
    """The count and comment lines of the frame at location, with their newlines."""
    f.seek(location.offset)
    head = b""
    while head.count(b"\n") < 2:
        chunk = f.read(min(1 << 16, location.size - len(head)))
        if not chunk:
            raise _Bad(f"the frame at byte {location.offset} ends before its comment line: the file changed "
                       "since scan_frames")
        head += chunk
    count_end = head.index(b"\n")
    return head[:head.index(b"\n", count_end + 1) + 1]


def scan_frames(path) -> list[FrameLocation]:
    """Find every frame of an extxyz file without parsing atom lines: one location per frame,
    in file order. Reads each count and comment line, then skips the atom lines by counting
    newlines in large byte blocks, so it runs at close to disk speed on multi-GB files.

    Raises InputError for a missing, unreadable or empty file, a count line that is not a
    number, and a frame with fewer atom lines than its count line gives. Comment lines and
    atom lines are checked by read_frame.
    """
    started = time.perf_counter()
    with _open(path) as f:
        locations = list(_locate(f, path))
    log.debug("%s: %d frames scanned in %.3f s", path, len(locations), time.perf_counter() - started)
    return locations


def read_frame(path, location: FrameLocation) -> Frame:
    """Read one frame at a FrameLocation from scan_frames (see the module docstring for what a
    Frame holds). Raises InputError naming the file and the frame index."""
    with _open(path) as f:
        return _read_located(f, location, path)


def iter_frames(path):
    """Yield every frame of the file in order, each read as scan_frames finds it (the file is
    read twice, the second time from the page cache). Same conventions and errors as
    read_frame; a problem in a frame is raised when the iteration reaches it."""
    with _open(path) as scan, _open(path) as f:
        for location in _locate(scan, path):
            yield _read_located(f, location, path)
