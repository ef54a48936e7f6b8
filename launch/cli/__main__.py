"""`python -m launch.cli`: the `reprogbench` command."""
import sys

from launch.cli import main

sys.exit(main())
