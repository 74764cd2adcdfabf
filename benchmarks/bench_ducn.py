"""Time to put one study into a similar-case index (DuCN), as a ratio against a baseline in the same process.

- embed: :func:`covidweak.similar.embed.embed_study` with the study's lung mask (three-channel input of every
  lung slice plus the recommendation child), i.e. what ``covidweak index build`` spends per study;
- baseline: :func:`covidweak.similar.inputs.study_inputs` alone on the same study (reading arrays, resizing,
  distance maps), so the ratio says how much the network adds to the preprocessing;
- query: :meth:`covidweak.index.CaseIndex.search_studies` for the study's slices against an index of all
  benchmarked studies, also against the same baseline.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/bench_ducn.py --data /tmp/ph_train [--studies 3] \
        [--weights ducn-light] [--repeats 3]
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

from covidweak.datasets import open_dataset
from covidweak.index import CaseIndex
from covidweak.io import read_ct, read_image
from covidweak.similar.embed import embed_study
from covidweak.similar.inputs import study_inputs
from covidweak.similar.library import load_ducn, study_metadata
from timing import best_of  # benchmarks/timing.py, next to this script


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, required=True)
    parser.add_argument("--studies", type=int, default=3)
    parser.add_argument("--weights", default=None)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()

    loaded, device = load_ducn(args.weights, "cpu")
    size = int(loaded.preprocess["input_size"])
    records = open_dataset(args.data)[: args.studies]
    images = [(r, read_ct(r.ct_path), read_image(r.lung_mask_path)) for r in records]
    embeddings = {}
    with tempfile.TemporaryDirectory() as folder:
        index = CaseIndex.create(Path(folder) / "index", loaded.sha256)
        for record, ct, lungs in images:
            baseline = best_of(args.repeats, lambda: study_inputs(ct, lungs, size=size))
            embed = best_of(args.repeats, lambda: embeddings.__setitem__(record.study_id,
                                                                         embed_study(loaded, ct, lungs, device=device)))
            found = embeddings[record.study_id]
            index.add_study(study_metadata(record), found.vectors, found.slice_numbers.tolist())
            print(f"{record.study_id}: {len(found.vectors)} lung slices at {size} px; inputs {baseline:.3f} s, "
                  f"embed {embed:.3f} s = {embed / baseline:.2f} x inputs")
        baseline = best_of(args.repeats, lambda: study_inputs(images[0][1], images[0][2], size=size))
        for record, _, _ in images:
            vectors = embeddings[record.study_id].vectors
            query = best_of(args.repeats, lambda: index.search_studies(vectors, len(index)))
            print(f"query {record.study_id} against {len(index)} studies: {query * 1000:.2f} ms = "
                  f"{query / baseline:.4f} x inputs of one study")


if __name__ == "__main__":
    main()
