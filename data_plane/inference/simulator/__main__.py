"""`python -m data_plane.inference.simulator`: see settings.py for the flags."""

from data_plane.inference.simulator.runner import main

if __name__ == "__main__":
    main()
