"""How a template function is declared: its Python body and the Go types of its parameters.

Go converts each argument to its parameter's type before the call, and that is where most
template errors come from (`expected string; found 3`, `wrong type for value; expected
string; got int`, `wrong number of args for upper: want 1 got 2`), so every function states
its parameters here. A body raises `FuncError` for what Go returns as an error or panics with;
the executor reports it as `error calling NAME: ...`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any


class Param(StrEnum):
    """A parameter's Go type, as far as argument conversion tells them apart."""

    STRING = "string"
    INT = "int"
    FLOAT = "float64"
    BOOL = "bool"
    ANY = "interface {}"
    VALUE = "reflect.Value"  # Go's builtins: the argument as it is, even the missing value
    DICT = "map[string]interface {}"
    LIST = "[]interface {}"


class FuncError(Exception):
    """What a function returns as its error (or panics with)."""


@dataclass(frozen=True)
class Func:
    body: Callable[..., Any]
    params: tuple[Param, ...]
    variadic: bool = False  # the last parameter repeats


FuncMap = Mapping[str, Func]


def fn(*params: Param, variadic: bool = False) -> Callable[[Callable[..., Any]], Func]:
    """Declare a function's parameters: `@fn(Param.STRING)` over its body."""

    def wrap(body: Callable[..., Any]) -> Func:
        return Func(body, params, variadic)

    return wrap
