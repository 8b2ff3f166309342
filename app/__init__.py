"""Sanad: answers over articles, every sentence backed by a cited passage."""

import os

from index.offline import stay_offline

# No model hub is reachable where Sanad runs, and nothing should phone home.
stay_offline()
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
