"""The doctor: names what goes wrong in a training run, why, and what to do."""

from trainwell.doctor.audit import audit
from trainwell.doctor.callback import DoctorCallback
from trainwell.doctor.compare import degradation
from trainwell.doctor.doctor import Doctor, Thresholds
from trainwell.doctor.findings import CAUSES, SYMPTOMS, Finding, Symptom
from trainwell.doctor.remedies import plan_repair, resolve_overrides

__all__ = ["CAUSES", "SYMPTOMS", "Doctor", "DoctorCallback", "Finding", "Symptom", "Thresholds", "audit",
           "degradation", "plan_repair", "resolve_overrides"]
