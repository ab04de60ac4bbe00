"""Go's text/template parser: tokens -> a tree per template (`define` and `block` add more).

It checks what Go checks at parse time: every function named exists, every variable is
declared, `break`/`continue` stand inside a `range`, pipelines are not empty and their later
stages are not constants. Errors read as Go's: `template: commit message:3: function "foo"
not defined`.
"""

from __future__ import annotations

from collections.abc import Callable, Collection

from engine.evaluate.goparse import ParseFloatError, parse_float
from engine.evaluate.gotemplate.error import TemplateError, line_column
from engine.evaluate.gotemplate.lex import Lexer, Tok, Token
from engine.evaluate.gotemplate.literals import parse_int, unquote_go
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
from engine.rules.goquote import go_quote



class _End:
    def __init__(self, pos: int) -> None:
        self.pos = pos

    def __str__(self) -> str:
        return "{{end}}"


class _Else:
    def __init__(self, pos: int) -> None:
        self.pos = pos

    def __str__(self) -> str:
        return "{{else}}"


Templates = dict[str, tuple[Node, ...]]


def parse(text: str, name: str, has_function: Callable[[str], bool],
          unsupported: Collection[str] = ()) -> Templates:
    """Every template the text defines, by name; `name` is the text's own (top) template.

    `unsupported` names functions Go would have that this engine does not implement: naming
    one is a parse error that says so, not "not defined".
    """
    return _Parser(text, name, has_function, frozenset(unsupported)).run()


