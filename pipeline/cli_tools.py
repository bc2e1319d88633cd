"""Command-line subcommands of the dataset tools (spec §3): learning-curve, entropy-sampler,
bandwidth, trajectory, compress and information-gap. pipeline.cli registers them with
add_tool_commands; each handler opens or ingests its inputs, calls pipeline.tools and
writes the summary (JSON), frames (extended XYZ) or a plot (PNG)."""

import argparse
import contextlib
import json
from pathlib import Path

from quests_core import COMPRESSION_METHODS, ToolParams

from .cli import _bandwidth, _emit, _ingest_request, _positive_int, add_eps_option
from .errors import InputError

SUMMARY_SUFFIXES = (".json",)
FRAME_SUFFIXES = (".xyz", ".extxyz")
PLOT_SUFFIXES = (".png",)


def _fraction(text: str) -> float:
    """A number; whether it lies in (0, 1] is checked with the dataset's other options, so
    every bad value gets the same one-line message."""
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None


def _add_seed(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--seed", type=int, default=ToolParams.seed,
                        help="seed of the random draws: the same seed gives the same result (default %(default)s)")


def _add_sampling(parser: argparse.ArgumentParser, runs: int) -> None:
    parser.add_argument("--runs", type=_positive_int, default=runs, help="random samples per point (default %(default)s)")
    _add_seed(parser)
    parser.add_argument("--replace", action="store_true",
                        help="draw environments with replacement, as quests does (default: without, so a sample "
                             "is a subset of the dataset)")


def add_tool_commands(commands, parents: dict) -> None:
    """Add the tool subcommands to `commands` (argparse subparsers). parents holds cli's shared
    option parsers under "analysis", "input", "descriptor" and "cluster"."""
    datasets = [parents["input"], parents["descriptor"], parents["cluster"]]
    analysis = [parents["analysis"], *datasets]

    curve = commands.add_parser(
        "learning-curve", parents=analysis, help="entropy H of random fractions of a dataset",
        description="Entropy of random fractions of a dataset's environments, several runs each: mean and spread, "
                    "as JSON and optionally a plot. Runs are Dask tasks.")
    curve.add_argument("input", type=Path, metavar="INPUT")
    curve.add_argument("-f", "--fractions", type=_fraction, nargs="+", default=list(ToolParams.learning_curve_fractions),
                       metavar="F", help="fractions of the dataset, each in (0, 1] (default %(default)s)")
    _add_sampling(curve, ToolParams.learning_curve_runs)
    curve.add_argument("-o", "--output", type=Path, metavar="SUMMARY.json")
    curve.add_argument("--plot", type=Path, metavar="PLOT.png", help="plot H against the sample size")
    curve.set_defaults(handler=_learning_curve)

    sampler = commands.add_parser(
        "entropy-sampler", parents=analysis, help="entropy H of random samples of a dataset",
        description="Entropy of random samples of SIZE environments, several runs: mean and spread. Runs are Dask tasks.")
    sampler.add_argument("input", type=Path, metavar="INPUT")
    sampler.add_argument("-s", "--sample-size", type=int, default=ToolParams.sampler_sample_size, metavar="SIZE",
                         help="environments per sample (default %(default)s)")
    _add_sampling(sampler, ToolParams.sampler_runs)
    sampler.add_argument("-o", "--output", type=Path, metavar="SUMMARY.json")
    sampler.set_defaults(handler=_entropy_sampler)

    bandwidth = commands.add_parser(
        "bandwidth", parents=datasets, help="bandwidth from an atomic volume or a dataset's volume per atom",
        description="quests' bandwidth rule h(V) = 0.0897141 exp(-0.5 (V / 10.896)^2) + 0.0119417 for an atomic "
                    "volume V in Å^3/atom, or for the mean volume per atom of a dataset's frames.")
    bandwidth.add_argument("source", metavar="VOLUME|INPUT", help="volume per atom in Å^3, or a dataset")
    bandwidth.add_argument("-o", "--output", type=Path, metavar="SUMMARY.json")
    bandwidth.set_defaults(handler=_bandwidth_command)

    trajectory = commands.add_parser(
        "trajectory", parents=analysis, help="per-frame dH of a trajectory, against itself and references",
        description="dH of every environment against its own frame (quests' trajectory dH) and, given REFERENCEs, "
                    "against them; per-frame entropy, mean and max. OUT: .json summary or .xyz/.extxyz frames "
                    "with per-atom dH_self (and dH).")
    trajectory.add_argument("input", type=Path, metavar="TRAJECTORY")
    trajectory.add_argument("references", type=Path, nargs="*", metavar="REFERENCE")
    trajectory.add_argument("-o", "--output", type=Path, metavar="OUT")
    add_eps_option(trajectory)
    trajectory.set_defaults(handler=_trajectory)

    compress = commands.add_parser(
        "compress", parents=analysis, help="select the most informative structures of a dataset",
        description="Select structures (frames) of a dataset. Methods: msc (with --reference: conditional on a "
                    "reference set), fps, mean-fps, k-means, random. OUT: .json ({indices, method, summary}) or "
                    ".xyz/.extxyz (the selected frames; copied as they are from extxyz inputs).")
    compress.add_argument("input", type=Path, metavar="INPUT")
    how_many = compress.add_mutually_exclusive_group()
    how_many.add_argument("-s", "--size", type=int, default=None, metavar="N", help="structures to keep")
    how_many.add_argument("-f", "--fraction", type=_fraction, default=None, metavar="F",
                          help=f"fraction of the structures to keep, in (0, 1] (default {ToolParams.compression_fraction})")
    compress.add_argument("-m", "--compression-method", default=ToolParams.compression_method, metavar="METHOD",
                          help=f"one of {', '.join(COMPRESSION_METHODS)} (default %(default)s)")
    compress.add_argument("-r", "--reference", type=Path, nargs="+", default=[], metavar="REFERENCE",
                          help="structures already chosen: msc picks what they leave out")
    _add_seed(compress)
    compress.add_argument("-o", "--output", type=Path, metavar="OUT")
    add_eps_option(compress)
    compress.set_defaults(handler=_compress)

    gap = commands.add_parser(
        "information-gap", parents=analysis, help="what a subset of a dataset leaves out",
        description="H of a dataset and of a subset (another dataset, or frames of this one listed in a JSON file "
                    "such as compress writes), their gap, and dH(x | subset) of every environment: novelty, overlap. "
                    "OUT: .json summary or .xyz/.extxyz frames with per-atom dH.")
    gap.add_argument("input", type=Path, metavar="INPUT")
    gap.add_argument("subset", type=Path, nargs="?", metavar="SUBSET")
    gap.add_argument("--indices", type=Path, metavar="SELECTION.json",
                     help='frames of INPUT forming the subset: {"indices": [...]} (compress -o) or a JSON list')
    gap.add_argument("-o", "--output", type=Path, metavar="OUT")
    add_eps_option(gap)
    gap.set_defaults(handler=_information_gap)


