"""``covidweak demo``: the whole pipeline of this release on built-in phantom data.

Seven stages, each timed: 1 generate phantom patients (covid, cap, normal) with
follow-ups; 2 segment every study's lungs classically and score them against the
truth; 3 the headless batch (lesion segmentation, CT severity, reports,
index.html); 4 a DuCN case index and a similar-case query; 5 a FeCNN
lesion-type cluster model; 6 CXR severity and diagnosis of one study; 7
demo_summary.json with a section per stage. Stages 3-6 call the commands' own
run functions in this process (see :mod:`covidweak.demo.stages`).

The default phantom is 128x128x32 (not the phantom command's 256x256x64) so
that the whole demo stays within a few minutes on two CPU cores.
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
DEMO_SIZE, DEMO_SLICES = 128, 32
"""A smaller phantom than the phantom command's default, so that all seven stages take a few minutes on 2 CPU cores."""
STAGES = 7


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser("demo", help="run the pipeline on generated phantom data and score it",
                                   description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True, help="output folder (created)")
    parser.add_argument("--patients", type=int, default=3, help="phantom patients (default 3: covid, cap, normal)")
    parser.add_argument("--studies-per-patient", type=int, default=2, help="studies per patient (default 2)")
    parser.add_argument("--size", type=int, default=DEMO_SIZE, help=f"in-plane matrix (default {DEMO_SIZE})")
    parser.add_argument("--slices", type=int, default=DEMO_SLICES, help=f"axial slices (default {DEMO_SLICES})")
    parser.add_argument("--seed", type=int, default=0, help="phantom seed (default 0)")
    parser.add_argument("--cluster-k", default="auto", help="lesion-type clusters: a number or 'auto' (default auto)")
    parser.add_argument("--skip-clusters", action="store_true", help="leave out stage 5 (the slowest model stage)")
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


