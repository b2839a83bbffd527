"""`python -m ofa ...` is the `ofa` command."""
import sys

from .cli import main

if __name__ == "__main__":
    sys.exit(main())