# ---------------------------------------------------------------- helpers

def _check_output(path: Path | None, suffixes: tuple[str, ...], option: str = "-o") -> str:
    suffix = path.suffix.lower() if path else ".json"
    if suffix not in suffixes:
        raise InputError(f"{option} {path}: the output must end in one of {', '.join(suffixes)}")
    return suffix


def _exact_only(args) -> None:
    if args.method != "exact":
        raise InputError(f"{args.command} computes exact kernel sums; --method {args.method} is not available here")


def _single_bandwidth(args) -> None:
    if len(args.bandwidth) > 1:
        raise InputError(f"{args.command}: this output takes one bandwidth, got {len(args.bandwidth)}")


def _store_dir(args) -> Path:
    return args.output.parent if args.output else Path.cwd()


@contextlib.contextmanager
def _client(args, paths: list[Path], needed: bool):
    """A Dask client where the tool runs tasks or an input must be ingested first, else None."""
    from .cluster import local_client
    from .inputs import is_store

    for path in paths:
        if not path.exists():  # before starting a cluster for nothing
            raise InputError("no such file", path=path)
    if needed or not all(is_store(path) for path in paths):
        with local_client(args.workers, args.scheduler) as client:
            yield client
    else:
        yield None


def _open(path: Path, args, client):
    from .inputs import open_or_ingest
    from .store import DescriptorStore

    if client is None:  # every input is a store (see _client)
        return DescriptorStore.open(path, mode="r+")
    return open_or_ingest(path, _ingest_request(args), _store_dir(args), client)


# ---------------------------------------------------------------- handlers

def _learning_curve(args) -> int:
    from .tool_plots import plot_learning_curve
    from .tools import learning_curve_summary

    _exact_only(args)
    _check_output(args.output, SUMMARY_SUFFIXES)
    if args.plot:
        _check_output(args.plot, PLOT_SUFFIXES, "--plot")
    with _client(args, [args.input], needed=True) as client:
        store = _open(args.input, args, client)
        summary = learning_curve_summary(client, store, bandwidth=_bandwidth(args), fractions=args.fractions,
                                         runs=args.runs, seed=args.seed, replace=args.replace)
    if args.plot:
        plot_learning_curve(summary, args.plot)
        print(f"wrote {args.plot}")
    _emit(summary, args.output)
    return 0


