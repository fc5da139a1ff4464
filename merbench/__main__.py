"""``python -m merbench``: the same command line as ``merbench``."""

from merbench.cli.app import main

main()
