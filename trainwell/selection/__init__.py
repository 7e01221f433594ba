"""Selection (seeds 001 and 003): cross-validation, ensembles and hyper-parameter search, on top of whole runs."""

from trainwell.selection.cv import cross_validate, fold_indices
from trainwell.selection.ensembles import balance_cascade, boost, train_ensemble
from trainwell.selection.tune import tune

__all__ = ["balance_cascade", "boost", "cross_validate", "fold_indices", "train_ensemble", "tune"]
