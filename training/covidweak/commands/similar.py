"""``covidweak similar CT --index INDEX --k 5 --out similar.json``: the indexed studies most similar to a CT."""

from __future__ import annotations

import json
import time
from pathlib import Path

from ..device import add_device_argument

DESCRIPTION = (
    "Recommend similar cases for a chest CT (DuCN): its lung slices are embedded by the recommendation child and "
    "the index's studies are ranked by the distance between the two studies' mean embeddings (with --slice: by "
    "the library slice nearest to that slice). Writes similar.json. Research use only."
)


def add_parser(subparsers) -> None:
    from ..similar.embed import DEFAULT_BATCH_SIZE
    from ..similar.library import DEFAULT_WEIGHTS

    parser = subparsers.add_parser("similar", help="similar-case recommendation for a chest CT (DuCN)",
                                   description=DESCRIPTION)
    parser.add_argument("ct", type=Path, help="CT volume: .nii/.nii.gz/.nrrd/.mha file or a DICOM series folder")
    parser.add_argument("--index", type=Path, required=True, help="index folder made by `covidweak index build`")
    parser.add_argument("--k", type=int, default=5, help="number of similar studies (default: 5)")
    parser.add_argument("--slice", type=int, default=None,
                        help="query with this slice only (voxel index along the CT's third axis; default: all lung slices)")
    parser.add_argument("--lungs", type=Path, default=None, help="lung label image on the CT grid "
                        "(default: computed as `covidweak lungs` does)")
    parser.add_argument("--out", type=Path, required=True, help="JSON file to write")
    parser.add_argument("--weights", default=None,
                        help=f"DuCN weights the index was built with (default: {DEFAULT_WEIGHTS})")
    parser.add_argument("--batch-size", type=int, default=DEFAULT_BATCH_SIZE, help="slices per network batch")
    add_device_argument(parser)
    parser.add_argument("--overwrite", action="store_true", help="replace --out if it exists")
    parser.set_defaults(func=run)


def run(args) -> int:
    from ..errors import InputError
    from ..index import CaseIndex
    from ..io import read_ct, read_image
    from ..progress import command_progress
    from ..similar.embed import embed_study
    from ..similar.library import load_ducn, similar_cases, similar_document
    from ..io.atomic import write_text

    # Refuse cheap mistakes before reading a CT and running a network.
    if args.out.exists() and not args.overwrite:
        raise InputError(f"{args.out} already exists: choose another --out or pass --overwrite")
    if args.k < 1:
        raise InputError(f"--k {args.k}: give a positive number of similar studies")
    start = time.perf_counter()
    loaded, device = load_ducn(args.weights, args.device)
    index = CaseIndex.open(args.index, loaded.sha256)
    if args.k > len(index):
        raise InputError(f"--k {args.k} is larger than the index's {len(index)} studies: ask for at most {len(index)}")
    ct = read_ct(args.ct)
    lungs = read_image(args.lungs) if args.lungs else None
    embedding = embed_study(loaded, ct, lungs, args.batch_size, device, command_progress(args, "similar"), args.slice)
    index.prepare_search(command_progress(args, "similar: search index"))  # a large library trains its FAISS cache once
    results = similar_cases(index, embedding.vectors, embedding.slice_numbers, args.k)
    document = similar_document(args.ct, len(embedding.vectors), args.slice, index, args.index, args.k, results)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    write_text(args.out, json.dumps(document, indent=2) + "\n")
    for result in results:
        print(f"{result['rank']}. {result['study_id']} ({result['diagnosis']}, patient {result['patient_id']}) "
              f"distance {result['distance']:.3f}: query slice {result['query_slice']} ~ slice {result['match_slice']}")
    print(f"wrote {args.out} ({time.perf_counter() - start:.1f} s); research use only")
    return 0
