"""A griffe extension for the API reference: read a Google-style ``Example:`` section as ``Examples:``.

The Google style guide and Napoleon accept both titles; griffe reads only the
plural as code (doctest lines become code blocks) and renders the singular as
prose, where ``>>>`` turns into nested quotes.
"""

from __future__ import annotations

import re
from typing import Any

import griffe

_SINGULAR = re.compile(r"^(\s*)Example:[ \t]*$", re.MULTILINE)


class GoogleExample(griffe.Extension):
    """Rename each ``Example:`` section title to ``Examples:`` before the docstring is parsed."""

    def on_object(self, *, obj: griffe.Object, **kwargs: Any) -> None:
        if obj.docstring is not None:
            obj.docstring.value = _SINGULAR.sub(r"\1Examples:", obj.docstring.value)
