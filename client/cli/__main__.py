"""`python -m client.cli`: the `minikafka` command line."""

import sys

from client.cli.main import main

sys.exit(main())
