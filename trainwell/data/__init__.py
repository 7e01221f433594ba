"""Data: embedded data sets and their train / validation / test splits."""

from trainwell.data.datasets import DATASETS, Data, Raw, Split, load_data, split_data

__all__ = ["DATASETS", "Data", "Raw", "Split", "load_data", "split_data"]
