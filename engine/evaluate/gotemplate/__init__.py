"""Go's text/template in Python, with the functions Flux's image-automation-controller gives
commit message templates (Go's builtins and sprig's "hermetic" set).

`parse(text, name)` reads a template (and its `define`s and `block`s) and checks what Go checks
when parsing; `Template.execute(data)` runs it. Both raise `TemplateError` with Go's wording
and a line and column inside the template. Data is built from `values` types: `Struct`,
`GoList`, `GoMap`, or plain Python str/int/float/bool/list/dict/None.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from engine.evaluate.gotemplate.builtins import BUILTINS
from engine.evaluate.gotemplate.error import TemplateError
from engine.evaluate.gotemplate.execute import execute
from engine.evaluate.gotemplate.funcs import FuncMap
from engine.evaluate.gotemplate.nodes import Node
from engine.evaluate.gotemplate.parse import parse as _parse
from engine.evaluate.gotemplate.sprig import SPRIG, UNSUPPORTED

__all__ = ["Template", "TemplateError", "parse"]


@dataclass(frozen=True)
class Template:
    """A parsed template: its text, its name and every template it defines."""

    text: str
    name: str
    templates: dict[str, tuple[Node, ...]]
    funcs: FuncMap

    def execute(self, data: Any) -> str:
        try:
            return execute(self.text, self.name, self.templates, self.name, self.funcs, BUILTINS, data)
        except RecursionError:
            raise TemplateError(f"template: {self.name}: nested too deeply", 1) from None


def parse(text: str, name: str = "commit message") -> Template:
    """Parse as Flux does: `template.New(name).Funcs(sprig.HermeticTxtFuncMap()).Parse(text)`."""
    def known(function: str) -> bool:
        return function in SPRIG or function in BUILTINS

    try:
        templates = _parse(text, name, known, UNSUPPORTED)
    except RecursionError:
        raise TemplateError(f"template: {name}: nested too deeply", 1) from None
    return Template(text, name, templates, SPRIG)
