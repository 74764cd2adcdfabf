"""The Slicer layer: everything that touches MRML, the Slicer panel or Slicer's Python.

* :mod:`.mrml`, :mod:`.outputs`: SimpleITK images and result tables <-> MRML nodes, exact geometry.
* :mod:`.parameters`, :mod:`.panel`: a module's parameter node and its binding to the panel's widgets.
* :mod:`.deps`: installing covidweak's dependencies into Slicer's Python (standard library only,
  so it imports before they exist).
* :mod:`.runner`: the one way a Logic runs covidweak work, in this process or (with
  :mod:`.child_process` and :mod:`.progress_stream`) in a child Python with progress and cancel,
  so torch work stays out of Slicer's GUI process.

The headless batch over many CTs runs the module Logics, so it lives with them in the extension
(``Batch/COVIDBatchLib``), not here.

The core (:mod:`covidweak` outside this package and :mod:`covidweak.training`) never imports it;
``Testing/test_layers.py`` checks that. ``slicer`` itself is imported inside functions, so each
module here imports without Slicer; they work in the Slicer application and with the pip
``slicer-core`` package.
"""
