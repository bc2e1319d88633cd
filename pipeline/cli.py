"""The quests-pipeline command line. Exit codes: 0 ok, 1 runtime failure, 2 usage or input error."""

import argparse
import json
import logging
import sys
from pathlib import Path

from . import LOG_FORMAT, __version__
from .config import DTYPES, METHODS
from .errors import InputError
from .ingest import DEFAULT_CHUNK_ROWS

log = logging.getLogger("quests_pipeline")

DH_OUTPUTS = (".json", ".xyz", ".extxyz", ".lammpstrj", ".dump", ".zarr")


def add_eps_option(parser: argparse.ArgumentParser) -> None:
    """--eps, the overlap threshold, for every command that reports overlap or novelty."""
    from quests_core import KernelParams

    parser.add_argument("--eps", type=float, default=KernelParams.overlap_eps,
                        help="overlap threshold on dH (default %(default)s)")


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {value}")
    return value


def _positive_float(text: str) -> float:
    value = float(text)
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be > 0, got {value}")
    return value


def _species_map(text: str) -> dict[int, str]:
    """'1=Cu,2=Ni' -> {1: 'Cu', 2: 'Ni'}"""
    from .ase_io import atomic_numbers

    mapping = {}
    for item in filter(None, (part.strip() for part in text.split(","))):
        key, _, element = item.partition("=")
        if not key.strip().isdigit() or element.strip() not in atomic_numbers:
            raise argparse.ArgumentTypeError(f"{item!r} is not TYPE=ELEMENT (e.g. 1=Cu)")
        mapping[int(key)] = element.strip()
    return mapping


def _cluster_options() -> argparse.ArgumentParser:
    options = argparse.ArgumentParser(add_help=False)
    group = options.add_argument_group("cluster")
    group.add_argument("--workers", type=_positive_int, default=None,
                       help="worker processes of the local cluster (default: one per core)")
    group.add_argument("--scheduler", metavar="ADDRESS", default=None,
                       help="use a running Dask scheduler instead of a local cluster")
    return options


def _descriptor_options() -> argparse.ArgumentParser:
    from quests_core import DescriptorParams

    options = argparse.ArgumentParser(add_help=False)
    group = options.add_argument_group("descriptors")
    group.add_argument("-k", type=_positive_int, default=DescriptorParams.k, help="neighbours per environment (default %(default)s)")
    group.add_argument("-c", "--cutoff", type=_positive_float, default=DescriptorParams.cutoff,
                       help="cutoff radius in Å (default %(default)s)")
    group.add_argument("--dtype", choices=DTYPES, default=DTYPES[0], help="descriptor dtype (default %(default)s)")
    group.add_argument("--multicomponent", metavar="ELEMENTS", default=None,
                       help="multicomponent descriptors over these elements, e.g. Cu,Ni")
    return options


def _input_options() -> argparse.ArgumentParser:
    options = argparse.ArgumentParser(add_help=False)
    group = options.add_argument_group("inputs")
    group.add_argument("--format", dest="fmt", metavar="FMT", default=None,
                       help="file format (an ASE format name or lammps-dump-text; default: guessed)")
    group.add_argument("--frames", metavar="START:STOP:STEP", default=None, help="frames of each file to use")
    group.add_argument("--species", metavar="TYPE=ELEMENT,...", type=_species_map, default=None,
                       help="LAMMPS atom types to elements, e.g. 1=Cu,2=Ni")
    return options


