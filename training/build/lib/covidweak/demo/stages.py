"""The demo's model stages: each runs a ``covidweak`` command in this process on the phantom and sums it up.

A stage calls the command's own ``run`` function (through the CLI parser, so the
options and their defaults are exactly the command's) rather than a subprocess,
then reads the files the command wrote and returns the key figures for
demo_summary.json, next to the phantom's truth where the phantom has one.

The shipped ``*-light`` weights were trained for minutes on small phantoms: they
show that every stage runs end to end, not how well the papers' methods work.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

from ..errors import InputError

BATCH_DIR, INDEX_DIR, SIMILAR_FILE, CLUSTER_DIR = "batch", "case_index", "similar.json", "cluster_model"
CXR_SEVERITY_DIR, DIAGNOSIS_DIR = "cxr_severity", "diagnosis"
SIMILAR_K = 5
"""Studies asked of the similar-case search (fewer when the demo index is smaller)."""
WEIGHTS_NOTE = ("the lesion networks (*-light, lung box) were trained on CPU on phantoms: on held-out phantom "
                "patients mseamnam-light finds lesions with Dice 0.80 and leaves normal patients clean, but faint ground "
                "glass can be missed and regions under 0.5 mL are not marked; diagnosis-light and ducn-light read the lung "
                "box and were trained on 208-304 pixel phantom chests, larger than the demo's 128 pixel one; fecnn-light "
                "finds COVID-19 slices but boxes only 41-44 % of the lesions at the paper's overlap; research use only")


def run_command(argv: list[str]) -> int:
    """Run ``covidweak ARGV...`` in this process; its user errors propagate as :class:`~covidweak.errors.CovidWeakError`."""
    from ..cli import build_parser

    args = build_parser().parse_args(argv)
    return int(args.func(args) or 0)


def _rows(path: Path) -> list[dict]:
    with open(path, newline="") as handle:
        return list(csv.DictReader(handle))


def _number(text: str):
    return float(text) if text not in ("", None) else None


def true_lesion_ml(record) -> float:
    """Volume in mL of every lesion voxel of the phantom's truth (any type)."""
    from ..io import read_image
    from ..metrics import label_volumes_ml

    lesions = read_image(record.lesion_mask_path)
    return round(label_volumes_ml(lesions > 0, lesions.GetSpacing(), (1,))[1], 1)


def batch_stage(out: Path, phantom: Path, records: list) -> dict:
    """Stage 3: ``covidweak batch`` (COVIDWeakSeg + COVIDSeverity Logics) over every phantom CT."""
    status = run_command(["batch", "--input", str(phantom), "--output", str(out / BATCH_DIR)])
    truth = {record.study_id: true_lesion_ml(record) for record in records}
    cases = []
    for row in _rows(out / BATCH_DIR / "summary.csv"):
        cases.append(dict(case_id=row["case_id"], status=row["status"], error=row["error"],
                          lesion_volume_ml=_number(row["lesion_volume_ml"]), true_lesion_ml=truth.get(row["case_id"]),
                          involvement_percent=_number(row["involvement_percent"]),
                          ct_severity_score=_number(row["ct_severity_score"]), report=row["report"]))
    for case in cases:
        shown = case["error"] or (f"lesions {case['lesion_volume_ml']} mL (true {case['true_lesion_ml']} mL), "
                                  f"CT score {case['ct_severity_score']}/30")
        print(f"   {case['case_id']:<22} {case['status']:<6} {shown}")
    return dict(command=f"covidweak batch --input {phantom} --output {out / BATCH_DIR}", exit_status=status,
                done=sum(case["status"] == "done" for case in cases), failed=sum(case["status"] == "failed" for case in cases),
                cases=cases, index_html=str(out / BATCH_DIR / "index.html"))


def showcase_study(records: list):
    """The first COVID-19 study (the phantom's most telling one), else the first study."""
    return next((record for record in records if record.diagnosis == "covid"), records[0])


def query_study(records: list):
    """The last study of the first COVID-19 patient (see :func:`showcase_study`): a follow-up when there is one."""
    patient = showcase_study(records).patient_id
    return max((record for record in records if record.patient_id == patient), key=lambda record: record.study_index)


