import sys

from flexd.cli import main

sys.exit(main())
