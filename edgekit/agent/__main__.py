"""`python -m edgekit.agent ...` on the host, or `python3 edgekit_agent.pyz ...` on a board."""

import sys

from edgekit.agent.main import main

sys.exit(main())
