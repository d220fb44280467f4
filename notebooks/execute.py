#!/usr/bin/env python3
"""Runs both notebooks top to bottom with nbclient and fails on the first error.

  python notebooks/execute.py [--results DIR] [--criterion DIR] [--figures DIR]

--results and --criterion set DISPATCHLAB_RESULTS and DISPATCHLAB_CRITERION
(default: the sample data in notebooks/sample/); --figures saves every chart
as PNG there. The notebooks on disk are left as they are (without outputs).
"""

import argparse
import os
import sys
from pathlib import Path

import nbformat
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError

HERE = Path(__file__).resolve().parent
NOTEBOOKS = ("compare.ipynb", "criterion.ipynb")


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--results", default=str(HERE / "sample"))
    parser.add_argument("--criterion", default=str(HERE / "sample" / "criterion"))
    parser.add_argument("--figures")
    args = parser.parse_args()
    os.environ["DISPATCHLAB_RESULTS"] = str(Path(args.results).resolve())
    os.environ["DISPATCHLAB_CRITERION"] = str(Path(args.criterion).resolve())
    if args.figures:
        os.environ["DISPATCHLAB_FIGURES"] = str(Path(args.figures).resolve())
    os.environ.setdefault("MPLBACKEND", "agg")
    for name in NOTEBOOKS:
        notebook = nbformat.read(HERE / name, as_version=4)
        client = NotebookClient(notebook, timeout=300, kernel_name="python3", resources={"metadata": {"path": str(HERE)}})
        try:
            client.execute()
        except CellExecutionError as err:
            print(f"{name} failed:\n{err}", file=sys.stderr)
            return 1
        print(f"{name}: {sum(cell.cell_type == 'code' for cell in notebook.cells)} code cells ran")
    return 0


if __name__ == "__main__":
    sys.exit(main())
