"""``python -m locus_train.preflight``: what the launchers run (see :mod:`locus_train.preflight`)."""

import sys

from locus_train.preflight import main


sys.exit(main())
