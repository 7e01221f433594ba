"""Run imbalanced-learn's own tests with trainwell's samplers swapped in (a helper of test_imblearn_suite).

Nothing of imbalanced-learn is copied: its installed test modules are loaded afresh
under private names (the real ``imblearn`` modules are left untouched) and their
module-level names for the classes under test are rebound to trainwell's.

``TRAINWELL_ORACLE_TARGET`` chooses what is swapped in: a module with the four
classes (default ``trainwell.data.imbalance``), or ``imblearn`` for imbalanced-learn's
own classes, which checks the harness itself (everything but imbalanced-learn's own
expected failures passes then).
"""

from __future__ import annotations

import importlib
import importlib.util
import inspect
import os
import re
import sys
import types
from functools import partial

import numpy as np

NAMES = ("RandomOverSampler", "RandomUnderSampler", "SMOTE", "NearMiss")
TARGET = os.environ.get("TRAINWELL_ORACLE_TARGET", "trainwell.data.imbalance")

# imbalanced-learn's per-sampler test modules, with the class each one tests
SAMPLER_MODULES = {
    "ros": ("imblearn.over_sampling.tests.test_random_over_sampler", "RandomOverSampler"),
    "rus": ("imblearn.under_sampling._prototype_selection.tests.test_random_under_sampler", "RandomUnderSampler"),
    "smote": ("imblearn.over_sampling._smote.tests.test_smote", "SMOTE"),
    "nearmiss": ("imblearn.under_sampling._prototype_selection.tests.test_nearmiss", "NearMiss"),
}
# imbalanced-learn's instances for the common checks (its INIT_PARAMS for these four classes)
INIT_PARAMS = [("RandomOverSampler", {"random_state": 42}), ("RandomUnderSampler", {"random_state": 42}),
               ("SMOTE", {"random_state": 42}), ("NearMiss", {"version": 1}), ("NearMiss", {"version": 2}),
               ("NearMiss", {"version": 3})]


def target_classes() -> dict[str, type]:
    """The four classes under test."""
    if TARGET == "imblearn":
        import imblearn.over_sampling as over
        import imblearn.under_sampling as under

        return {"RandomOverSampler": over.RandomOverSampler, "SMOTE": over.SMOTE,
                "RandomUnderSampler": under.RandomUnderSampler, "NearMiss": under.NearMiss}
    module = importlib.import_module(TARGET)
    return {name: getattr(module, name) for name in NAMES}


def imblearn_classes() -> dict[str, type]:
    import imblearn.over_sampling as over
    import imblearn.under_sampling as under

    return {"RandomOverSampler": over.RandomOverSampler, "SMOTE": over.SMOTE,
            "RandomUnderSampler": under.RandomUnderSampler, "NearMiss": under.NearMiss}


def fresh(module_name: str, **rebind: object) -> types.ModuleType:
    """A new copy of the installed module ``module_name`` with its global names ``rebind`` replaced."""
    spec = importlib.util.find_spec(module_name)
    copy_name = "_trainwell_oracle__" + module_name.replace(".", "_")  # no dots: pickle can find it
    copy_spec = importlib.util.spec_from_file_location(copy_name, spec.origin)
    module = importlib.util.module_from_spec(copy_spec)
    sys.modules[copy_name] = module  # what its classes pickle (joblib's Memory in the pipeline tests) needs
    copy_spec.loader.exec_module(module)
    for name, value in rebind.items():
        if not hasattr(module, name):
            raise AttributeError(f"{module_name} has no {name} to swap")
        setattr(module, name, value)
    return module


def tests_of(module: types.ModuleType, mentioning: str | None = None) -> dict[str, object]:
    """The module's test functions (those whose source mentions ``mentioning``, if given)."""
    out = {}
    for name, fn in vars(module).items():
        if name.startswith("test_") and inspect.isfunction(fn) and fn.__module__ == module.__name__:
            if mentioning is None or mentioning in inspect.getsource(fn):
                out[name] = fn
    return out


def fixtures_of(module: types.ModuleType) -> dict[str, object]:
    """The module's pytest fixtures, to expose next to its tests."""
    # pytest 8.4+ marks a fixture with _fixture_function_marker, older ones with _pytestfixturefunction
    return {name: obj for name, obj in vars(module).items()
            if hasattr(obj, "_fixture_function_marker") or hasattr(obj, "_pytestfixturefunction")}


def sampler_checks_module(classes: dict[str, type]) -> types.ModuleType:
    """imblearn.utils.estimator_checks with its over/under-sampler base classes widened to ``classes``."""
    import imblearn.over_sampling.base as over_base
    import imblearn.under_sampling.base as under_base

    over = (over_base.BaseOverSampler, classes["RandomOverSampler"], classes["SMOTE"])
    under = (under_base.BaseUnderSampler, classes["RandomUnderSampler"], classes["NearMiss"])
    return fresh("imblearn.utils.estimator_checks", BaseOverSampler=over, BaseUnderSampler=under)


def check_name(check: object) -> str:
    while hasattr(check, "__wrapped__"):
        check = check.__wrapped__
    return check.func.__name__ if isinstance(check, partial) else check.__name__


def estimator_id(name: str, params: dict) -> str:
    return f"{name}(" + ",".join(f"{k}={v!r}" for k, v in params.items()) + ")"


def imblearn_sampler_checks(classes: dict[str, type]) -> list[tuple[object, object, str]]:
    """(trainwell instance, check, id) for every check imbalanced-learn runs on its own instance of that class."""
    ec = sampler_checks_module(classes)
    theirs = imblearn_classes()
    out = []
    for name, params in INIT_PARAMS:
        for check in ec._yield_sampler_checks(theirs[name](**params)):
            out.append((classes[name](**params), partial(check, name),
                        f"{estimator_id(name, params)}-{check.__name__}"))
    return out


def sklearn_checks(classes: dict[str, type]) -> list[tuple[object, object, str]]:
    """(trainwell instance, check, id) for every scikit-learn check that sklearn runs on imblearn's instance."""
    from sklearn.utils.estimator_checks import estimator_checks_generator

    theirs = imblearn_classes()
    out = []
    for name, params in INIT_PARAMS:
        for _, check in estimator_checks_generator(theirs[name](**params), legacy=True, mark=None):
            out.append((classes[name](**params), check, f"{estimator_id(name, params)}-{_check_id(check)}"))
    return out


def _check_id(check: object) -> str:
    base = check_name(check)
    keywords = getattr(check, "keywords", None) or {}
    if keywords:
        base += "(" + ",".join(f"{k}={v}" for k, v in keywords.items()) + ")"
    return re.sub(r"\s", "", base)


def as_array(x: object) -> np.ndarray:
    return np.asarray(x.toarray() if hasattr(x, "toarray") else x)
