"""Plots of the dataset tools, as PNG files (matplotlib, Agg backend: no display needed)."""

from pathlib import Path

import numpy as np

from .errors import InputError
from .exports import write_atomically


def plot_learning_curve(summary: dict, path: Path) -> None:
    """Mean H ± its spread over runs against the sample size, one line per bandwidth, with
    log(sample size), the entropy of a sample in which no two environments are alike."""
    try:
        import matplotlib
    except ImportError:
        raise InputError("--plot needs matplotlib (pip install matplotlib)") from None
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    points = summary["points"]
    sizes = np.array([point["sample_size"] for point in points])
    means = np.array([point["entropy_mean"] for point in points]).reshape(len(points), -1)
    spreads = np.array([point["entropy_std"] for point in points]).reshape(len(points), -1)
    bandwidths = np.atleast_1d(summary["bandwidth"])
    figure, axes = plt.subplots(figsize=(5, 3.5), layout="constrained")
    for column, h in enumerate(bandwidths):
        axes.errorbar(sizes, means[:, column], yerr=spreads[:, column], marker="o", capsize=3, label=f"h = {h:g}")
    axes.plot(sizes, np.log(sizes), color="grey", linestyle="--", label="log n")
    axes.set_xlabel("environments in the sample, n")
    axes.set_ylabel("entropy H (nats)")
    axes.set_title(f"learning curve, {summary['runs']} runs per point", fontsize=10)
    axes.legend(fontsize=8)
    write_atomically(Path(path), lambda target: figure.savefig(target, format="png", dpi=120))
    plt.close(figure)
