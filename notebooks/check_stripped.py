#!/usr/bin/env python3
"""Fails when a committed notebook carries outputs or execution counts.

  python3 notebooks/check_stripped.py [NOTEBOOK...]   (default: notebooks/*.ipynb)

Outputs hold pictures of one machine's numbers and make every diff noisy:
notebooks are committed clean. To strip one: jupyter nbconvert
--clear-output --inplace NOTEBOOK (or "Clear All Outputs", then save).
Standard library only.
"""

import json
import sys
from pathlib import Path


def dirty_cells(path):
    cells = json.loads(path.read_text(encoding="utf-8")).get("cells", [])
    return [
        index
        for index, cell in enumerate(cells)
        if cell.get("cell_type") == "code" and (cell.get("outputs") or cell.get("execution_count") is not None)
    ]


def main(argv):
    paths = [Path(arg) for arg in argv] or sorted(Path(__file__).resolve().parent.glob("*.ipynb"))
    dirty = {path: cells for path in paths if (cells := dirty_cells(path))}
    for path, cells in dirty.items():
        print(f"{path}: code cells {cells} have outputs; clear them before committing "
              f"(jupyter nbconvert --clear-output --inplace {path})", file=sys.stderr)
    if not dirty:
        print(f"{len(paths)} notebooks without outputs")
    return 1 if dirty else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
