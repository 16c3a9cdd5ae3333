"""Data: the shared sample types (``samples``) and the data sets that produce them (``synthetic/``)."""
