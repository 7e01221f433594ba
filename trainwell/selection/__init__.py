"""Selection (seed 003): cross-validation and ensembles, on top of whole runs."""

from trainwell.selection.cv import cross_validate, fold_indices
from trainwell.selection.ensembles import balance_cascade, boost, train_ensemble

__all__ = ["balance_cascade", "boost", "cross_validate", "fold_indices", "train_ensemble"]
