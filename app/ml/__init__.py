"""The ML core: data, architectures, training, checkpoints, inference. No web or database code."""
