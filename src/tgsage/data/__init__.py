"""Datasets, probe sets and neural recordings (the first stage of the pipeline)."""

from tgsage.data.base import DataSplits, ImageSet
from tgsage.data.cifar import download_cifar, load_cifar
from tgsage.data.folders import load_image_folder
from tgsage.data.neural import (
    Recording,
    load_recording,
    read_csv,
    read_netcdf,
    read_npz,
)
from tgsage.data.probe import ProbeSet, fingerprint_images
from tgsage.data.registry import get_dataset, list_datasets, register_dataset
from tgsage.data.simulate import simulate_recording
from tgsage.data.synthetic import RenderConfig, SyntheticObjects, make_synthetic_objects

__all__ = [
    "DataSplits",
    "ImageSet",
    "ProbeSet",
    "Recording",
    "RenderConfig",
    "SyntheticObjects",
    "download_cifar",
    "fingerprint_images",
    "get_dataset",
    "list_datasets",
    "load_cifar",
    "load_image_folder",
    "load_recording",
    "make_synthetic_objects",
    "read_csv",
    "read_netcdf",
    "read_npz",
    "register_dataset",
    "simulate_recording",
]