def _analysis_options() -> argparse.ArgumentParser:
    from quests_core import ApproxParams, KernelParams

    options = argparse.ArgumentParser(add_help=False)
    group = options.add_argument_group("kernel")
    group.add_argument("-b", "--bandwidth", type=_positive_float, nargs="+", default=[KernelParams.bandwidth],
                       metavar="H", help="kernel bandwidth(s) in 1/Å (default %(default)s)")
    group.add_argument("--method", choices=METHODS, default=METHODS[0], help="kernel sums (default %(default)s)")
    group.add_argument("-n", "--n-neighbors", type=_positive_int, default=ApproxParams.n_neighbors,
                       help="--method approx: nearest reference environments (pynndescent) whose clusters are "
                            "always summed exactly (default %(default)s)")
    group.add_argument("--tolerance", type=_positive_float, default=ApproxParams.tolerance,
                       help="--method approx: add clusters until the +-2 standard error interval of dH is narrower "
                            "than this, in nats (default %(default)s)")
    return options


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="quests-pipeline",
        description="Information entropy of atomistic datasets (QUESTS: H, D, per-atom dH) on Dask.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="log debug messages")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")

    descriptors = commands.add_parser(
        "descriptors", parents=[_input_options(), _descriptor_options(), _cluster_options()],
        help="compute descriptors of structure files into a zarr store",
        description="Compute descriptors of structure files into a zarr store (created, resumed or appended to).")
    descriptors.add_argument("inputs", nargs="+", type=Path, metavar="INPUT")
    descriptors.add_argument("-o", "--output", type=Path, required=True, metavar="STORE")
    descriptors.add_argument("--chunk-rows", type=_positive_int, default=None,
                             help=f"environments per zarr chunk of a new store (default: one ingest task's rows, "
                                  f"at most {DEFAULT_CHUNK_ROWS})")
    descriptors.add_argument("--region-rows", type=_positive_int, default=None,
                             help="environments per ingest task")
    descriptors.add_argument("--split-atoms", type=_positive_int, default=None,
                             help="split frames larger than this into slab domains of about this size")
    descriptors.add_argument("--skip-bad", action="store_true",
                             help="leave out frames that cannot be read or are invalid (each is reported and recorded)")
    descriptors.set_defaults(handler=_descriptors)

    analysis_parents = [_analysis_options(), _input_options(), _descriptor_options(), _cluster_options()]
    entropy = commands.add_parser("entropy", parents=analysis_parents, help="dataset entropy H and diversity D",
                                  description="Entropy H and diversity D of a dataset (a store or a structure file).")
    entropy.add_argument("input", type=Path, metavar="INPUT")
    entropy.add_argument("-o", "--output", type=Path, metavar="SUMMARY.json", help="write the JSON summary here")
    entropy.set_defaults(handler=_entropy)

    dh = commands.add_parser("dh", parents=analysis_parents, help="per-atom differential entropy dH of TEST given REFERENCE",
                             description="dH(TEST | REFERENCE) per environment, with statistics, novelty, overlap and "
                                         "per-frame aggregates. OUT: .json summary, .xyz/.extxyz or .lammpstrj/.dump "
                                         "frames with per-atom dH, or .zarr per-atom arrays.")
    dh.add_argument("test", type=Path, metavar="TEST")
    dh.add_argument("references", type=Path, nargs="+", metavar="REFERENCE")
    dh.add_argument("-o", "--output", type=Path, metavar="OUT")
    add_eps_option(dh)
    dh.set_defaults(handler=_dh)

    overlap = commands.add_parser("overlap", parents=analysis_parents, help="fraction of TEST covered by REFERENCE",
                                  description="Overlap of TEST with REFERENCE: the fraction of TEST environments with "
                                              "dH < eps.")
    overlap.add_argument("test", type=Path, metavar="TEST")
    overlap.add_argument("references", type=Path, nargs="+", metavar="REFERENCE")
    add_eps_option(overlap)
    overlap.add_argument("-o", "--output", type=Path, metavar="SUMMARY.json")
    overlap.set_defaults(handler=_dh)

    inspect = commands.add_parser("inspect", help="describe a descriptor store",
                                  description="Print environments, frames, parameters, sources and completeness of a store.")
    inspect.add_argument("store", type=Path, metavar="STORE")
    inspect.add_argument("--json", action="store_true", help="print JSON")
    inspect.set_defaults(handler=_inspect)

    from .cli_tools import add_tool_commands  # here: cli_tools imports this module's helpers

    add_tool_commands(commands, {"analysis": _analysis_options(), "input": _input_options(),
                                 "descriptor": _descriptor_options(), "cluster": _cluster_options()})

    config_options = argparse.ArgumentParser(add_help=False)
    config_options.add_argument("config", type=Path, metavar="CONFIG", help="audit config (YAML, see docs/config.md)")
    config_options.add_argument("--set", action="append", default=[], metavar="KEY.PATH=VALUE",
                                help="override a config value, e.g. kernel.bandwidth=0.03 or analyses[0].dataset=md "
                                     "(the value is read as YAML; repeatable)")
    run = commands.add_parser("run", parents=[config_options], help="run the analyses of an audit config",
                              description="Run the analyses of an audit config: descriptors (stores reused when "
                                          "their settings and sources match), H, D, dH, overlap and novelty, exports, "
                                          "plots and summary.json in output.dir.")
    run.add_argument("--resume", action="store_true", help="keep the analyses an earlier run of this config finished")
    run.add_argument("--dry-run", action="store_true",
                     help="print the plan (and a batch queue's job script) and exit without computing")
    run.set_defaults(handler=_run)
    validate = commands.add_parser("validate", parents=[config_options], help="check an audit config",
                                   description="Check an audit config (keys, types, ranges, files, dataset names) "
                                               "without running anything.")
    validate.set_defaults(handler=_validate)
    return parser


