# SPDX-License-Identifier: Apache-2.0
"""zss from Python: the CPU-heavy half of CLIP-ZSS (zero-shot semantic segmentation with a CLIP
teacher) on NumPy arrays — K-Means, multi-scale K-Means with mask fusion (the PLM pseudo
labels), the losses with hand-written gradients, the GZSS metrics and the toy world.

Conventions (the same for every function):

* **dtypes.** A call computes in the dtype of its main array: float32 stays float32, float64
  stays float64, any other dtype is converted to float64. The call's other float arrays must
  have the same dtype (``ValueError`` otherwise: nothing is narrowed behind your back); lists
  are converted. Labels may have any integer dtype (int32 is used as is; others are converted
  after a check that they fit in int32).
* **No copies.** C-contiguous arrays of the call's dtype are used in place; any other layout
  (transposed, sliced with steps, Fortran order) is copied once into a C-contiguous array.
  Results are C++ buffers handed to NumPy without a copy.
* **Gradients add into** the arrays given as ``dX=...`` (C-contiguous, writeable, the call's
  dtype and shape), or into fresh zero arrays: several losses can accumulate into one buffer, as
  in the C++ library. ``<loss>_forward`` returns ``(loss, cache)`` and ``<loss>_backward(cache,
  dloss=1.0, ...)`` the gradients; the cache keeps references to the forward's inputs, which must
  not change in between.
* **Threads.** Parallel functions take ``threads=`` (0 = the OpenMP default, e.g.
  ``OMP_NUM_THREADS``). The GIL is released while the library computes, so Python threads can
  run zss calls in parallel.
* **Errors.** Every ``std::invalid_argument`` of the library is a ``ValueError`` with the same
  message, e.g. ``kmeans: k (9) exceeds the number of points (7)``.

``zss.torch`` (imported on first use; needs PyTorch) wraps the losses as
``torch.autograd.Function`` objects for CPU tensors. ``zss.toy`` generates the toy world.
"""

import importlib as _importlib
import sys as _sys

from . import _zss
from ._zss import (
    BCECache,
    ClsBank,
    ConfusionMatrix,
    CosineCECache,
    CosineLogitsCache,
    FocalDiceCache,
    FusedMask,
    GlmCache,
    InfoNCECache,
    KMeansResult,
    MaskFusion,
    PooledCluster,
    PseudoLabels,
    ScaleClustering,
    SegmentationMetrics,
    __version__,
    bce_with_logits_backward,
    bce_with_logits_forward,
    colorize_labels,
    compute_metrics,
    cosine_ce_backward,
    cosine_ce_forward,
    cosine_ce_forward_backward,
    cosine_logits_backward,
    cosine_logits_forward,
    focal_dice_backward,
    focal_dice_forward,
    glm_backward,
    glm_forward,
    glm_forward_backward,
    info_nce_backward,
    info_nce_forward,
    kmeans,
    kmeans_batch,
    mask_fusion,
    multiscale_kmeans,
    pseudo_labels,
    segmentation_metrics,
    write_png,
)

toy = _zss.toy
_sys.modules[__name__ + ".toy"] = toy  # `import zss.toy` and `from zss.toy import scenes` work


def __getattr__(name):
    # `zss.torch` is imported on first use only: `import zss` never imports PyTorch.
    if name == "torch":
        return _importlib.import_module(__name__ + ".torch")
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = sorted({n for n in dir(_zss) if not n.startswith("_")} | {"__version__"})
