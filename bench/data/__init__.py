"""Datasets for reprogramming tasks: one registry (its entry modules found by discovery), file-free metadata, and
seeded stratified splits."""
from __future__ import annotations

from .registry import (
    DATASETS,
    DatasetEntry,
    DatasetFamily,
    dataset_available,
    dataset_info,
    known_task,
    list_datasets,
    load_task,
    needs_download,
    part_infos,
    prepare,
    register_dataset,
    register_dataset_family,
    register_subset,
)
from .roots import default_data_root
from .types import DatasetInfo, DatasetMissing, ImageSet, TaskData

__all__ = [
    "DATASETS",
    "DatasetEntry",
    "DatasetFamily",
    "DatasetInfo",
    "DatasetMissing",
    "ImageSet",
    "TaskData",
    "dataset_available",
    "dataset_info",
    "known_task",
    "default_data_root",
    "list_datasets",
    "load_task",
    "needs_download",
    "part_infos",
    "prepare",
    "register_dataset",
    "register_dataset_family",
    "register_subset",
]
