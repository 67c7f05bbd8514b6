# SPDX-License-Identifier: Apache-2.0
# Type stub of zss.toy (a submodule of the compiled zss._zss); checked by tests/test_stub.py.
from typing import Any, Dict

import numpy as np

class_count: int
test_index_base: int

def scenes(
    count: int,
    *,
    first: int = 0,
    seed: int = 0,
    dim: int = 64,
    height: int = 64,
    width: int = 64,
    min_objects: int = 1,
    max_objects: int = 3,
    clutter_objects: int = 0,
    patch: int = 4,
    dense_noise: float = 0.5,
    cls_noise: float = 0.2,
    gap: float = 1.5,
    global_bias: float = 0.3,
    area_power: float = 0.5,
    dtype: Any = np.float32,
    threads: int = 0,
) -> Dict[str, Any]: ...
