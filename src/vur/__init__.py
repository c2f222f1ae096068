"""VUR: a self-hosted machine-learning platform."""

import os

__version__ = "0.1.0"

# Keras defaults to TensorFlow, which is not installed; it must see this before its import.
os.environ.setdefault("KERAS_BACKEND", "torch")
