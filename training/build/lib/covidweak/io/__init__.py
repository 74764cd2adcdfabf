"""Geometry-safe reading and writing of CT images.

* :func:`read_image` reads a NIfTI, NRRD, MetaImage file or a DICOM series folder.
* :func:`read_ct` also checks that the result is a CT in Hounsfield units and
  returns it as float32.
* :func:`write_image` writes NIfTI, NRRD or MetaImage atomically and never
  overwrites a file unless asked.

All functions work on SimpleITK images in LPS physical space; geometry
(origin, spacing, direction) travels with the image.
"""

from .dicom import read_dicom_series
from .files import READ_SUFFIXES, WRITE_SUFFIXES, read_ct, read_image, write_image

__all__ = ["READ_SUFFIXES", "WRITE_SUFFIXES", "read_ct", "read_dicom_series", "read_image", "write_image"]
