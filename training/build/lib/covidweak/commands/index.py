"""``covidweak index build|add|remove``: the library of DuCN embeddings that ``covidweak similar`` searches."""

from __future__ import annotations

from pathlib import Path

from ..device import add_device_argument

DESCRIPTION = (
    "Manage a similar-case index: every lung slice of every study is embedded by DuCN's recommendation child "
    "(128-d) and stored with the study's patient, diagnosis and CT path. `build` is resumable: run it again after "
    "an interruption and it adds only the studies still missing. Research use only."
)


def _add_model_arguments(parser) -> None:
    from ..similar.embed import DEFAULT_BATCH_SIZE
    from ..similar.library import DEFAULT_WEIGHTS

    parser.add_argument("--weights", default=None, help=f"DuCN weight file or registry name (default: {DEFAULT_WEIGHTS})")
    parser.add_argument("--batch-size", type=int, default=DEFAULT_BATCH_SIZE,
                        help=f"slices per network batch (default: {DEFAULT_BATCH_SIZE})")
    add_device_argument(parser)


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser("index", help="build and edit the similar-case index (DuCN)",
                                   description=DESCRIPTION)
    actions = parser.add_subparsers(dest="action", metavar="ACTION", required=True)

    build = actions.add_parser("build", help="index every study of a dataset (resumable)",
                               description="Create INDEX from a dataset folder or manifest, or continue an "
                                           "interrupted build of it.")
    build.add_argument("--data", type=Path, required=True, help="dataset folder or manifest.csv")
    build.add_argument("--out", type=Path, required=True, help="index folder (new, empty, or a build to continue)")
    _add_model_arguments(build)
    build.set_defaults(func=run_build)

    add = actions.add_parser("add", help="add CTs or datasets to an index",
                             description="Add studies; a CT file or DICOM folder is one study named after the file.")
    add.add_argument("index", type=Path, help="index folder")
    add.add_argument("cts", type=Path, nargs="+", metavar="CT_OR_DIR",
                     help="CT file, DICOM series folder, or dataset folder/manifest")
    add.add_argument("--diagnosis", default="unknown", help="diagnosis stored for plain CTs (default: unknown)")
    _add_model_arguments(add)
    add.set_defaults(func=run_add)

    remove = actions.add_parser("remove", help="remove studies from an index")
    remove.add_argument("index", type=Path, help="index folder")
    remove.add_argument("study_ids", nargs="+", metavar="STUDY_ID")
    remove.set_defaults(func=run_remove)


def _check_batch_size(value: int) -> None:
    from ..errors import InputError

    if value < 1:
        raise InputError(f"--batch-size {value}: give a positive number of slices")


def run_build(args) -> int:
    from ..datasets import open_dataset
    from ..progress import command_progress
    from ..index import CaseIndex
    from ..similar.library import add_records, load_ducn

    _check_batch_size(args.batch_size)
    records = open_dataset(args.data)
    loaded, device = load_ducn(args.weights, args.device)
    index = CaseIndex.open_or_create(args.out, loaded.sha256)
    before = len(index)
    added = add_records(index, records, loaded, device, args.batch_size, command_progress(args, "index build"))
    resumed = f" ({before} were already indexed)" if before else ""
    print(f"indexed {added} studies{resumed}; {args.out} holds {len(index)} studies, {index.num_slices} slices")
    return 0


def run_add(args) -> int:
    from ..errors import InputError
    from ..index import CaseIndex
    from ..progress import command_progress
    from ..records import DIAGNOSES
    from ..similar.library import add_records, load_ducn, records_from_paths

    _check_batch_size(args.batch_size)
    if args.diagnosis not in (*DIAGNOSES, "unknown"):
        raise InputError(f"--diagnosis {args.diagnosis}: choose one of {', '.join(DIAGNOSES)} or unknown")
    records = records_from_paths(args.cts, args.diagnosis)
    loaded, device = load_ducn(args.weights, args.device)
    index = CaseIndex.open(args.index, loaded.sha256)
    present = [r.study_id for r in records if index.has_study(r.study_id)]
    if present:
        raise InputError(f"study '{present[0]}' is already in {args.index}: remove it first "
                         f"(`covidweak index remove {args.index} {present[0]}`) to replace it")
    added = add_records(index, records, loaded, device, args.batch_size, command_progress(args, "index add"))
    print(f"added {added} studies; {args.index} holds {len(index)} studies")
    return 0


def run_remove(args) -> int:
    from ..index import CaseIndex

    index = CaseIndex.open(args.index)
    index.remove_studies(args.study_ids)
    print(f"removed {len(args.study_ids)} studies; {args.index} holds {len(index)} studies")
    return 0
