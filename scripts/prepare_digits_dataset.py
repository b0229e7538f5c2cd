#!/usr/bin/env python
"""Build the digits-on-canvases detection dataset (see focoos/data/digits.py for what and why).

    python scripts/prepare_digits_dataset.py --out data/digits --train-images 1200 --val-images 200
"""

from focoos.data.digits import main

if __name__ == "__main__":
    main()
