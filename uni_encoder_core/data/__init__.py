"""Data: the shared sample types (``samples``), the real data sets read from their official layouts
(``cityscapes``, ``kitti``, ``lane_keeping``), geometry-consistent augmentations (``augment``) and the synthetic
world (``synthetic/``)."""