def _store_params(args):
    from .ase_io import atomic_numbers

    from .store import StoreParams

    species = None
    if args.multicomponent:
        names = [name.strip() for name in args.multicomponent.split(",") if name.strip()]
        unknown = [name for name in names if name not in atomic_numbers]
        if unknown:
            raise InputError(f"--multicomponent: unknown elements {unknown}")
        species = tuple(sorted(atomic_numbers[name] for name in names))
    return StoreParams(k=args.k, cutoff=args.cutoff, dtype=args.dtype, species=species)


def _descriptors(args) -> int:
    from .cluster import local_client
    from .ingest import DEFAULT_REGION_ROWS, DEFAULT_SPLIT_ATOMS, IngestRequest, ingest
    from .readers import FrameSelection

    request = IngestRequest(
        paths=tuple(args.inputs), params=_store_params(args), fmt=args.fmt,
        frames=FrameSelection.parse(args.frames), species=args.species,
        chunk_rows=args.chunk_rows, region_rows=args.region_rows or DEFAULT_REGION_ROWS,
        split_atoms=args.split_atoms or DEFAULT_SPLIT_ATOMS, skip_bad=args.skip_bad,
    )
    with local_client(args.workers, args.scheduler) as client:
        store = ingest(request, args.output, client)
    print(f"{store.path}: {store.n_environments} environments, {store.n_frames} frames")
    return 0


def _ingest_request(args):
    from .ingest import IngestRequest
    from .readers import FrameSelection

    return IngestRequest(paths=(), params=_store_params(args), fmt=args.fmt, frames=FrameSelection.parse(args.frames),
                         species=args.species)


def _bandwidth(args):
    return args.bandwidth[0] if len(args.bandwidth) == 1 else args.bandwidth


def _emit(summary: dict, output: Path | None) -> None:
    from .exports import write_atomically

    text = json.dumps(summary, indent=2)
    if output is None:
        print(text)
    else:
        write_atomically(output, lambda target: target.write_text(text + "\n"))
        print(f"wrote {output}")


def _entropy(args) -> int:
    from .analysis import entropy_summary
    from .cluster import local_client
    from .inputs import open_or_ingest

    store_dir = (args.output.parent if args.output else Path.cwd())
    with local_client(args.workers, args.scheduler) as client:
        store = open_or_ingest(args.input, _ingest_request(args), store_dir, client)
        summary = entropy_summary(client, store, _bandwidth(args), method=args.method, n_neighbors=args.n_neighbors,
                                  tolerance=args.tolerance)
    _emit(summary, args.output)
    return 0


