"""``covidweak bench segment|train``: timing and memory of inference (and of training, when installed)."""

from __future__ import annotations

from ..device import DEVICE_CHOICES_HELP
from .segment import add_model_arguments

SEGMENT_DESCRIPTION = (
    "Time covidweak segment (file read, lungs, network, tables, outputs written) on a phantom chest CT on the CPU "
    "and, when present, the GPU; the re-threshold time; peak memory. Each also as a ratio to the HU-window + resize "
    "preprocessing alone."
)


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser("bench", help="benchmarks of inference and training",
                                   description="Benchmarks of inference and training.")
    benches = parser.add_subparsers(dest="bench", metavar="BENCH", required=True)
    segment = benches.add_parser("segment", help="CT lesion segmentation time and memory", description=SEGMENT_DESCRIPTION)
    segment.add_argument("--size", type=int, default=512, help="in-plane voxels of the phantom CT, 358 mm across (default: 512)")
    segment.add_argument("--slices", type=int, default=300, help="axial slices of the phantom CT, 300 mm or 5 mm each (default: 300)")
    add_model_arguments(segment)
    segment.add_argument("--batch-size", type=int, default=8, help="slices per network batch (default: 8)")
    segment.add_argument("--devices", nargs="+", default=None,
                         help=f"devices to time, each {DEVICE_CHOICES_HELP} (default: cpu, and cuda when present)")
    segment.set_defaults(func=run_segment)
    try:
        from ..training.bench import add_bench_train_parser
    except ImportError:
        return  # training benchmarks ship with the training framework
    add_bench_train_parser(benches)


def run_segment(args) -> int:
    import json

    from ..errors import InputError
    from ..models import METHODS
    from ..weakseg.bench import format_report, run_bench

    if args.method not in METHODS:
        raise InputError(f"unknown method '{args.method}': choose one of {', '.join(METHODS)}")
    if args.size < 64 or args.slices < 32:
        raise InputError(f"--size {args.size} --slices {args.slices} is too small for a chest: use at least 64 and 32")
    report = run_bench(args.size, args.slices, args.method, args.weights, args.batch_size, args.devices)
    print(format_report(report))
    print(json.dumps(report))
    return 0
