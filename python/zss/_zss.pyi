# SPDX-License-Identifier: Apache-2.0
# Type stub of the compiled module zss._zss (pybind11). Shapes are in the docstrings; the
# parameter names and defaults here are checked against the module by tests/test_stub.py.
from typing import Any, List, Optional, Sequence, Tuple, Union

import numpy as np
import numpy.typing as npt

from . import toy as toy

__version__: str

Array = np.ndarray

class KMeansResult:
    centroids: Array
    labels: Array
    inertia: float
    n_iter: int
    converged: bool
    strict_convergence: bool
    objective: Array
    changed: Array
    empty_clusters: int

class ScaleClustering:
    window: int
    centroids: Array
    labels: Array
    n_iter: int
    converged: bool
    seeds: int
    inertia: float

class PooledCluster:
    scale: int
    cluster: int
    size: int
    mask: int

class FusedMask:
    members: List[int]
    union_tokens: int
    tokens: int
    ignored_tokens: int
    fate: str
    pseudo: int
    seen_class: int

class MaskFusion:
    labels: Array
    num_pseudo: int
    partition: Array
    clusters: List[PooledCluster]
    visit_order: Array
    cluster_centroids: Array
    masks: List[FusedMask]
    mask_centroids: Array

class PseudoLabels:
    labels: Array
    fused_tokens: Array
    token_labels: Array
    num_pseudo: Array
    scales: Optional[List[List[ScaleClustering]]]
    fusion: Optional[List[MaskFusion]]

def kmeans(
    X: npt.ArrayLike,
    k: int = 8,
    *,
    init: Union[str, npt.ArrayLike] = "k-means++",
    max_iter: int = 300,
    tol: float = 0.0001,
    seed: int = 0,
    stream: int = 0,
    spherical: bool = False,
    check_finite: bool = True,
    threads: int = 0,
    local_trials: int = 0,
    window: int = 2,
    grid_h: int = 0,
    grid_w: int = 0,
    empty: str = "reseed_farthest",
) -> KMeansResult: ...
def kmeans_batch(
    Xs: Union[npt.ArrayLike, Sequence[npt.ArrayLike]],
    k: Union[int, Sequence[int]] = 8,
    *,
    init: Union[str, Sequence[npt.ArrayLike]] = "k-means++",
    max_iter: int = 300,
    tol: float = 0.0001,
    seed: int = 0,
    streams: Optional[Sequence[int]] = None,
    spherical: bool = False,
    check_finite: bool = True,
    threads: int = 0,
    local_trials: int = 0,
    window: int = 2,
    grid_h: int = 0,
    grid_w: int = 0,
    empty: str = "reseed_farthest",
) -> List[KMeansResult]: ...
def multiscale_kmeans(
    tokens: npt.ArrayLike,
    *,
    windows: Sequence[int] = [2, 4],
    ks: Optional[Sequence[int]] = None,
    max_iter: int = 10,
    tol: float = 0.0,
    spherical: bool = False,
    seed: int = 0,
    local_trials: int = 0,
    nested_seeds: bool = False,
    check_finite: bool = True,
    threads: int = 0,
) -> Union[List[List[ScaleClustering]], List[ScaleClustering]]: ...
def mask_fusion(
    tokens: npt.ArrayLike,
    token_labels: npt.ArrayLike,
    scales: Sequence[Union[ScaleClustering, KMeansResult, npt.ArrayLike]],
    num_seen: int,
    *,
    lam: float = 0.9,
    min_tokens: int = 2,
    check_finite: bool = True,
) -> MaskFusion: ...
def pseudo_labels(
    tokens: npt.ArrayLike,
    labels: npt.ArrayLike,
    num_seen: int,
    *,
    windows: Sequence[int] = [2, 4],
    ks: Optional[Sequence[int]] = None,
    max_iter: int = 10,
    tol: float = 0.0,
    spherical: bool = False,
    seed: int = 0,
    local_trials: int = 0,
    lam: float = 0.9,
    min_tokens: int = 2,
    ignore_value: int = 255,
    ignored_fraction: float = 0.5,
    out_size: Optional[Tuple[int, int]] = None,
    normalize_tokens: bool = True,
    check_finite: bool = True,
    keep_details: bool = False,
    threads: int = 0,
) -> PseudoLabels: ...

