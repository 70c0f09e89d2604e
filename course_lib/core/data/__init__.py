"""Core data layer: data root, dataset registry, downloads, caches and GloVe vectors.

One path for data: data root -> registry entry -> loader -> assignment code.
"""

from course_lib.core.data.registry import DATASETS, DatasetSpec, MissingDataError, require
from course_lib.core.data.root import cache_dir, resolve_data_root

__all__ = [
    "DATASETS",
    "DatasetSpec",
    "MissingDataError",
    "cache_dir",
    "require",
    "resolve_data_root",
]