class _Parser:
    def __init__(self, text: str, name: str, has_function: Callable[[str], bool],
                 unsupported: frozenset[str]) -> None:
        self.text = text
        self.name = name
        self.has_function = has_function
        self.unsupported = unsupported
        self.tokens = Lexer(text).tokens()
        self.i = 0
        self.current = self.tokens[0]
        self.vars: list[str] = ["$"]
        self.range_depth = 0
        self.action_line = 0
        self.templates: Templates = {}

    # -- tokens ------------------------------------------------------------------------------

    def next(self) -> Token:
        """The next token; past the end, the last one (EOF or ERROR) again, as Go's lexer does."""
        token = self.tokens[min(self.i, len(self.tokens) - 1)]
        self.i += 1
        self.current = token
        return token

    def backup(self, count: int = 1) -> None:
        self.i -= count

    def peek(self) -> Token:
        return self.tokens[min(self.i, len(self.tokens) - 1)]

    def next_non_space(self) -> Token:
        token = self.next()
        while token.kind is Tok.SPACE:
            token = self.next()
        return token

    def peek_non_space(self) -> Token:
        token = self.next_non_space()
        self.backup()
        return token

    def errorf(self, message: str, pos: int | None = None) -> TemplateError:
        at = self.current.pos if pos is None else pos
        line, column = line_column(self.text, at)
        return TemplateError(f"template: {self.name}:{self.current.line}: {message}", line, column)

    def unexpected(self, token: Token, context: str) -> TemplateError:
        if token.kind is Tok.ERROR:
            extra = ""
            if self.action_line and self.action_line != token.line:
                extra = f" in action started at {self.name}:{self.action_line}"
                if token.text.endswith(" action"):
                    extra = extra[len(" in action"):]
            return self.errorf(f"{token}{extra}")
        return self.errorf(f"unexpected {token} in {context}")

    def expect(self, kind: Tok, context: str) -> Token:
        token = self.next_non_space()
        if token.kind is not kind:
            raise self.unexpected(token, context)
        return token

    # -- structure -----------------------------------------------------------------------------

    def run(self) -> Templates:
        root: list[Node] = []
        while self.peek().kind is not Tok.EOF:
            if self.peek().kind is Tok.LEFT_DELIM:
                self.next()
                if self.next_non_space().kind is Tok.DEFINE:
                    self.definition()
                    continue
                self.i = self._left_delim_index()
            node = self.text_or_action()
            if isinstance(node, (_End, _Else)):
                raise self.errorf(f"unexpected {node}")
            root.append(node)
        self._add(self.name, tuple(root))
        return self.templates

    def _left_delim_index(self) -> int:
        j = self.i - 1
        while self.tokens[j].kind is not Tok.LEFT_DELIM:
            j -= 1
        return j

    def _add(self, name: str, body: tuple[Node, ...]) -> None:
        existing = self.templates.get(name)
        if existing is not None and _has_content(existing) and _has_content(body):
            raise self.errorf(f"template: multiple definition of template {go_quote(name)}")
        if existing is None or _has_content(body):
            self.templates[name] = body

    def definition(self) -> None:
        context = "define clause"
        token = self.next_non_space()
        if token.kind not in (Tok.STRING, Tok.RAW_STRING):
            raise self.unexpected(token, context)
        name = self.unquote(token)
        self.expect(Tok.RIGHT_DELIM, context)
        saved = self.vars
        self.vars = ["$"]
        body, end = self.item_list()
        self.vars = saved
        if not isinstance(end, _End):
            raise self.errorf(f"unexpected {end} in {context}")
        self._add(name, body)

    def item_list(self) -> tuple[tuple[Node, ...], _End | _Else]:
        items: list[Node] = []
        while self.peek_non_space().kind is not Tok.EOF:
            node = self.text_or_action()
            if isinstance(node, (_End, _Else)):
                return tuple(items), node
            items.append(node)
        raise self.errorf("unexpected EOF")

    def text_or_action(self) -> Node | _End | _Else:
        token = self.next_non_space()
        if token.kind is Tok.TEXT:
            return Text(token.pos, token.text)
        if token.kind is Tok.LEFT_DELIM:
            self.action_line = token.line
            try:
                return self.action()
            finally:
                self.action_line = 0
        if token.kind is Tok.COMMENT:
            return Comment(token.pos, token.text)
        raise self.unexpected(token, "input")

    def action(self) -> Node | _End | _Else:
        token = self.next_non_space()
        kind = token.kind
        if kind is Tok.BLOCK:
            return self.block_control()
        if kind in (Tok.BREAK, Tok.CONTINUE):
            return self.loop_control(token)
        if kind is Tok.ELSE:
            return self.else_control()
        if kind is Tok.END:
            return _End(self.expect(Tok.RIGHT_DELIM, "end").pos)
        if kind in (Tok.IF, Tok.RANGE, Tok.WITH):
            return self.branch(kind.value)
        if kind is Tok.TEMPLATE:
            return self.template_control()
        self.backup()
        start = self.peek()
        return Action(start.pos, start.line, self.pipeline("command", Tok.RIGHT_DELIM))

    def loop_control(self, keyword: Token) -> Node:
        token = self.next_non_space()
        if token.kind is not Tok.RIGHT_DELIM:
            raise self.unexpected(token, "{{" + keyword.text + "}}")
        if self.range_depth == 0:
            raise self.errorf("{{" + keyword.text + "}} outside {{range}}")
        if keyword.kind is Tok.BREAK:
            return Break(keyword.pos, keyword.line)
        return Continue(keyword.pos, keyword.line)

    def else_control(self) -> _Else:
        peek = self.peek_non_space()
        if peek.kind in (Tok.IF, Tok.WITH):
            return _Else(peek.pos)
        return _Else(self.expect(Tok.RIGHT_DELIM, "else").pos)

    def branch(self, context: str) -> Branch:
        saved = len(self.vars)
        try:
            pipe = self.pipeline(context, Tok.RIGHT_DELIM)
            if context == "range":
                self.range_depth += 1
            body, end = self.item_list()
            if context == "range":
                self.range_depth -= 1
            else_body: tuple[Node, ...] | None = None
            if isinstance(end, _Else):
                nested = self.peek().kind
                if context == "if" and nested is Tok.IF or context == "with" and nested is Tok.WITH:
                    self.next()
                    else_body = (self.branch(context),)
                else:
                    else_body, end = self.item_list()
                    if not isinstance(end, _End):
                        raise self.errorf(f"expected end; found {end}")
            return Branch(context, pipe.pos, pipe.line, pipe, body, else_body)
        finally:
            del self.vars[saved:]

    def template_control(self) -> TemplateCall:
        context = "template clause"
        token = self.next_non_space()
        name = self.template_name(token, context)
        pipe = None
        if self.next_non_space().kind is not Tok.RIGHT_DELIM:
            self.backup()
            pipe = self.pipeline(context, Tok.RIGHT_DELIM)
        return TemplateCall(token.pos, token.line, name, pipe)

    def block_control(self) -> TemplateCall:
        context = "block clause"
        token = self.next_non_space()
        name = self.template_name(token, context)
        pipe = self.pipeline(context, Tok.RIGHT_DELIM)
        saved_vars, saved_depth = self.vars, self.range_depth
        self.vars, self.range_depth = ["$"], 0
        body, end = self.item_list()
        self.vars, self.range_depth = saved_vars, saved_depth
        if not isinstance(end, _End):
            raise self.errorf(f"unexpected {end} in {context}")
        self._add(name, body)
        return TemplateCall(token.pos, token.line, name, pipe)

    def template_name(self, token: Token, context: str) -> str:
        if token.kind in (Tok.STRING, Tok.RAW_STRING):
            return self.unquote(token)
        raise self.unexpected(token, context)

    # -- pipelines -----------------------------------------------------------------------------

    def pipeline(self, context: str, end: Tok) -> Pipe:
        start = self.peek_non_space()
        decl: list[Variable] = []
        is_assign = False
        while True:
            save = self.i
            if self.peek_non_space().kind is not Tok.VARIABLE:
                break
            var = self.next_non_space()
            following = self.peek_non_space()
            if following.kind in (Tok.ASSIGN, Tok.DECLARE):
                is_assign = following.kind is Tok.ASSIGN
                self.next_non_space()
                decl.append(Variable(var.pos, (var.text,)))
                self.vars.append(var.text)
                break
            if following.kind is Tok.CHAR and following.text == ",":
                self.next_non_space()
                decl.append(Variable(var.pos, (var.text,)))
                self.vars.append(var.text)
                if context == "range" and len(decl) < 2:
                    if self.peek_non_space().kind in (Tok.VARIABLE, Tok.RIGHT_DELIM, Tok.RIGHT_PAREN):
                        continue
                    raise self.errorf("range can only initialize variables")
                raise self.errorf(f"too many declarations in {context}")
            self.i = save
            break
        cmds: list[Command] = []
        while True:
            token = self.next_non_space()
            if token.kind is end:
                self.check_pipeline(cmds, context)
                return Pipe(start.pos, start.line, tuple(decl), is_assign, tuple(cmds))
            if token.kind in (Tok.BOOL, Tok.CHAR_CONSTANT, Tok.DOT, Tok.FIELD, Tok.IDENTIFIER,
                              Tok.NUMBER, Tok.NIL, Tok.RAW_STRING, Tok.STRING, Tok.VARIABLE,
                              Tok.LEFT_PAREN):
                self.backup()
                cmds.append(self.command())
            else:
                raise self.unexpected(token, context)

    def check_pipeline(self, cmds: list[Command], context: str) -> None:
        if not cmds:
            raise self.errorf(f"missing value for {context}")
        for i, cmd in enumerate(cmds[1:], start=2):
            if isinstance(cmd.args[0], (Bool, Dot, Nil, Number, String)):
                raise self.errorf(f"non executable command in pipeline stage {i}")

    def command(self) -> Command:
        start = self.peek_non_space()
        args: list[Node] = []
        while True:
            self.peek_non_space()
            operand = self.operand()
            if operand is not None:
                args.append(operand)
            token = self.next()
            if token.kind is Tok.SPACE:
                continue
            if token.kind in (Tok.RIGHT_DELIM, Tok.RIGHT_PAREN):
                self.backup()
            elif token.kind is not Tok.PIPE:
                raise self.unexpected(token, "operand")
            break
        if not args:
            raise self.errorf("empty command")
        return Command(start.pos, tuple(args))

    def operand(self) -> Node | None:
        node = self.term()
        if node is None:
            return None
        if self.peek().kind is Tok.FIELD:
            chain_pos = self.peek().pos
            fields: list[str] = []
            while self.peek().kind is Tok.FIELD:
                fields.append(self.next().text[1:])
            if isinstance(node, Field):
                return Field(chain_pos, node.idents + tuple(fields))
            if isinstance(node, Variable):
                return Variable(chain_pos, node.idents + tuple(fields))
            if isinstance(node, (Bool, String, Number, Nil, Dot)):
                raise self.errorf(f"unexpected . after term {go_quote(str(node))}")
            return Chain(chain_pos, node, tuple(fields))
        return node

    def term(self) -> Node | None:
        token = self.next_non_space()
        kind = token.kind
        if kind is Tok.IDENTIFIER:
            if token.text in self.unsupported:
                raise self.errorf(f"function {go_quote(token.text)} is one of Flux's (sprig) "
                                  "template functions that gitward does not implement")
            if not self.has_function(token.text):
                raise self.errorf(f"function {go_quote(token.text)} not defined")
            return Identifier(token.pos, token.text)
        if kind is Tok.DOT:
            return Dot(token.pos)
        if kind is Tok.NIL:
            return Nil(token.pos)
        if kind is Tok.VARIABLE:
            if token.text not in self.vars:
                raise self.errorf(f"undefined variable {go_quote(token.text)}")
            return Variable(token.pos, (token.text,))
        if kind is Tok.FIELD:
            return Field(token.pos, (token.text[1:],))
        if kind is Tok.BOOL:
            return Bool(token.pos, token.text == "true")
        if kind in (Tok.NUMBER, Tok.CHAR_CONSTANT):
            return self.number(token)
        if kind is Tok.LEFT_PAREN:
            return self.pipeline("parenthesized pipeline", Tok.RIGHT_PAREN)
        if kind in (Tok.STRING, Tok.RAW_STRING):
            return String(token.pos, token.text, self.unquote(token))
        self.backup()
        return None

    # -- literals ------------------------------------------------------------------------------

    def unquote(self, token: Token) -> str:
        if token.kind is Tok.RAW_STRING:
            return token.text[1:-1].replace("\r", "")
        try:
            return unquote_go(token.text[1:-1], '"')
        except ValueError:
            raise self.errorf("invalid syntax") from None

    def number(self, token: Token) -> Number:
        text = token.text
        if token.kind is Tok.CHAR_CONSTANT:
            try:
                chars = unquote_go(text[1:-1], "'")
            except ValueError:
                raise self.errorf(f"malformed character constant: {text}") from None
            if len(chars) != 1:
                raise self.errorf(f"malformed character constant: {text}")
            return Number(token.pos, text, ord(chars), float(ord(chars)), is_char=True)
        if text.endswith("i"):
            raise self.errorf(f"complex numbers are not supported: {go_quote(text)}")
        as_int = parse_int(text)
        if as_int is not None:
            return Number(token.pos, text, as_int, float(as_int))
        try:
            value = parse_float(text.lstrip("+"))
        except (ParseFloatError, ValueError):
            raise self.errorf(f"illegal number syntax: {go_quote(text)}") from None
        if not any(c in text for c in ".eEpP"):
            raise self.errorf(f"integer overflow: {go_quote(text)}")
        exact = int(value) if value == int(value) and -(2**63) <= value < 2**63 else None
        return Number(token.pos, text, exact, value)


def _has_content(body: tuple[Node, ...]) -> bool:
    """Go lets an empty definition be replaced (a `block`'s default by a `define`)."""
    return any(not (isinstance(n, Text) and not n.text.strip()) and not isinstance(n, Comment)
               for n in body)
