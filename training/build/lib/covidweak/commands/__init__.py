"""One module per ``covidweak`` subcommand; see :mod:`covidweak.cli`."""
