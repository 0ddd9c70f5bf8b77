"""``python -m shipml.edge predict|serve EDGE_BUNDLE``: the device's command (stdlib + onnxruntime)."""

import sys

from shipml.edge.device import main

sys.exit(main())
