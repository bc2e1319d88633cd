"""PNG plots of an audit, drawn with matplotlib on its Agg canvas (no pyplot, no display).

Values come shaped (..., n_bandwidths), as everywhere in the project: one line or histogram
per bandwidth.
"""

from pathlib import Path

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from .exports import write_atomically

DPI = 120


def _figure() -> tuple[Figure, object]:
    figure = Figure(figsize=(6.4, 4.0), layout="constrained")
    FigureCanvasAgg(figure)
    return figure, figure.add_subplot()


def _save(figure: Figure, path: Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    write_atomically(path, lambda target: figure.savefig(target, format="png", dpi=DPI))
    return path


def _labels(bandwidths) -> list[str]:
    return [f"h = {h:g}" for h in bandwidths]


def dh_histogram(path: Path, dh: np.ndarray, bandwidths, title: str) -> Path:
    """Histogram of per-environment dH, dh shaped (n_environments, n_bandwidths)."""
    figure, axes = _figure()
    dh = np.asarray(dh)
    bins = np.histogram_bin_edges(dh, bins=50)
    for column, label in zip(dh.T, _labels(bandwidths)):
        axes.hist(column, bins=bins, histtype="step", label=label)
    axes.axvline(0.0, color="0.5", linestyle="--", linewidth=1, label="dH = 0 (novel above)")
    axes.set(xlabel="dH (nats)", ylabel="environments", title=title)
    axes.legend()
    return _save(figure, path)


def dh_per_frame(path: Path, frames, dh_mean: np.ndarray, dh_max: np.ndarray, bandwidths, title: str) -> Path:
    """Mean and max dH of each frame along a trajectory, shaped (n_frames, n_bandwidths)."""
    figure, axes = _figure()
    for mean, largest, label in zip(np.asarray(dh_mean).T, np.asarray(dh_max).T, _labels(bandwidths)):
        line, = axes.plot(frames, mean, marker=".", label=f"mean, {label}")
        axes.plot(frames, largest, marker=".", linestyle="--", color=line.get_color(), label=f"max, {label}")
    axes.axhline(0.0, color="0.5", linewidth=1)
    axes.xaxis.set_major_locator(MaxNLocator(integer=True))
    axes.set(xlabel="frame", ylabel="dH (nats)", title=title)
    axes.legend()
    return _save(figure, path)


def novelty_per_generation(path: Path, generations: list[str], novelty: np.ndarray, bandwidths, title: str) -> Path:
    """Novelty of each generation against all before it, shaped (n_generations, n_bandwidths)."""
    figure, axes = _figure()
    novelty = np.asarray(novelty)
    width = 0.8 / novelty.shape[1]
    positions = np.arange(len(generations))
    for i, (column, label) in enumerate(zip(novelty.T, _labels(bandwidths))):
        axes.bar(positions + i * width, column, width, label=label)
    axes.set_xticks(positions + width * (novelty.shape[1] - 1) / 2, generations)
    axes.set(xlabel="generation", ylabel="novelty (fraction with dH > 0)", ylim=(0, 1), title=title)
    axes.legend()
    return _save(figure, path)
