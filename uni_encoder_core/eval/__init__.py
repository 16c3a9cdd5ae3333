"""Evaluation metrics matching the paper's tables.

``depth`` (Table III: monodepth2 / ManyDepth protocols), ``segmentation`` (Table II: PQ, mask AP, mIoU),
``motion`` (motion-mask precision / recall / F1), ``pose`` (ATE), ``steering`` (Table IV: MSE, tenfold
cross-testing) and ``tables`` (paper-style text and Markdown tables).
"""
