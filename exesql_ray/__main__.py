import sys

from exesql_ray.cli import main

sys.exit(main())
