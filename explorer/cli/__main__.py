"""``python -m explorer.cli``: the console script, for processes that start one another (the
extra workers of ``explorer search --workers N``) without relying on the script's path."""

from . import main

main()
