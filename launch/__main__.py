"""`python -m launch ...` is the same as the `rtu-control` console script."""
import sys

from launch.cli import main

sys.exit(main())
