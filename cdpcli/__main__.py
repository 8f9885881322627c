"""``python -m cdpcli``: the same as the ``cdp`` command."""

from cdpcli.main import main

raise SystemExit(main())
