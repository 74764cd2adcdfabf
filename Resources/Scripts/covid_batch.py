"""Batch analysis of many chest CTs with the extension's modules, in Slicer or with the pip slicer-core.

    Slicer --no-main-window --python-script Resources/Scripts/covid_batch.py -- --input DIR --output DIR
    python Resources/Scripts/covid_batch.py --input DIR --output DIR      (pip install slicer-core covidweak)

Same options as ``covidweak batch`` (``--help``). Inside Slicer the modules are
already importable and the cases run one after another in Slicer's process;
outside it, the extension's folders are put on ``sys.path`` unless pip installed them.
Research use only.
"""

import argparse
import importlib.util
import sys
from pathlib import Path

EXTENSION_ROOT = Path(__file__).resolve().parents[2]
PACKAGE_FOLDERS = {"covidweak": "training", "COVIDWeakSegLib": "COVIDWeakSeg", "COVIDSeverityLib": "COVIDSeverity",
                   "COVIDSimilarCaseLib": "COVIDSimilarCase", "COVIDBatchLib": "Batch"}


def in_slicer_application() -> bool:
    import slicer

    return hasattr(slicer, "app")


def make_importable() -> None:
    """Put this checkout's packages on the path when they are not importable already (in Slicer, or
    after pip installs, they are): this script is part of the extension and knows where they are."""
    for package, folder in PACKAGE_FOLDERS.items():
        if importlib.util.find_spec(package) is None:
            sys.path.insert(0, str(EXTENSION_ROOT / folder))


def main(argv) -> int:
    make_importable()
    from COVIDBatchLib.command import add_arguments
    from COVIDBatchLib.command import run as run_batch_command
    from covidweak.cli import EXIT_USER_ERROR
    from covidweak.errors import CovidWeakError

    parser = argparse.ArgumentParser(prog="covid_batch.py", description=__doc__.splitlines()[0])
    add_arguments(parser)
    # Slicer hands over everything after the script name, including the "--" that separates
    # the script's options from Slicer's own; argparse would read what follows it as positionals.
    args = parser.parse_args(argv[1:] if argv[:1] == ["--"] else argv)
    if in_slicer_application() and args.jobs != 1:
        # Worker processes would start Slicer's launcher, not a Python: one process it is.
        print("covid_batch.py: inside Slicer the cases run in one process; --jobs ignored", file=sys.stderr)
        args.jobs = 1
    try:
        return run_batch_command(args)
    except CovidWeakError as error:
        print(f"covid_batch.py: error: {error}", file=sys.stderr)
        return EXIT_USER_ERROR


if __name__ == "__main__":
    status = main(sys.argv[1:])
    if in_slicer_application():
        import slicer

        slicer.util.exit(status)  # --python-script would keep Slicer running otherwise
    sys.exit(status)
