"""A LAMMPS text-dump writer for tests: frames made from a known cell, origin and
fractional coordinates (see test_lammps.make_frame), in any coordinate style and column order."""

import numpy as np

SPECIES = {1: "Cu", 2: "Ni", 3: "Al"}
STYLES = {"x": ("x", "y", "z"), "xs": ("xs", "ys", "zs"), "xu": ("xu", "yu", "zu"), "xsu": ("xsu", "ysu", "zsu")}


def box_lines(cell, origin, triclinic, flags):
    (lx, _, _), (xy, ly, _), (xz, yz, lz) = cell.tolist()
    xlo, ylo, zlo = origin.tolist()
    if not triclinic:
        return [f"ITEM: BOX BOUNDS {flags}", f"{xlo!r} {xlo + lx!r}", f"{ylo!r} {ylo + ly!r}", f"{zlo!r} {zlo + lz!r}"]
    return [f"ITEM: BOX BOUNDS xy xz yz {flags}",
            f"{xlo + min(0, xy, xz, xy + xz)!r} {xlo + lx + max(0, xy, xz, xy + xz)!r} {xy!r}",
            f"{ylo + min(0, yz)!r} {ylo + ly + max(0, yz)!r} {xz!r}",
            f"{zlo!r} {zlo + lz!r} {yz!r}"]


def dump_text(frames, style="x", columns=("id", "type", "*"), flags="pp pp pp", fmt="%.17g",
              triclinic=False, seed=0) -> str:
    """A LAMMPS text dump of frames: columns name the order ('*' for the three position
    columns of style); vx, q, c_pe, ix and element are filled with something."""
    rng = np.random.default_rng(seed)
    names = [n for c in columns for n in (STYLES[style] if c == "*" else [c])]
    lines = []
    for frame in frames:
        n = len(frame["ids"])
        cartesian = frame["origin"] + frame["fractional"] @ frame["cell"]
        values = {"id": frame["ids"], "type": frame["types"], "element": [SPECIES[t] for t in frame["types"]],
                  "vx": rng.normal(size=n), "q": rng.normal(size=n), "c_pe": rng.normal(size=n) - 3,
                  "ix": rng.integers(-2, 3, n)}
        for axis in range(3):
            values[STYLES[style][axis]] = (frame["fractional"] if "s" in style else cartesian)[:, axis]
        lines += ["ITEM: TIMESTEP", str(frame["timestep"]), "ITEM: NUMBER OF ATOMS", str(n)]
        lines += box_lines(frame["cell"], frame["origin"], triclinic, flags)
        lines.append("ITEM: ATOMS " + " ".join(names))
        for k in range(n):
            lines.append(" ".join(fmt % values[c][k] if isinstance(values[c][k], float) else str(values[c][k])
                                  for c in names))
    return "\n".join(lines) + "\n"
