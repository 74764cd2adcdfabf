"""covidweak: weakly supervised COVID-19 lesion analysis for chest CT and X-ray.

Importing the package is cheap and imports no third-party library, so that
Slicer can import :mod:`covidweak.slicer.deps` before the dependencies exist.
"""

__version__ = "0.1.0"
