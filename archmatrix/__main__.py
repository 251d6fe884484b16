"""`python -m archmatrix ...` is the `archmatrix` command."""

import sys

from archmatrix.cli.main import main

sys.exit(main())