def _entropy_sampler(args) -> int:
    from .tools import entropy_sampler_summary

    _exact_only(args)
    _check_output(args.output, SUMMARY_SUFFIXES)
    with _client(args, [args.input], needed=True) as client:
        store = _open(args.input, args, client)
        summary = entropy_sampler_summary(client, store, bandwidth=_bandwidth(args), sample_size=args.sample_size,
                                          runs=args.runs, seed=args.seed, replace=args.replace)
    _emit(summary, args.output)
    return 0


def _volume(text: str) -> float | None:
    """The number in text, or None where text names an existing path or is not a number."""
    if Path(text).exists():
        return None
    try:
        return float(text)
    except ValueError:
        return None


def _bandwidth_command(args) -> int:
    from .tools import bandwidth_summary

    _check_output(args.output, SUMMARY_SUFFIXES)
    volume = _volume(args.source)
    if volume is not None:
        summary = bandwidth_summary(volume=volume)
    else:
        path = Path(args.source)
        if not path.exists():
            raise InputError("is neither a volume in Å^3/atom nor an existing dataset", path=path)
        with _client(args, [path], needed=False) as client:
            summary = bandwidth_summary(_open(path, args, client))
    _emit(summary, args.output)
    return 0


def _trajectory(args) -> int:
    from .exports import write_extxyz
    from .tools import trajectory_summary

    suffix = _check_output(args.output, SUMMARY_SUFFIXES + FRAME_SUFFIXES)
    if suffix in FRAME_SUFFIXES:
        _single_bandwidth(args)
    with _client(args, [args.input, *args.references], needed=True) as client:
        store = _open(args.input, args, client)
        references = [_open(path, args, client) for path in args.references]
        summary = trajectory_summary(client, store, references, bandwidth=_bandwidth(args), method=args.method,
                                     n_neighbors=args.n_neighbors, tolerance=args.tolerance, overlap_eps=args.eps)
    if suffix in FRAME_SUFFIXES:
        values = {"dH_self": store.group["results/trajectory_self/dh"][:, 0]}
        if references:
            values["dH"] = store.group["results/trajectory_reference/dh"][:, 0]
        write_extxyz(args.output, store, values)
        print(f"wrote {args.output}")
    else:
        _emit(summary, args.output)
    return 0


def _compress(args) -> int:
    from .tools import compression_result, write_selected_frames

    _exact_only(args)
    _single_bandwidth(args)
    suffix = _check_output(args.output, SUMMARY_SUFFIXES + FRAME_SUFFIXES)
    fraction = ToolParams.compression_fraction if args.size is None and args.fraction is None else args.fraction
    with _client(args, [args.input, *args.reference], needed=False) as client:
        store = _open(args.input, args, client)
        references = [_open(path, args, client) for path in args.reference]
    result = compression_result(store, size=args.size, fraction=fraction, method=args.compression_method,
                                bandwidth=args.bandwidth[0], references=references, seed=args.seed,
                                overlap_eps=args.eps)
    if suffix in FRAME_SUFFIXES:
        write_selected_frames(args.output, store, result["indices"])
        summary = result["summary"]
        print(f"wrote {args.output}: {summary['n_structures']} of {summary['original_structures']} structures, "
              f"H = {summary['entropy']:.4g}, D = {summary['diversity']:.4g}, overlap = {summary['overlap']:.4g}")
    else:
        _emit(result, args.output)
    return 0


def _selected_frames(path: Path) -> list[int]:
    try:
        selection = json.loads(path.read_text())
    except (OSError, ValueError) as error:
        raise InputError(f"cannot read a selection ({error})", path=path) from None
    indices = selection.get("indices") if isinstance(selection, dict) else selection
    if not isinstance(indices, list) or not all(isinstance(i, int) for i in indices):
        raise InputError('expected {"indices": [frame, ...]} or a list of frame numbers', path=path)
    return indices


def _information_gap(args) -> int:
    from .exports import write_extxyz
    from .tools import information_gap_summary

    _exact_only(args)
    suffix = _check_output(args.output, SUMMARY_SUFFIXES + FRAME_SUFFIXES)
    if suffix in FRAME_SUFFIXES:
        _single_bandwidth(args)
    if (args.subset is None) == (args.indices is None):
        raise InputError("information-gap: give either SUBSET or --indices SELECTION.json")
    frames = _selected_frames(args.indices) if args.indices else None
    paths = [args.input] + ([args.subset] if args.subset else [])
    with _client(args, paths, needed=False) as client:
        store = _open(args.input, args, client)
        subset = _open(args.subset, args, client) if args.subset else None
    summary = information_gap_summary(store, subset=subset, frames=frames, bandwidth=_bandwidth(args),
                                      overlap_eps=args.eps)
    if suffix in FRAME_SUFFIXES:
        write_extxyz(args.output, store, {"dH": store.group["results/information_gap/dh"][:, 0]})
        print(f"wrote {args.output}")
    else:
        _emit(summary, args.output)
    return 0