def _dh(args) -> int:
    from .analysis import APPROX_ARRAYS, dh_summary
    from .cluster import local_client
    from .exports import write_extxyz, write_lammps_dump
    from .inputs import check_comparable, open_or_ingest

    suffix = args.output.suffix.lower() if args.output else ".json"
    if suffix not in DH_OUTPUTS:
        raise InputError(f"-o {args.output}: the output must end in one of {', '.join(DH_OUTPUTS)}")
    if args.command == "overlap" and suffix != ".json":
        raise InputError(f"-o {args.output}: overlap writes a .json summary")
    store_dir = args.output.parent if args.output else Path.cwd()
    with local_client(args.workers, args.scheduler) as client:
        request = _ingest_request(args)
        test = open_or_ingest(args.test, request, store_dir, client)
        references = [open_or_ingest(path, request, store_dir, client) for path in args.references]
        check_comparable(test, references)
        summary = dh_summary(client, test, references, _bandwidth(args), method=args.method,
                             n_neighbors=args.n_neighbors, tolerance=args.tolerance, overlap_eps=args.eps)
    if args.command == "overlap":
        summary = {key: summary[key] for key in ("overlap", "overlap_eps", "n_environments", "bandwidth", "method", "k",
                                                 "cutoff", "store", "references")} | {"kind": "overlap"}
    results = test.group["results/dh"]
    values = {name: results[name][:, 0] for name in APPROX_ARRAYS if name in results}
    values = {name.replace("dh", "dH", 1): column for name, column in values.items()}
    if suffix in (".xyz", ".extxyz"):
        write_extxyz(args.output, test, values)
        print(f"wrote {args.output}")
    elif suffix in (".lammpstrj", ".dump"):
        write_lammps_dump(args.output, test, values)
        print(f"wrote {args.output}")
    elif suffix == ".zarr":
        _write_results_store(args.output, test, values, summary)
        print(f"wrote {args.output}")
    else:
        _emit(summary, args.output)
    return 0


def _write_results_store(path: Path, store, values: dict, summary: dict) -> None:
    import shutil

    import zarr

    partial = path.with_name(path.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    group = zarr.open_group(str(partial), mode="w")
    for name in ("env_frame", "env_atom", "env_number"):
        group.create_array(name, data=store.array(name), dimension_names=("environment",))
    for name, column in values.items():
        group.create_array(name, data=column, dimension_names=("environment",))
    group.update_attributes({"summary": summary})
    shutil.rmtree(path, ignore_errors=True)
    partial.rename(path)


def _inspect(args) -> int:
    from .store import DescriptorStore

    summary = DescriptorStore.open(args.store, allow_incomplete=True).summary()
    if args.json:
        print(json.dumps(summary, indent=2))
        return 0
    descriptor = summary["descriptor"]
    print(f"store        {summary['path']} ({summary['format']})")
    print(f"complete     {summary['complete']} ({summary['regions_written']}/{summary['n_regions']} regions written)")
    print(f"environments {summary['n_environments']}")
    print(f"frames       {summary['n_frames']}")
    print(f"descriptor   k={descriptor['k']} cutoff={descriptor['cutoff']} dtype={descriptor['dtype']} "
          f"species={descriptor['species']} chunk_rows={summary['chunk_rows']}")
    for source in summary["sources"]:
        print(f"source       {source['path']} ({source['format']}, frames {source['frames']}, "
              f"{source['size']} bytes, sha256 {source['sha256'][:12]}...)")
    for skipped in summary["skipped_frames"]:
        print(f"skipped      {skipped}")
    return 0


def _run(args) -> int:
    from .audit import plan_text, run_audit, summary_text
    from .config import load_config

    config = load_config(args.config, args.set)
    if args.dry_run:
        print(plan_text(config, resume=args.resume))
        return 0
    summary = run_audit(config, resume=args.resume)
    print(summary_text(summary, config.output.dir))
    return 0


def _validate(args) -> int:
    from .config import load_config

    config = load_config(args.config, args.set)
    print(f"{args.config}: valid ({len(config.datasets)} datasets, {len(config.analyses)} analyses, "
          f"output in {config.output.dir})")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO,
                        format=LOG_FORMAT)
    if not args.verbose:
        import distributed  # noqa: F401  (configures its loggers on import; quieten them after)

        for name in list(logging.root.manager.loggerDict):
            if name.split(".")[0] in ("distributed", "bokeh", "tornado"):
                logging.getLogger(name).setLevel(logging.WARNING)
    if args.command is None:
        parser.print_help()
        return 2
    try:
        return args.handler(args)
    except InputError as error:
        print(f"quests-pipeline: error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("quests-pipeline: interrupted", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
