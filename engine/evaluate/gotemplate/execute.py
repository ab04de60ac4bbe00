"""Go's text/template execution over the parse tree, with Go's semantics and error messages.

Dot, variables (`$` is the data), field chains on structs (fields, promoted fields and
methods) and maps (by key: a missing key is the missing value, printed `<no value>`), calls
with arguments converted to the parameters' types, pipelines passing the previous value as the
last argument, `if`/`with`/`range` (maps in key order, `else`, `break`, `continue`) and
`template`. An error stops execution:
`template: commit message:1:2: executing "commit message" at <.Foo>: can't evaluate field Foo
in type source.TemplateData`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, NoReturn

from engine.evaluate.gotemplate.error import TemplateError, line_column
from engine.evaluate.gotemplate.funcs import Func, FuncError, FuncMap, Param
from engine.evaluate.gotemplate.gofmt import show, sprint
from engine.evaluate.gotemplate.nodes import (
    Action,
    Bool,
    Branch,
    Break,
    Chain,
    Command,
    Comment,
    Continue,
    Dot,
    Field,
    Identifier,
    Nil,
    Node,
    Number,
    Pipe,
    String,
    TemplateCall,
    Text,
    Variable,
)
from engine.evaluate.gotemplate.values import (
    MISSING,
    GoList,
    GoMap,
    Kind,
    Struct,
    kind_of,
    sort_keys,
    truth,
    type_name,
)

MAX_DEPTH = 100
"""Nested `template` calls allowed (Go allows 100000; Python's stack holds far fewer)."""
_LAZY = frozenset({"and", "or"})


class _Break(Exception):
    pass


class _Continue(Exception):
    pass


@dataclass
class _Var:
    name: str
    value: Any


def execute(text: str, parse_name: str, templates: Mapping[str, tuple[Node, ...]], name: str,
            funcs: FuncMap, builtins: FuncMap, data: Any) -> str:
    """Run template `name` on `data`; `text` and `parse_name` locate errors as Go does."""
    body = templates.get(name)
    if body is None:
        raise TemplateError(f'template: {parse_name}: "{name}" is an incomplete or empty template', 1)
    state = _State(text, parse_name, templates, name, funcs, builtins, [_Var("$", data)])
    state.walk_list(data, body)
    return "".join(state.out)


class _State:
    def __init__(self, text: str, parse_name: str, templates: Mapping[str, tuple[Node, ...]],
                 name: str, funcs: FuncMap, builtins: FuncMap, variables: list[_Var],
                 depth: int = 0, out: list[str] | None = None) -> None:
        self.text = text
        self.parse_name = parse_name
        self.templates = templates
        self.name = name
        self.funcs = funcs
        self.builtins = builtins
        self.vars = variables
        self.depth = depth
        self.out: list[str] = [] if out is None else out
        self.node: Any = None

    # -- errors ------------------------------------------------------------------------------

    def at(self, node: Any) -> None:
        self.node = node

    def errorf(self, message: str) -> NoReturn:
        node = self.node
        if node is None:
            raise TemplateError(f"template: {self.name}: {message}", 1)
        pos = node.pos
        line, column = line_column(self.text, pos)
        go_column = len(self.text[pos - column + 1:pos].encode("utf-8", "surrogatepass"))
        context = str(node)
        where = f"{self.parse_name}:{line}:{go_column}"
        raise TemplateError(f'template: {where}: executing "{self.name}" at <{context}>: {message}',
                            line, column)

    # -- variables -----------------------------------------------------------------------------

    def push(self, name: str, value: Any) -> None:
        self.vars.append(_Var(name, value))

    def set_var(self, name: str, value: Any) -> None:
        for var in reversed(self.vars):
            if var.name == name:
                var.value = value
                return
        self.errorf(f"undefined variable: {name}")

    def var_value(self, name: str) -> Any:
        for var in reversed(self.vars):
            if var.name == name:
                return var.value
        self.errorf(f"undefined variable: {name}")

    # -- walking -------------------------------------------------------------------------------

    def walk_list(self, dot: Any, nodes: tuple[Node, ...]) -> None:
        for node in nodes:
            self.walk(dot, node)

    def walk(self, dot: Any, node: Node) -> None:
        if isinstance(node, Text):
            self.out.append(node.text)
        elif isinstance(node, Action):
            value = self.eval_pipeline(dot, node.pipe)
            if not node.pipe.decl:
                self.at(node)
                self.out.append("<no value>" if value is MISSING else sprint([value]))
        elif isinstance(node, Branch):
            mark = len(self.vars)
            try:
                if node.keyword == "range":
                    self.walk_range(dot, node)
                else:
                    self.walk_if_or_with(dot, node)
            finally:
                del self.vars[mark:]
        elif isinstance(node, Break):
            raise _Break()
        elif isinstance(node, Continue):
            raise _Continue()
        elif isinstance(node, TemplateCall):
            self.walk_template(dot, node)
        elif isinstance(node, Comment):
            pass
        else:
            self.errorf(f"unknown node: {node}")

    def walk_if_or_with(self, dot: Any, node: Branch) -> None:
        value = self.eval_pipeline(dot, node.pipe)
        if truth(value):
            self.walk_list(value if node.keyword == "with" else dot, node.body)
        elif node.else_body is not None:
            self.walk_list(dot, node.else_body)

    def walk_range(self, dot: Any, node: Branch) -> None:
        self.at(node)
        value = self.eval_pipeline(dot, node.pipe)
        mark = len(self.vars)
        kind = kind_of(value)
        if kind is Kind.SLICE:
            pairs: list[tuple[Any, Any]] = list(enumerate(value))
        elif kind is Kind.MAP:
            pairs = [(k, value[k]) for k in sort_keys(value)]
        elif kind is Kind.INT and not isinstance(value, bool):
            pairs = [(i, i) for i in range(value)]
        elif kind in (Kind.INVALID, Kind.NIL):
            pairs = []
        else:
            self.errorf(f"range can't iterate over {show(value)}")
        try:
            for index, element in pairs:
                self._range_vars(node.pipe, index, element)
                try:
                    self.walk_list(element, node.body)
                except _Continue:
                    pass
                finally:
                    del self.vars[mark:]
        except _Break:
            return
        if not pairs and node.else_body is not None:
            self.walk_list(dot, node.else_body)

    def _range_vars(self, pipe: Pipe, index: Any, element: Any) -> None:
        decl = pipe.decl
        if not decl:
            return
        if pipe.is_assign:
            if len(decl) > 1:
                self.set_var(decl[0].idents[0], index)
                self.set_var(decl[1].idents[0], element)
            else:
                self.set_var(decl[0].idents[0], element)
            return
        self.vars[-1].value = element
        if len(decl) > 1:
            self.vars[-2].value = index

    def walk_template(self, dot: Any, node: TemplateCall) -> None:
        self.at(node)
        body = self.templates.get(node.name)
        if body is None:
            self.errorf(f'template "{node.name}" not defined')
        if self.depth >= MAX_DEPTH:
            self.errorf(f"exceeded maximum template depth ({MAX_DEPTH})")
        value = self.eval_pipeline(dot, node.pipe) if node.pipe is not None else MISSING
        inner = _State(self.text, self.parse_name, self.templates, node.name, self.funcs,
                       self.builtins, [_Var("$", value)], self.depth + 1, self.out)
        inner.walk_list(value, body)

    # -- pipelines -----------------------------------------------------------------------------

    def eval_pipeline(self, dot: Any, pipe: Pipe) -> Any:
        self.at(pipe)
        value: Any = MISSING
        for cmd in pipe.cmds:
            value = self.eval_command(dot, cmd, value)
            if value is None:
                value = MISSING  # a nil interface{} result is no value
        for var in pipe.decl:
            if pipe.is_assign:
                self.set_var(var.idents[0], value)
            else:
                self.push(var.idents[0], value)
        return value

    def eval_command(self, dot: Any, cmd: Command, final: Any) -> Any:
        first = cmd.args[0]
        if isinstance(first, Field):
            return self.eval_field_node(dot, first, cmd.args, final)
        if isinstance(first, Chain):
            return self.eval_chain(dot, first, cmd.args, final)
        if isinstance(first, Identifier):
            return self.eval_function(dot, first, cmd, cmd.args, final)
        if isinstance(first, Pipe):
            self.not_a_function(cmd.args, final)
            return self.eval_pipeline(dot, first)
        if isinstance(first, Variable):
            return self.eval_variable(dot, first, cmd.args, final)
        self.at(first)
        self.not_a_function(cmd.args, final)
        if isinstance(first, Bool):
            return first.value
        if isinstance(first, Dot):
            return dot
        if isinstance(first, Nil):
            self.errorf("nil is not a command")
        if isinstance(first, Number):
            return self.ideal_constant(first)
        if isinstance(first, String):
            return first.text
        self.errorf(f"can't evaluate command {first}")

    def not_a_function(self, args: tuple[Node, ...], final: Any) -> None:
        if len(args) > 1 or final is not MISSING:
            self.errorf(f"can't give argument to non-function {args[0]}")

    def ideal_constant(self, number: Number) -> Any:
        self.at(number)
        text = number.text.lstrip("+-")
        if (number.float_value is not None and not number.is_char and not text[:2].lower() == "0x"
                and any(c in number.text for c in ".eEpP")):
            return number.float_value
        if number.int_value is not None:
            if not -(2**63) <= number.int_value < 2**63:
                self.errorf(f"{number.text} overflows int")
            return number.int_value
        self.errorf(f"{number.text} overflows int")

    def eval_field_node(self, dot: Any, field: Field, args: tuple[Node, ...], final: Any) -> Any:
        self.at(field)
        return self.eval_field_chain(dot, dot, field, field.idents, args, final)

    def eval_chain(self, dot: Any, chain: Chain, args: tuple[Node, ...], final: Any) -> Any:
        self.at(chain)
        if isinstance(chain.node, Nil):
            self.errorf(f"indirection through explicit nil in {chain}")
        value = self.eval_arg(dot, Param.VALUE, chain.node)
        return self.eval_field_chain(dot, value, chain, chain.fields, args, final)

    def eval_variable(self, dot: Any, var: Variable, args: tuple[Node, ...], final: Any) -> Any:
        self.at(var)
        value = self.var_value(var.idents[0])
        if len(var.idents) == 1:
            self.not_a_function(args, final)
            return value
        return self.eval_field_chain(dot, value, var, var.idents[1:], args, final)

    def eval_field_chain(self, dot: Any, receiver: Any, node: Any, idents: tuple[str, ...],
                         args: tuple[Node, ...], final: Any) -> Any:
        for ident in idents[:-1]:
            receiver = self.eval_field(dot, ident, node, (), MISSING, receiver)
        return self.eval_field(dot, idents[-1], node, args, final, receiver)

    def eval_field(self, dot: Any, name: str, node: Any, args: tuple[Node, ...], final: Any,
                   receiver: Any) -> Any:
        if receiver is MISSING:
            return MISSING
        if receiver is None:
            self.errorf(f"nil pointer evaluating interface {{}}.{name}")
        if isinstance(receiver, Struct):
            method = receiver.method(name)
            if method is not None:
                return self.eval_call(dot, _method_func(method), False, node, name, args, final)
        has_args = len(args) > 1 or final is not MISSING
        if isinstance(receiver, Struct):
            found, value = receiver.field_value(name)
            if found:
                if has_args:
                    self.errorf(f"{name} has arguments but cannot be invoked as function")
                return value
        elif isinstance(receiver, dict) and (not isinstance(receiver, GoMap)
                                             or receiver.key_type == "string"):
            if has_args:
                self.errorf(f"{name} is not a method but has arguments")
            return receiver.get(name, MISSING)
        self.errorf(f"can't evaluate field {name} in type {type_name(receiver)}")

    # -- calls ---------------------------------------------------------------------------------

    def eval_function(self, dot: Any, ident: Identifier, cmd: Command, args: tuple[Node, ...],
                      final: Any) -> Any:
        self.at(ident)
        func = self.funcs.get(ident.name)
        builtin = False
        if func is None:
            func = self.builtins.get(ident.name)
            builtin = True
        if func is None:
            self.errorf(f'"{ident.name}" is not a defined function')
        return self.eval_call(dot, func, builtin, cmd, ident.name, args, final)

    def eval_call(self, dot: Any, func: Func, builtin: bool, node: Any, name: str,
                  args: tuple[Node, ...], final: Any) -> Any:
        args = args[1:]
        params = func.params
        count = len(args) + (final is not MISSING)
        fixed = len(args)
        if func.variadic:
            fixed = len(params) - 1
            if count < fixed:
                self.errorf(f"wrong number of args for {name}: want at least {fixed} got {len(args)}")
        elif count != len(params):
            self.errorf(f"wrong number of args for {name}: want {len(params)} got {count}")
        if builtin and name in _LAZY:
            return self._and_or(dot, name, args, final)
        argv: list[Any] = []
        for i, arg in enumerate(args):
            param = params[i] if i < fixed else params[-1]
            argv.append(self.eval_arg(dot, param, arg))
        if final is not MISSING:
            param = params[count - 1] if (not func.variadic or count - 1 < fixed) else params[-1]
            argv.append(self.validate(final, param))
        try:
            result = func.body(*argv)
        except FuncError as err:
            self.at(node)
            self.errorf(f"error calling {name}: {err}")
        except RecursionError:
            self.at(node)
            self.errorf(f"error calling {name}: nesting too deep")
        return result

    def _and_or(self, dot: Any, name: str, args: tuple[Node, ...], final: Any) -> Any:
        value: Any = MISSING
        for arg in args:
            value = self.eval_arg(dot, Param.VALUE, arg)
            if truth(value) == (name == "or"):
                return value
        if final is not MISSING:
            value = final
        return value

    def eval_arg(self, dot: Any, param: Param, node: Node) -> Any:
        self.at(node)
        if isinstance(node, Dot):
            return self.validate(dot, param)
        if isinstance(node, Nil):
            if param in (Param.ANY, Param.VALUE, Param.DICT, Param.LIST):
                return None
            self.errorf(f"cannot assign nil to {param.value}")
        if isinstance(node, Field):
            return self.validate(self.eval_field_node(dot, node, (node,), MISSING), param)
        if isinstance(node, Variable):
            return self.validate(self.eval_variable(dot, node, (), MISSING), param)
        if isinstance(node, Pipe):
            return self.validate(self.eval_pipeline(dot, node), param)
        if isinstance(node, Identifier):
            func = self.funcs.get(node.name) or self.builtins.get(node.name)
            builtin = node.name not in self.funcs
            if func is None:
                self.errorf(f'"{node.name}" is not a defined function')
            return self.validate(self.eval_call(dot, func, builtin, node, node.name, (node,), MISSING),
                                 param)
        if isinstance(node, Chain):
            return self.validate(self.eval_chain(dot, node, (), MISSING), param)
        return self._constant(param, node)

    def _constant(self, param: Param, node: Node) -> Any:
        if param is Param.BOOL:
            if isinstance(node, Bool):
                return node.value
            self.errorf(f"expected bool; found {node}")
        if param is Param.FLOAT:
            if isinstance(node, Number) and node.float_value is not None:
                return node.float_value
            self.errorf(f"expected float; found {node}")
        if param is Param.INT:
            if isinstance(node, Number) and node.int_value is not None:
                if not -(2**63) <= node.int_value < 2**63:
                    self.errorf(f"{node.text} overflows int")
                return node.int_value
            self.errorf(f"expected integer; found {node}")
        if param is Param.STRING:
            if isinstance(node, String):
                return node.text
            self.errorf(f"expected string; found {node}")
        if param in (Param.ANY, Param.VALUE):
            if isinstance(node, Bool):
                return node.value
            if isinstance(node, Number):
                return self.ideal_constant(node)
            if isinstance(node, String):
                return node.text
        self.errorf(f"can't handle {node} for arg of type {param.value}")

    def validate(self, value: Any, param: Param) -> Any:
        if value is MISSING:
            if param is Param.VALUE:
                return MISSING
            if param in (Param.ANY, Param.DICT, Param.LIST):
                return None
            self.errorf(f"invalid value; expected {param.value}")
        if param in (Param.ANY, Param.VALUE):
            return value
        if param is Param.DICT and value is None:
            return None
        if _assignable(value, param):
            return value
        self.errorf(f"wrong type for value; expected {param.value}; got {type_name(value)}")


def _assignable(value: Any, param: Param) -> bool:
    if param is Param.STRING:
        return isinstance(value, str)
    if param is Param.INT:
        return isinstance(value, int) and not isinstance(value, bool)
    if param is Param.FLOAT:
        return isinstance(value, float)
    if param is Param.BOOL:
        return isinstance(value, bool)
    if param is Param.DICT:
        return isinstance(value, dict) and not isinstance(value, GoMap)
    if param is Param.LIST:
        return isinstance(value, list) and not isinstance(value, GoList)
    return True


def _method_func(method: Any) -> Func:
    return Func(method, ())
