"""``python -m radmap`` is the ``radmap`` command."""

from radmap.cli import main

raise SystemExit(main())
