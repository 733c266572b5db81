"""``python -m zevents``: the zevents command line."""

from __future__ import annotations

from zevents.cli import main

if __name__ == "__main__":
    main()
