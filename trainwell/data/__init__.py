"""Data: embedded data sets and their train / validation / test splits."""

from trainwell.data.datasets import DATASETS, Data, DataSpec, Raw, Split, load_data, split_data
from trainwell.data.imbalance import SMOTE, NearMiss, RandomOverSampler, RandomUnderSampler
from trainwell.data.samplers import DistributedWeightedSampler, balanced_row_weights
from trainwell.data.sequences import make_adding_problem, make_sequence_task

__all__ = ["DATASETS", "DistributedWeightedSampler", "SMOTE", "balanced_row_weights", "NearMiss", "RandomOverSampler", "RandomUnderSampler", "Data", "DataSpec", "Raw", "Split", "load_data", "make_adding_problem", "make_sequence_task", "split_data"]
