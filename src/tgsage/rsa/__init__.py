"""The RSA engine: RDMs, RDM comparisons, linear CKA, teacher guidance and noise ceilings.

Pure tensor math (numpy or torch in, any device), no ``torch.nn``. The typical call::

    from tgsage import rsa
    teacher = rsa.compute_rdms({"L1": t1, "L2": t2, "L3": t3}, subsamples=10)
    g = rsa.score_against_teacher(teacher, {"conv1": c1, "conv2": c2})
    g.tg, g.per_layer, g.score(accuracy=0.41, alpha=1.0)
"""

from tgsage.rsa.ceiling import NoiseCeiling, spearman_brown, split_half_noise_ceiling
from tgsage.rsa.compare import (
    COMPARE_METHODS,
    average_ranks,
    check_same_conditions,
    cka,
    compare,
    kendall_tau_a,
)
from tgsage.rsa.guidance import Guidance, combined_score, score_against_teacher, teacher_guidance
from tgsage.rsa.interop import from_rsatoolbox, to_rsatoolbox
from tgsage.rsa.rdm import RDM_METHODS, RDMs, compute_rdms, group_means, rdm_embedding
from tgsage.rsa.streaming import StreamingSimilarity, compare_features, stream_batches

__all__ = [
    "COMPARE_METHODS",
    "RDM_METHODS",
    "Guidance",
    "NoiseCeiling",
    "RDMs",
    "StreamingSimilarity",
    "average_ranks",
    "check_same_conditions",
    "cka",
    "combined_score",
    "compare",
    "compare_features",
    "compute_rdms",
    "from_rsatoolbox",
    "group_means",
    "kendall_tau_a",
    "rdm_embedding",
    "score_against_teacher",
    "spearman_brown",
    "split_half_noise_ceiling",
    "stream_batches",
    "teacher_guidance",
    "to_rsatoolbox",
]
