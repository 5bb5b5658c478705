"""``python -m cli`` is the ``registry`` command."""

from cli.main import main

main()
