"""``python -m jasc_core.cli``: the same as the ``jasc`` console script."""

from jasc_core.cli import main

main()
