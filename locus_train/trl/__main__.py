"""``python -m locus_train.trl`` / ``accelerate launch -m locus_train.trl``: the same as ``locus-train trl``."""

import sys

from locus_train.trl.train import main


if __name__ == "__main__":
    sys.exit(main())
