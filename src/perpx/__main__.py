"""``python -m perpx``: the same command line as ``perpx``."""

from perpx.cli import main

main()
