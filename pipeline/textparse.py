"""Numbers in text, parsed by numba kernels: the one number parser of the fast text readers
(`pipeline.extxyz`, `pipeline.lammps`).

`parse_float` keeps a number only where it can round it exactly, so a reader that uses it
gives what Python's float() gives, bit for bit: an integer mantissa of at most 2**53 times
an exact power of ten up to 1e22 is one correctly rounded multiplication or division
(Clinger's fast path). Anything else (17 or more significant digits, or a decimal exponent
beyond +-22) is flagged `INEXACT` and the caller converts its text with float(). The
formats simulation codes write (``%16.8f``, ``%g``, ``%.15g``, ...) never need it.

The kernels read uint8 arrays (a file's bytes) and rely on a byte that ends the number
(a blank or newline) following it in the array, so they never test for the array's end.

nogil so Dask worker threads parse frames side by side; no fastmath: parsing rounds exactly.
"""

import numba
import numpy as np

__all__ = ["INVALID", "EXACT", "INEXACT", "parse_float", "parse_int", "line_piece"]

_JIT = dict(nogil=True, cache=True)

# what parse_float says of a number
INVALID, EXACT, INEXACT = 0, 1, 2

_POW10 = np.array([float(10 ** k) for k in range(23)])  # exact doubles
_MANTISSA_CAP = 10 ** 17  # below it one more digit still fits in int64
_EXACT_MANTISSA = 2 ** 53
_NAN = np.frombuffer(b"nan", np.uint8).copy()
_INF = np.frombuffer(b"inf", np.uint8).copy()
_INFINITY = np.frombuffer(b"infinity", np.uint8).copy()


@numba.njit(**_JIT)
def _lower_is(buf, i, word):
    """buf[i:i + len(word)], lower-cased, equals word (lower-case letters)."""
    if i + len(word) > buf.shape[0]:
        return False
    for k in range(len(word)):
        if (buf[i + k] | 32) != word[k]:
            return False
    return True


@numba.njit(inline="always", **_JIT)
def parse_float(buf, i):
    """The number whose text starts at buf[i] (a byte that is not part of it follows it in
    buf): (value, index past it, state). state is EXACT where value is what float() gives
    (Clinger's fast path: an integer of at most 2**53 times an exact power of ten up to 1e22,
    one rounding), INEXACT where the text is a number that needs float() (value is then
    meaningless, 0.0), INVALID where it is not a number. Takes
    [+-]digits[.digits][e[+-]digits] (digits on either side of the point), and nan, inf and
    infinity in any case.

    Inlined into the caller's loop, it reads the common [-]digits[.digits] followed by a blank
    (or any byte up to 32) in one pass and one division by an exact power of ten; anything
    else (an exponent, a sign +, more than 2**53, nan, something malformed) is read again by
    _parse_float_general, which gives the same for what this takes.
    """
    start = i
    negative = buf[i] == 45
    if negative:
        i += 1
    mantissa = 0
    n_digits = 0
    point = -1
    while True:
        d = np.int64(buf[i]) - 48
        if 0 <= d <= 9:
            mantissa = mantissa * 10 + d  # wraps past 18 digits: those go the general way
            n_digits += 1
        elif d == -2 and point < 0:  # '.'
            point = n_digits
        else:
            break
        i += 1
    decimals = n_digits - point if point >= 0 else 0
    if buf[i] <= 32 and 0 < n_digits <= 18 and mantissa <= _EXACT_MANTISSA and decimals <= 22:
        value = float(mantissa) / _POW10[decimals]
        return (-value if negative else value), i, EXACT
    return _parse_float_general(buf, start)