def similar_stage(out: Path, phantom: Path, records: list) -> dict:
    """Stage 4: a DuCN case index of the phantom without the query study, and ``covidweak similar`` of that study.

    The query is removed from the index so that the search cannot simply find
    the query itself; with follow-ups, the same patient's other study is the
    case a good embedding ranks first.
    """
    query = query_study(records)
    if len(records) < 2:
        raise InputError("the similar-case stage needs at least 2 phantom studies: raise --patients or --studies-per-patient")
    index = out / INDEX_DIR
    run_command(["index", "build", "--data", str(phantom), "--out", str(index)])
    run_command(["index", "remove", str(index), query.study_id])
    k = min(SIMILAR_K, len(records) - 1)
    run_command(["similar", str(query.ct_path), "--index", str(index), "--k", str(k), "--out", str(out / SIMILAR_FILE)])
    document = json.loads((out / SIMILAR_FILE).read_text())
    results = document["results"]
    own = [r["rank"] for r in results if r["patient_id"] == query.patient_id]
    return dict(command=f"covidweak index build --data {phantom} --out {index}; covidweak index remove {index} "
                        f"{query.study_id}; covidweak similar {query.ct_path} --index {index} --k {k} "
                        f"--out {out / SIMILAR_FILE}",
                index_studies=document["index"]["studies"], query=query.study_id, query_diagnosis=query.diagnosis,
                top=[{key: r[key] for key in ("rank", "study_id", "diagnosis", "distance")} for r in results],
                same_patient_rank=own[0] if own else None,
                same_diagnosis_top1=bool(results) and results[0]["diagnosis"] == query.diagnosis)


def clusters_stage(out: Path, phantom: Path, k: str) -> dict:
    """Stage 5: ``covidweak clusters --data PHANTOM --k K`` (FeCNN lesions + k-means) into the cluster model folder."""
    from ..clusters.store import INFO_NAME, LESIONS_NAME

    model = out / CLUSTER_DIR
    try:
        run_command(["clusters", "--data", str(phantom), "--k", k, "--out", str(model)])
    except InputError as error:
        # A small phantom can hold fewer lesions than the clusters asked for; too few to cluster is a
        # result, not a failed demo.
        reason = f"not enough lesions to cluster ({error})"
        print(f"   skipped: {reason}")
        return dict(command=f"covidweak clusters --data {phantom} --k {k} --out {model}", skipped=True, reason=reason)
    info = json.loads((model / INFO_NAME).read_text())
    rows = _rows(model / LESIONS_NAME)
    sizes: dict[str, int] = {}
    for row in rows:
        sizes[row["cluster"]] = sizes.get(row["cluster"], 0) + 1
    return dict(command=f"covidweak clusters --data {phantom} --k {k} --out {model}", lesions=len(rows),
                studies=info["studies"], k=len(sizes), k_selection=info["k_selection"].get("rule"),
                lesions_per_cluster=dict(sorted(sizes.items())), type_table=info.get("type_table"))


def severity_diagnosis_stage(out: Path, records: list) -> dict:
    """Stage 6: ``covidweak severity`` of one study's radiograph and ``covidweak diagnose`` of its CT, beside the truth."""
    record = showcase_study(records)
    if "cxr_path" not in record.extra:
        raise InputError(f"phantom study {record.study_id} has no radiograph (cxr.nii.gz): regenerate the demo")
    run_command(["severity", str(record.extra["cxr_path"]), "--out", str(out / CXR_SEVERITY_DIR)])
    run_command(["diagnose", str(record.ct_path), "--out", str(out / DIAGNOSIS_DIR)])
    severity = json.loads((out / CXR_SEVERITY_DIR / "severity.json").read_text())
    diagnosis = json.loads((out / DIAGNOSIS_DIR / "diagnosis.json").read_text())
    return dict(command=f"covidweak severity {record.extra['cxr_path']} --out {out / CXR_SEVERITY_DIR}; "
                        f"covidweak diagnose {record.ct_path} --out {out / DIAGNOSIS_DIR}",
                study=record.study_id,
                cxr_global_score=severity["global_score"], true_cxr_global_score=record.extra.get("severity_global"),
                cxr_binary=severity["binary"], true_cxr_binary=record.extra.get("severity_array"),
                diagnosis=diagnosis["prediction"], true_diagnosis=record.diagnosis,
                probabilities={key: round(value, 3) for key, value in diagnosis["probabilities"].items()})
