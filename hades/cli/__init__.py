"""The `hades` command line: argparse and printing only, on top of the library."""
from hades.cli.app import main  # noqa: F401
