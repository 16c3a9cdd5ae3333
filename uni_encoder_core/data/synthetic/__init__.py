"""The synthetic driving world: a seeded ray-cast street scene with exact ground truth, and data sets over it.

Modules: ``road`` (centreline and curvature profile), ``scene`` (boxes of buildings, trees, poles and cars),
``render`` (camera, rays, ray casting), ``shading`` (colours and labels of what a ray hits), ``world``
(frames with every ground-truth field), ``datasets`` (torch data sets of triplets, labelled frames and
steering windows).
"""

from uni_encoder_core.data.synthetic.datasets import (
    SyntheticSegmentationDataset,
    SyntheticSteeringDataset,
    SyntheticTripletDataset,
)
from uni_encoder_core.data.synthetic.world import SyntheticFrame, SyntheticWorld, WorldConfig

__all__ = [
    "SyntheticFrame", "SyntheticSegmentationDataset", "SyntheticSteeringDataset", "SyntheticTripletDataset",
    "SyntheticWorld", "WorldConfig",
]
