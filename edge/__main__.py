"""``python -m kerasdance_edge`` is ``kerasdance-edge``."""

from kerasdance_edge.cli import main

if __name__ == "__main__":
    main()
