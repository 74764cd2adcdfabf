"""``covidweak demo``: the whole pipeline of this release on built-in phantom data.

Generates a few phantom patients with a follow-up each, segments the lungs of every
study without using the ground truth, scores the result against it, and writes masks,
a results table, a summary and a montage a reader can look at.
"""

from __future__ import annotations

import csv
import json
import shutil
import time
from pathlib import Path

from ..errors import InputError

RESULT_COLUMNS = ("study_id", "patient_id", "diagnosis", "dice_right", "dice_left",
                  "volume_right_ml", "volume_left_ml", "true_right_ml", "true_left_ml", "seconds")
DEMO_MARKER = "demo_summary.json"


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser("demo", help="run the pipeline on generated phantom data and score it",
                                   description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True, help="output folder (created)")
    parser.add_argument("--patients", type=int, default=3, help="phantom patients (default 3: covid, cap, normal)")
    parser.add_argument("--studies-per-patient", type=int, default=2, help="studies per patient (default 2)")
    parser.add_argument("--size", type=int, default=256, help="in-plane matrix (default 256)")
    parser.add_argument("--slices", type=int, default=64, help="axial slices (default 64)")
    parser.add_argument("--seed", type=int, default=0, help="phantom seed (default 0)")
    parser.add_argument("--overwrite", action="store_true", help="replace an earlier demo output in --out")
    parser.set_defaults(func=run)


def _prepare_out(out: Path, overwrite: bool) -> None:
    if out.exists() and not out.is_dir():
        raise InputError(f"--out {out} is a file; give a folder")
    if out.is_dir() and any(out.iterdir()):
        # Only ever delete a folder this command made: it carries the demo's summary.
        if not (out / DEMO_MARKER).exists():
            raise InputError(f"--out {out} is a non-empty folder that is not a demo output; choose an empty folder")
        if not overwrite:
            raise InputError(f"--out {out} holds an earlier demo; pass --overwrite to replace it")
        shutil.rmtree(out)
    out.mkdir(parents=True, exist_ok=True)


def _score_study(record, out: Path, progress) -> tuple[dict, object, object]:
    """Segment one phantom study's lungs, write the mask, and compare with the ground truth."""
    from ..io import read_ct, read_image, write_image
    from ..lungs import LEFT, RIGHT, segment_lungs
    from ..metrics import dice_per_label, label_volumes_ml

    ct = read_ct(record.ct_path)
    start = time.perf_counter()
    predicted = segment_lungs(ct, progress=progress)
    seconds = time.perf_counter() - start
    write_image(predicted, out / record.study_id / "lungs_pred.nii.gz")
    truth = read_image(record.lung_mask_path)
    dice = dice_per_label(predicted, truth, (RIGHT, LEFT))
    volumes = label_volumes_ml(predicted, ct.GetSpacing(), (RIGHT, LEFT))
    true_volumes = label_volumes_ml(truth, ct.GetSpacing(), (RIGHT, LEFT))
    row = dict(study_id=record.study_id, patient_id=record.patient_id, diagnosis=record.diagnosis,
               dice_right=round(dice[RIGHT], 4), dice_left=round(dice[LEFT], 4),
               volume_right_ml=round(volumes[RIGHT], 1), volume_left_ml=round(volumes[LEFT], 1),
               true_right_ml=round(true_volumes[RIGHT], 1), true_left_ml=round(true_volumes[LEFT], 1),
               seconds=round(seconds, 2))
    return row, ct, predicted


def run(args) -> int:
    from ..datasets.phantom import read_phantom
    from ..io import read_image
    from ..phantom import PhantomConfig, generate_dataset
    from ..progress import tqdm_progress
    from ..viz import montage, save_png

    out: Path = args.out
    config = PhantomConfig(size=args.size, slices=args.slices)
    config.validate()
    if args.patients < 1 or args.studies_per_patient < 1:
        raise InputError("--patients and --studies-per-patient must be at least 1")
    _prepare_out(out, args.overwrite)

    start = time.perf_counter()
    print(f"1/3 generating {args.patients} phantom patients x {args.studies_per_patient} studies "
          f"({args.size}x{args.size}x{args.slices}) in {out / 'phantom'}")
    generate_dataset(out / "phantom", patients=args.patients, studies_per_patient=args.studies_per_patient,
                     seed=args.seed, config=config, progress=tqdm_progress("phantom"))
    records = read_phantom(out / "phantom")

    print(f"2/3 segmenting the lungs of {len(records)} studies (classical, no weights)")
    rows, panels, titles = [], [], []
    for record in records:
        row, ct, predicted = _score_study(record, out / "results", tqdm_progress(record.study_id))
        rows.append(row)
        if record.study_index == 0:
            panels.append(dict(ct=ct, lungs=predicted, lesions=read_image(record.lesion_mask_path),
                               cxr=read_image(record.extra["cxr_path"]) if "cxr_path" in record.extra else None,
                               cxr_lungs=read_image(record.extra["cxr_lungs_path"]) if "cxr_lungs_path" in record.extra else None))
            titles.append(f"{record.study_id} ({record.diagnosis}): predicted lungs, true lesions")
        print(f"   {row['study_id']:<16} {row['diagnosis']:<7} Dice right {row['dice_right']:.3f} "
              f"left {row['dice_left']:.3f}  ({row['seconds']:.1f} s)")

    print("3/3 writing results.csv, demo_summary.json and montage.png")
    with open(out / "results.csv", "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=RESULT_COLUMNS)
        writer.writeheader()
        writer.writerows(rows)
    save_png(montage(panels, titles=titles), out / "montage.png")
    summary = dict(
        studies=len(rows),
        min_dice_right=min(r["dice_right"] for r in rows),
        min_dice_left=min(r["dice_left"] for r in rows),
        mean_seconds_per_study=round(sum(r["seconds"] for r in rows) / len(rows), 2),
        total_seconds=round(time.perf_counter() - start, 1),
        phantom=dict(patients=args.patients, studies_per_patient=args.studies_per_patient,
                     size=args.size, slices=args.slices, seed=args.seed),
    )
    (out / DEMO_MARKER).write_text(json.dumps(summary, indent=2) + "\n")
    print(f"done in {summary['total_seconds']} s: lowest lung Dice right {summary['min_dice_right']:.3f}, "
          f"left {summary['min_dice_left']:.3f}; open {out / 'montage.png'}")
    return 0
