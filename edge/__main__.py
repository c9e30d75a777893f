"""``python -m edge`` is ``kerasdance-edge``."""

from edge.cli import main

if __name__ == "__main__":
    main()
