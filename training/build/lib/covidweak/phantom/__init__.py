"""Synthetic chest CT / X-ray phantom with exact lung and lesion labels.

The only labelled data of the project: a patient's thorax (body wall, skeleton,
mediastinum, diaphragm, lungs with vessel and bronchial trees, trachea) is fixed by
its seed; COVID-19 (filling as much lung as MosMedData's CT categories give a hospital
cohort), CAP or no lesions are drawn on it and evolve over follow-ups; a
frontal radiograph is projected from the CT with Kim et al.'s 3x2 severity array.
"""

from .cohort import cohort_stats, cohort_table
from .config import PATTERNS, PhantomConfig
from .dataset import MANIFEST, MANIFEST_COLUMNS, allocate_patterns, generate_dataset
from .study import PhantomStudy, generate_study, write_study

__all__ = ["PATTERNS", "PhantomConfig", "PhantomStudy", "generate_study", "write_study", "generate_dataset",
           "allocate_patterns", "MANIFEST", "MANIFEST_COLUMNS", "cohort_stats", "cohort_table"]
