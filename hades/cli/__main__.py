import sys

from hades.cli.app import main

sys.exit(main())
