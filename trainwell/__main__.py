"""``python -m trainwell``: the same as the ``trainwell`` command."""

from trainwell.cli import main

main()
