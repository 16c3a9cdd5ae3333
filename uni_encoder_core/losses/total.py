"""Total training loss (paper eq. 4): ``L_total = l1 * L_sup + l2 * L_ssup + l3 * L_distil``."""

from __future__ import annotations

from torch import Tensor

from uni_encoder_core.config import LossConfig

LossAndTerms = tuple[Tensor, dict[str, Tensor]]


def total_loss(
    cfg: LossConfig, sup: LossAndTerms | None = None, ssup: LossAndTerms | None = None,
    distil: LossAndTerms | None = None,
) -> LossAndTerms:
    """Weighted sum of the parts a training stage uses (``None`` = not used in this stage).

    Each part is ``(loss, terms)`` as returned by the segmentation, self-supervised and distillation losses.
    Returns (total loss, terms for logging): ``total``, ``sup``, ``ssup``, ``distil`` (unweighted part values)
    and every part's own terms as ``<part>/<term>``, all detached.
    """
    parts = {"sup": (sup, cfg.sup_weight), "ssup": (ssup, cfg.ssup_weight), "distil": (distil, cfg.distil_weight)}
    used = {name: (part, weight) for name, (part, weight) in parts.items() if part is not None}
    if not used:
        raise ValueError("total_loss needs at least one of sup, ssup, distil")
    total = sum(weight * part[0] for part, weight in used.values())
    terms: dict[str, Tensor] = {"total": total.detach()}
    for name, ((loss, part_terms), _) in used.items():
        terms[name] = loss.detach()
        terms.update({f"{name}/{key}": value.detach() for key, value in part_terms.items()})
    return total, terms
