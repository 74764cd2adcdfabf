"""Tissue classes of the phantom and their CT numbers.

HU values follow standard non-contrast chest CT references (e.g. Hounsfield scale
tables in radiology textbooks): aerated lung about -850, fat -100, muscle and blood
+40, liver +55, trabecular and cortical bone several hundred HU.
"""

from __future__ import annotations

AIR, SKIN, FAT, MUSCLE, BONE, CARTILAGE, MEDIASTINUM, BLOOD, LIVER, ABDOMEN = range(10)
LUNG, VESSEL, AIRWAY_WALL, AIRWAY_LUMEN, GGO, CRAZY_PAVING, CONSOLIDATION, CANAL = range(10, 18)

NAMES = {
    AIR: "air", SKIN: "skin", FAT: "fat", MUSCLE: "muscle", BONE: "bone", CARTILAGE: "cartilage",
    MEDIASTINUM: "mediastinum", BLOOD: "blood", LIVER: "liver", ABDOMEN: "abdomen", LUNG: "lung",
    VESSEL: "vessel", AIRWAY_WALL: "airway wall", AIRWAY_LUMEN: "airway lumen", GGO: "ggo",
    CRAZY_PAVING: "crazy-paving", CONSOLIDATION: "consolidation", CANAL: "spinal canal",
}

HU_AIR = -1000.0
HU_SKIN = 30.0
HU_FAT = -100.0
HU_MUSCLE = 45.0
HU_RIB = 650.0
HU_VERTEBRA = 420.0
HU_STERNUM = 450.0
HU_CARTILAGE = 120.0
HU_BLOOD = 40.0
HU_LIVER = 58.0
HU_ABDOMEN = 35.0
HU_CSF = 15.0
HU_LUNG = -862.0
"""Aerated parenchyma before vessels; with its gravity gradient it spans about -890..-830."""
HU_LUNG_GRAVITY = 30.0
"""Dependent (posterior) lung is denser than non-dependent lung by about this much per lung radius."""
HU_LUNG_TEXTURE = 16.0
HU_AIRWAY_LUMEN = -985.0
