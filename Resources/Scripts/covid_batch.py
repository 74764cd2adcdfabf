"""Batch analysis of many chest CTs with the extension's modules, in Slicer or with the pip slicer-core.

    Slicer --no-main-window --python-script Resources/Scripts/covid_batch.py -- --input DIR --output DIR
    python Resources/Scripts/covid_batch.py --input DIR --output DIR      (pip install slicer-core covidweak)

Same options as ``covidweak batch`` (``--help``). Inside Slicer the modules are
already importable and the cases run one after another in Slicer's process;
outside it, the module folders next to this script are put on ``sys.path``.
Research use only.
"""

import argparse
import sys
from pathlib import Path

EXTENSION_ROOT = Path(__file__).resolve().parents[2]


def in_slicer_application() -> bool:
    import slicer

    return hasattr(slicer, "app")


def main(argv) -> int:
    if str(EXTENSION_ROOT / "training") not in sys.path:
        sys.path.insert(0, str(EXTENSION_ROOT / "training"))  # a source checkout without `pip install covidweak`
    from covidweak.cli import EXIT_USER_ERROR
    from covidweak.commands.batch import add_arguments
    from covidweak.commands.batch import run as run_batch_command
    from covidweak.errors import CovidWeakError

    parser = argparse.ArgumentParser(prog="covid_batch.py", description=__doc__.splitlines()[0])
    add_arguments(parser)
    # Slicer hands over everything after the script name, including the "--" that separates
    # the script's options from Slicer's own; argparse would read what follows it as positionals.
    args = parser.parse_args(argv[1:] if argv[:1] == ["--"] else argv)
    if args.modules_dir is None:
        args.modules_dir = EXTENSION_ROOT
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