def lung_stage(out: Path, records: list) -> dict:
    """Stage 2: every study's lungs segmented classically, scored against the truth; results.csv and montage.png."""
    from ..io import read_image
    from ..progress import tqdm_progress
    from ..viz import montage, save_png

    rows, panels, titles = [], [], []
    for record in records:
        row, ct, predicted = _score_study(record, out / "results", tqdm_progress(record.study_id))
        rows.append(row)
        if record.study_index == 0:
            panels.append(dict(ct=ct, lungs=predicted, lesions=read_image(record.lesion_mask_path),
                               cxr=read_image(record.extra["cxr_path"]) if "cxr_path" in record.extra else None,
                               cxr_lungs=read_image(record.extra["cxr_lungs_path"]) if "cxr_lungs_path" in record.extra else None))
            titles.append(f"{record.study_id} ({record.diagnosis}): predicted lungs, true lesions")
        print(f"   {row['study_id']:<22} {row['diagnosis']:<7} Dice right {row['dice_right']:.3f} "
              f"left {row['dice_left']:.3f}  ({row['seconds']:.1f} s)")
    with open(out / "results.csv", "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=RESULT_COLUMNS)
        writer.writeheader()
        writer.writerows(rows)
    save_png(montage(panels, titles=titles), out / "montage.png")
    return dict(command="covidweak.lungs.segment_lungs per study (classical, plus the ct-lungs-light step)", studies=len(rows),
                min_dice_right=min(r["dice_right"] for r in rows), min_dice_left=min(r["dice_left"] for r in rows),
                mean_seconds_per_study=round(sum(r["seconds"] for r in rows) / len(rows), 2),
                results_csv=str(out / "results.csv"), montage=str(out / "montage.png"))


def _timed(summary: dict, name: str, number: int, title: str, stage, *args) -> dict:
    """Print the stage's header, run it, and record its figures and seconds under ``summary[name]``."""
    print(f"{number}/{STAGES} {title}", flush=True)
    start = time.perf_counter()
    section = stage(*args)
    section["seconds"] = round(time.perf_counter() - start, 1)
    summary[name] = section
    return section


def run(args) -> int:
    from ..datasets.phantom import read_phantom
    from ..demo import stages
    from ..phantom import PhantomConfig, generate_dataset
    from ..progress import tqdm_progress
    from ..io.atomic import write_text
    from .clusters import parse_k

    out: Path = args.out
    config = PhantomConfig(size=args.size, slices=args.slices)
    config.validate()
    if args.patients < 1 or args.studies_per_patient < 1:
        raise InputError("--patients and --studies-per-patient must be at least 1")
    if args.patients * args.studies_per_patient < 2:
        raise InputError("the demo needs at least 2 phantom studies (the similar-case search has to find another one)")
    parse_k(args.cluster_k)  # a mistyped --cluster-k fails now, not after four stages
    _prepare_out(out, args.overwrite)
    phantom = out / "phantom"
    start = time.perf_counter()
    summary: dict = dict(phantom=dict(patients=args.patients, studies_per_patient=args.studies_per_patient,
                                      size=args.size, slices=args.slices, seed=args.seed),
                         note=stages.WEIGHTS_NOTE)
    # The marker goes in first, so that a demo that stopped half-way can still be replaced with --overwrite.
    write_text(out / DEMO_MARKER, json.dumps({**summary, "finished": False}, indent=2) + "\n")
    print(f"note: {stages.WEIGHTS_NOTE}")

    def make_phantom() -> dict:
        generate_dataset(phantom, patients=args.patients, studies_per_patient=args.studies_per_patient,
                         seed=args.seed, config=config, progress=tqdm_progress("phantom"))
        return dict(command=f"covidweak phantom --out {phantom} --patients {args.patients} --studies-per-patient "
                            f"{args.studies_per_patient} --size {args.size} --slices {args.slices} --seed {args.seed}",
                    folder=str(phantom))

    _timed(summary, "1_phantom", 1, f"generating {args.patients} phantom patients x {args.studies_per_patient} "
           f"studies ({args.size}x{args.size}x{args.slices}) in {phantom}", make_phantom)
    records = read_phantom(phantom)
    _timed(summary, "2_lungs", 2, f"segmenting the lungs of {len(records)} studies "
           "and scoring them against the truth", lung_stage, out, records)
    _timed(summary, "3_batch", 3, f"batch: lesion segmentation + CT severity + reports for {len(records)} CTs "
           f"into {out / stages.BATCH_DIR}", stages.batch_stage, out, phantom, records)
    similar = _timed(summary, "4_similar", 4, f"case index (ducn-light) of the phantom without "
                     f"{stages.query_study(records).study_id}, and its similar cases", stages.similar_stage,
                     out, phantom, records)
    if args.skip_clusters:
        print(f"5/{STAGES} lesion-type clusters skipped (--skip-clusters)")
        summary["5_clusters"] = dict(skipped=True)
    else:
        _timed(summary, "5_clusters", 5, f"lesion-type cluster model (fecnn-light, --k {args.cluster_k}) into "
               f"{out / stages.CLUSTER_DIR}", stages.clusters_stage, out, phantom, args.cluster_k)
    shown = _timed(summary, "6_severity_diagnosis", 6, "CXR severity and CT diagnosis of one study",
                   stages.severity_diagnosis_stage, out, records)

    print(f"7/{STAGES} writing {DEMO_MARKER}")
    summary["total_seconds"] = round(time.perf_counter() - start, 1)
    write_text(out / DEMO_MARKER, json.dumps({**summary, "finished": True}, indent=2) + "\n")
    lungs, batch = summary["2_lungs"], summary["3_batch"]
    print(f"done in {summary['total_seconds']} s:")
    print(f"  lungs: lowest Dice right {lungs['min_dice_right']:.3f}, left {lungs['min_dice_left']:.3f} "
          f"({out / 'montage.png'})")
    print(f"  batch: {batch['done']} of {len(records)} cases done; open {batch['index_html']}")
    print(f"  similar to {similar['query']}: " + ", ".join(f"{r['study_id']} ({r['diagnosis']})" for r in similar['top'])
          + f" ({out / stages.SIMILAR_FILE})")
    clusters = summary["5_clusters"]
    if not clusters.get("skipped"):
        print(f"  clusters: {clusters['lesions']} lesions in {clusters['k']} clusters ({out / stages.CLUSTER_DIR})")
    print(f"  {shown['study']}: CXR score {shown['cxr_global_score']}/6 (true {shown['true_cxr_global_score']}), "
          f"diagnosis {shown['diagnosis']} (true {shown['true_diagnosis']})")
    print(f"  every figure: {out / DEMO_MARKER}; research use only")
    return 0 if batch["failed"] == 0 else 1
