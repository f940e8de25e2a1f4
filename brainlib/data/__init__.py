"""Data: find, verify, split and audit the images; phantoms; tf.data pipelines.

The TensorFlow part lives in :mod:`brainlib.data.tfdata` and is imported on
demand, so that the audit and split commands start without TensorFlow.
"""

from brainlib.data.audit import audit_report, index_duplicates
from brainlib.data.layout import DataError, ImageRecord, class_counts, load_rgb, scan_dataset
from brainlib.data.manifest import ManifestCheck, manifest_hash
from brainlib.data.phantoms import load_mask, make_phantom, write_phantoms
from brainlib.data.source import Dataset, load_dataset, resolve_data_dir
from brainlib.data.splits import (
    SPLITS,
    grouped_split,
    read_split_csv,
    split_summary,
    stratified_split,
    write_split_csv,
)

__all__ = [
    "SPLITS",
    "DataError",
    "Dataset",
    "ImageRecord",
    "ManifestCheck",
    "audit_report",
    "class_counts",
    "grouped_split",
    "index_duplicates",
    "load_dataset",
    "load_mask",
    "load_rgb",
    "make_phantom",
    "manifest_hash",
    "read_split_csv",
    "resolve_data_dir",
    "scan_dataset",
    "split_summary",
    "stratified_split",
    "write_phantoms",
    "write_split_csv",
]
