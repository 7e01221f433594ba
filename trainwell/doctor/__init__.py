"""The doctor: finds what goes wrong in a training run, names its cause and its remedy.

It knows PyTorch, not trainwell's config: a finding's remedies are
structured changes (:mod:`trainwell.doctor.remedies`) that any loop can
apply; trainwell's run layer turns them into config changes.
"""

from trainwell.doctor.audit import audit
from trainwell.doctor.callback import DoctorCallback
from trainwell.doctor.compare import degradation
from trainwell.doctor.doctor import Doctor
from trainwell.doctor.lint import lint
from trainwell.doctor.findings import CAUSES, SYMPTOMS, Finding, Symptom
from trainwell.doctor.remedies import (REMEDIES, AddClipping, AddDropout, AddNorm, AddResidual, AddWeightDecay,
                                       Remedy, ScaleLR, SetActivation, SetInit, SetLoss, SetSchedule,
                                       StandardizeInputs, StopEarly)
from trainwell.doctor.thresholds import Thresholds

__all__ = ["CAUSES", "REMEDIES", "SYMPTOMS", "AddClipping", "AddDropout", "AddNorm", "AddResidual", "AddWeightDecay",
           "Doctor", "DoctorCallback", "Finding", "Remedy", "ScaleLR", "SetActivation", "SetInit", "SetLoss",
           "SetSchedule", "StandardizeInputs", "StopEarly", "Symptom", "Thresholds", "audit", "degradation", "lint"]
