"""The stages of ``covidweak demo`` after the phantom and its lung scores (see :mod:`.stages`)."""
