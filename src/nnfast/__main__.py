"""``python -m nnfast train|gradcheck|bench``: the same as the ``nnfast`` command."""
import sys

from nnfast.cli import main

sys.exit(main())