# --- losses: <loss>_forward -> (loss, cache); <loss>_backward(cache, ...) -> gradients -------

class ClsBank:
    def __init__(self, capacity: int, width: int, dtype: Any = np.float32) -> None: ...
    @property
    def capacity(self) -> int: ...
    @property
    def width(self) -> int: ...
    @property
    def size(self) -> int: ...
    @property
    def dtype(self) -> np.dtype: ...
    def __len__(self) -> int: ...
    def push(self, C: npt.ArrayLike) -> None: ...
    def rows(self) -> Array: ...
    def clear(self) -> None: ...

class GlmCache:
    loss: float
    dtype: str

class CosineCECache:
    loss: float
    dtype: str

class CosineLogitsCache:
    loss: float
    dtype: str

class FocalDiceCache:
    loss: float
    dtype: str
    focal: float
    dice: float

class InfoNCECache:
    loss: float
    dtype: str

class BCECache:
    loss: float
    dtype: str

def glm_forward(
    R: npt.ArrayLike,
    C: npt.ArrayLike,
    bank: Optional[ClsBank] = None,
    *,
    pool: str = "attention",
    tau: float = 0.07,
    rho: float = 0.25,
    eps: float = 1e-12,
    threads: int = 0,
    block_rows: int = 128,
    check_finite: bool = False,
) -> Tuple[float, GlmCache]: ...
def glm_backward(
    cache: GlmCache, dloss: float = 1.0, *, dR: Optional[Array] = None, accumulate: bool = True
) -> Array: ...
def glm_forward_backward(
    R: npt.ArrayLike,
    C: npt.ArrayLike,
    bank: Optional[ClsBank] = None,
    *,
    pool: str = "attention",
    tau: float = 0.07,
    rho: float = 0.25,
    eps: float = 1e-12,
    threads: int = 0,
    block_rows: int = 128,
    check_finite: bool = False,
    dloss: float = 1.0,
    dR: Optional[Array] = None,
    accumulate: bool = True,
) -> Tuple[float, Array]: ...
def cosine_ce_forward(
    X: npt.ArrayLike,
    labels: npt.ArrayLike,
    seen: npt.ArrayLike,
    pseudo: Optional[npt.ArrayLike] = None,
    *,
    row_offsets: Optional[npt.ArrayLike] = None,
    pseudo_offsets: Optional[npt.ArrayLike] = None,
    weights: Optional[npt.ArrayLike] = None,
    alpha: float = 14.285714285714285,
    beta: float = 14.285714285714285,
    eps: float = 1e-12,
    threads: int = 0,
    block_rows: int = 128,
    check_finite: bool = False,
) -> Tuple[float, CosineCECache]: ...
def cosine_ce_backward(
    cache: CosineCECache,
    dloss: float = 1.0,
    *,
    dX: Optional[Array] = None,
    dT: Optional[Array] = None,
    dP: Optional[Array] = None,
    seen_grad: bool = False,
    pseudo_grad: bool = True,
    accumulate: bool = True,
) -> Tuple[Array, Optional[Array], Optional[Array]]: ...
def cosine_ce_forward_backward(
    X: npt.ArrayLike,
    labels: npt.ArrayLike,
    seen: npt.ArrayLike,
    pseudo: Optional[npt.ArrayLike] = None,
    *,
    row_offsets: Optional[npt.ArrayLike] = None,
    pseudo_offsets: Optional[npt.ArrayLike] = None,
    weights: Optional[npt.ArrayLike] = None,
    alpha: float = 14.285714285714285,
    beta: float = 14.285714285714285,
    eps: float = 1e-12,
    threads: int = 0,
    block_rows: int = 128,
    check_finite: bool = False,
    dloss: float = 1.0,
    dX: Optional[Array] = None,
    dT: Optional[Array] = None,
    dP: Optional[Array] = None,
    seen_grad: bool = False,
    pseudo_grad: bool = True,
    accumulate: bool = True,
) -> Tuple[float, Array, Optional[Array], Optional[Array]]: ...
def cosine_logits_forward(
    X: npt.ArrayLike,
    seen: npt.ArrayLike,
    pseudo: Optional[npt.ArrayLike] = None,
    *,
    row_offsets: Optional[npt.ArrayLike] = None,
    pseudo_offsets: Optional[npt.ArrayLike] = None,
    alpha: float = 14.285714285714285,
    beta: float = 14.285714285714285,
    eps: float = 1e-12,
    threads: int = 0,
) -> Tuple[Array, CosineLogitsCache]: ...
def cosine_logits_backward(
    cache: CosineLogitsCache,
    dS: npt.ArrayLike,
    *,
    dX: Optional[Array] = None,
    dT: Optional[Array] = None,
    dP: Optional[Array] = None,
    seen_grad: bool = False,
    pseudo_grad: bool = True,
) -> Tuple[Array, Optional[Array], Optional[Array]]: ...
def focal_dice_forward(
    S: npt.ArrayLike,
    labels: npt.ArrayLike,
    num_seen: int,
    *,
    row_offsets: Optional[npt.ArrayLike] = None,
    pseudo_offsets: Optional[npt.ArrayLike] = None,
    alpha: float = 0.25,
    gamma: float = 2.0,
    dice_smooth: float = 1.0,
    focal_weight: float = 1.0,
    dice_weight: float = 1.0,
    threads: int = 0,
) -> Tuple[float, FocalDiceCache]: ...
def focal_dice_backward(
    cache: FocalDiceCache, dloss: float = 1.0, *, dS: Optional[Array] = None
) -> Array: ...
def info_nce_forward(
    Q: npt.ArrayLike, K: npt.ArrayLike, targets: npt.ArrayLike, *, tau: float = 0.07
) -> Tuple[float, InfoNCECache]: ...
def info_nce_backward(
    cache: InfoNCECache,
    dloss: float = 1.0,
    *,
    dQ: Optional[Array] = None,
    dK: Optional[Array] = None,
    key_grad: bool = False,
) -> Tuple[Array, Optional[Array]]: ...
def bce_with_logits_forward(Z: npt.ArrayLike, Y: npt.ArrayLike) -> Tuple[float, BCECache]: ...
def bce_with_logits_backward(
    cache: BCECache, dloss: float = 1.0, *, dZ: Optional[Array] = None
) -> Array: ...

# --- metrics and pictures -------------------------------------------------------------------

class SegmentationMetrics:
    per_class_iou: Array
    miou_seen: float
    miou_unseen: float
    hiou: float
    miou: float
    pixel_acc: float

class ConfusionMatrix:
    def __init__(self, classes: int) -> None: ...
    @property
    def classes(self) -> int: ...
    @property
    def matrix(self) -> Array: ...
    def add(self, truth: npt.ArrayLike, pred: npt.ArrayLike) -> None: ...
    def merge(self, other: ConfusionMatrix) -> None: ...
    def metrics(
        self, seen: npt.ArrayLike, include_background: bool = True
    ) -> SegmentationMetrics: ...

def compute_metrics(
    cm: ConfusionMatrix, seen: npt.ArrayLike, include_background: bool = True
) -> SegmentationMetrics: ...
def segmentation_metrics(
    truth: npt.ArrayLike,
    pred: npt.ArrayLike,
    seen: npt.ArrayLike,
    include_background: bool = True,
) -> SegmentationMetrics: ...
def colorize_labels(labels: npt.ArrayLike) -> Array: ...
def write_png(path: str, pixels: npt.ArrayLike) -> None: ...