@numba.njit(**_JIT)
def _parse_float_general(buf, i):
    """parse_float for all it takes, in one loop that drops digits past 10**17."""
    negative = buf[i] == 45
    if negative or buf[i] == 43:
        i += 1
    mantissa = 0
    exponent = 0
    n_digits = 0
    point = False
    while True:
        c = np.int64(buf[i])
        if 48 <= c <= 57:
            if mantissa < _MANTISSA_CAP:
                mantissa = mantissa * 10 + (c - 48)
                if point:
                    exponent -= 1
            elif not point:  # a digit dropped: the mantissa is already beyond 2**53, so INEXACT
                exponent += 1
            n_digits += 1
        elif c == 46 and not point:
            point = True
        else:
            break
        i += 1
    if n_digits == 0:
        sign = -1.0 if negative else 1.0
        if point:
            return 0.0, i, INVALID
        if _lower_is(buf, i, _NAN):
            return np.nan, i + 3, EXACT
        if _lower_is(buf, i, _INFINITY):
            return sign * np.inf, i + 8, EXACT
        if _lower_is(buf, i, _INF):
            return sign * np.inf, i + 3, EXACT
        return 0.0, i, INVALID
    if (buf[i] | 32) == 101:  # e or E
        i += 1
        exponent_negative = buf[i] == 45
        if exponent_negative or buf[i] == 43:
            i += 1
        written = 0
        start = i
        c = np.int64(buf[i])
        while 48 <= c <= 57:
            written = min(written * 10 + (c - 48), 1 << 30)
            i += 1
            c = np.int64(buf[i])
        if i == start:
            return 0.0, i, INVALID
        exponent += -written if exponent_negative else written
    if mantissa == 0:
        return (-0.0 if negative else 0.0), i, EXACT
    if mantissa > _EXACT_MANTISSA or not -22 <= exponent <= 22:
        return 0.0, i, INEXACT
    value = float(mantissa)
    value = value * _POW10[exponent] if exponent >= 0 else value / _POW10[-exponent]
    return (-value if negative else value), i, EXACT


@numba.njit(inline="always", **_JIT)
def parse_int(buf, i):
    """The decimal integer [+-]digits that starts at buf[i] (a byte that is not a digit
    follows it in buf): (value, index past it, ok). ok is False where there are no digits or
    more than 18 (which could overflow int64)."""
    negative = buf[i] == 45
    if negative or buf[i] == 43:
        i += 1
    value = 0
    n_digits = 0
    d = np.int64(buf[i]) - 48
    while 0 <= d <= 9:
        value = value * 10 + d
        n_digits += 1
        i += 1
        d = np.int64(buf[i]) - 48
    return (-value if negative else value), i, 0 < n_digits <= 18


def line_piece(f, start: int, end: int, piece: int, n_pieces: int) -> tuple[int, np.ndarray]:
    """Piece `piece` of `n_pieces` of the whole lines in bytes [start, end) of the binary file
    f (start is a line start): cut near equal shares of the bytes, each cut moved forward to
    the next line start, so the pieces hold every line once. Returns (its first byte, its
    bytes), which end with a newline (one is added where the last line of the file has none);
    an empty array where no line starts in the piece's share. Raises EOFError where the file
    ends before `end`."""
    first, stop = (_line_start_at(f, start, end, start + (end - start) * p // n_pieces) for p in (piece, piece + 1))
    buf = np.empty(stop - first + 1, dtype=np.uint8)
    f.seek(first)
    got = 0
    while got < stop - first and (chunk := f.readinto(memoryview(buf)[got:stop - first])):
        got += chunk
    if got < stop - first:
        raise EOFError(f"the file ends at byte {first + got}, before byte {stop}")
    if stop == first or buf[stop - first - 1] == 10:
        return first, buf[:stop - first]
    buf[stop - first] = 10
    return first, buf


def _line_start_at(f, start: int, end: int, at: int) -> int:
    """The first line start at or after byte `at` of the lines in [start, end) (end if none)."""
    if at <= start:
        return start
    position = at - 1  # a line starts at `at` where the byte before it is a newline
    f.seek(position)
    while position < end:
        chunk = f.read(min(1 << 16, end - position))
        if not chunk:
            raise EOFError(f"the file ends at byte {position}, before byte {end}")
        newline = chunk.find(b"\n")
        if newline >= 0:
            return min(position + newline + 1, end)
        position += len(chunk)
    return end
