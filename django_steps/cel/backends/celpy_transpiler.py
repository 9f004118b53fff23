"""cel-python conditions transpiled to Python once, with nothing from the text in the code.

Internal to the celpy backend (:mod:`django_steps.cel.backends.celpy`).

cel-python 0.5's ``CompiledRunner`` turns a parse tree into Python source, compiles it
and ``exec()``s it on every evaluation, about five times faster than its interpreter.
As shipped it cannot be used here:

- each evaluation writes its activation and result into the globals of the
  ``celpy.evaluation`` module, and its lambdas look each other up there: two threads
  evaluating at once read each other's context;
- it refers to functions by module and qualified name, so the functions given to
  ``program()`` (the operators of :mod:`.celpy_functions`) do not compile;
- it reads a variable as an attribute of the ``Activation`` object, so a context key
  named ``package``, ``functions``, ``identifiers``, ``get`` or ``clone`` gives the
  activation's own attribute instead of the value;
- it copies number literals into the source (``007`` is valid CEL, a ``SyntaxError``
  in Python), ``has()`` gives a Python ``bool``, and errors inside macros, ``?:`` and
  method calls are absorbed where the interpreter reports them, or the reverse;
- it needs the process-wide parser to build its own tree class, which depends on
  whoever created the parser first.

:func:`transpile` keeps cel-python's code generation for the operators and logic,
and replaces every part that would copy text of the condition into the source:
identifiers, field names and macro variables become ``repr()`` strings, literals and
functions become indexes into tables built at compile time. The source is then
checked node by node against the few constructs the generator emits (any other name,
attribute, string or statement refuses it), compiled once into a function, and each
evaluation calls that function with the activation of its context: one per context
(a :class:`PreparedContext` keeps it for the other conditions of the same change),
which the code only reads.

The code evaluates as cel-python's interpreter does with the same functions (the
operators and macros of :mod:`.celpy_functions`, which follow the CEL specification
where cel-python's own do not): each operator, function, field selection, ``?:`` and
macro turns the same Python exceptions into the same CEL error values, and an
exception the interpreter lets out of the whole evaluation leaves the generated code
too (wrapped in :class:`_Escape`, which cel-python's ``result()`` does not catch).
Conditions using constructs outside that set (protobuf message literals, leading-dot
names, cel-python's non-standard ``min`` and ``reduce``, ``has()`` or ``dyn()``
without exactly one argument, a macro whose variable is not a plain name)
return ``None`` here and are run by the interpreter.
"""

from __future__ import annotations

import ast as python_ast
import re
from collections.abc import Callable, Mapping
from string import Template
from textwrap import dedent
from types import SimpleNamespace
from typing import Any, cast

import celpy
import celpy.evaluation
import lark
from celpy import celtypes
from celpy.evaluation import (
    Activation,
    CELEvalError,
    Evaluator,
    NameContainer,
    Phase1Transpiler,
    Phase2Transpiler,
    Referent,
    Transpiler,
    TranspilerTree,
)

from .celpy_functions import no_overload, run_macro

#: cel-python's identifier token (its grammar's ``IDENT``).
_IDENT = re.compile(r"[_a-zA-Z][_a-zA-Z0-9]*\Z")

#: Macros the generated code runs with :func:`_comprehension`.
_MACROS = frozenset({"map", "filter", "all", "exists", "exists_one"})

#: Nodes whose code the generator below does not produce; such conditions are interpreted.
_INTERPRETED_NODES = frozenset({"member_object", "dot_ident", "dot_ident_arg"})

#: Each operator's label and how CEL writes it (in "no such overload" messages).
OPERATOR_SYMBOLS = {
    "_||_": "||",
    "_&&_": "&&",
    "_<_": "<",
    "_<=_": "<=",
    "_>_": ">",
    "_>=_": ">=",
    "_==_": "==",
    "_!=_": "!=",
    "_in_": "in",
    "_+_": "+",
    "_-_": "-",
    "_*_": "*",
    "_/_": "/",
    "_%_": "%",
    "!_": "!",
    "-_": "-",
    "_[_]": "_[_]",
}

#: What the interpreter's node for each operator turns into an error value.
_CAUGHT: dict[str, tuple[type[Exception], ...]] = {
    **dict.fromkeys(("_||_", "_&&_"), (TypeError,)),
    **dict.fromkeys(("_<_", "_<=_", "_>_", "_>=_", "_==_", "_!=_", "_in_"), (TypeError,)),
    **dict.fromkeys(("_+_", "_-_"), (TypeError, ValueError, OverflowError)),
    **dict.fromkeys(
        ("_*_", "_/_", "_%_"), (TypeError, ZeroDivisionError, ValueError, OverflowError)
    ),
    **dict.fromkeys(("!_", "-_"), (TypeError, ValueError)),
    "_[_]": (TypeError, KeyError, IndexError),
}
_MESSAGES: dict[type[Exception], str] = {
    ZeroDivisionError: "modulus or divide by zero",
    ValueError: "return error for overflow",
    OverflowError: "return error for overflow",
    KeyError: "no such key",
    IndexError: "invalid_argument",
}

_HELPER_NAMES = frozenset(
    {
        "celpy",
        "_functions",
        "_literals",
        "_variable",
        "_select",
        "_list",
        "_map",
        "_has",
        "_conditional",
        "_comprehension",
    }
)
_LOCAL_NAME = re.compile(r"(?:ex_[0-9]+(?:_[a-z])?|activation|base_activation|CEL)\Z")
_ASSIGNED_NAME = re.compile(r"(?:ex_[0-9]+(?:_[a-z])?|CEL)\Z")
_ATTRIBUTES = {
    ("celpy", "evaluation"): {"result"},
}
_NODE_TYPES = (
    python_ast.Module,
    python_ast.FunctionDef,
    python_ast.arguments,
    python_ast.arg,
    python_ast.Assign,
    python_ast.Return,
    python_ast.Lambda,
    python_ast.Call,
    python_ast.Name,
    python_ast.Attribute,
    python_ast.Subscript,
    python_ast.Constant,
    python_ast.List,
    python_ast.Tuple,
    python_ast.Load,
    python_ast.Store,
)


class UnsafeSourceError(ValueError):
    """The generated source holds a construct outside what the generator may emit."""


class _Escape(Exception):
    """An exception the interpreter would let out of the whole evaluation.

    cel-python's ``result()`` (used by the generated ``||``, ``&&`` and ``has()``)
    turns ``TypeError``, ``KeyError`` and others into error values; wrapped in this
    class they pass through it, and :meth:`TranspiledProgram.evaluate` re-raises them.
    """

    def __init__(self, error: Exception) -> None:
        super().__init__(error)
        self.error = error


class PreparedContext(dict[str, Any]):
    """A converted context that keeps the activation the first condition built from it.

    The conditions tried for one change all read the same context, so the first
    transpiled condition builds the activation (the environment's annotations, the
    functions and the context's values) and the others reuse it. That is safe because
    nothing changes an activation once built: the generated code and its helpers only
    read it, and a macro binds its variable in a clone. A prepared context belongs to
    one change, evaluated in one thread; the activation is not part of its value.
    """

    __slots__ = ("activation", "sizes")

    def __init__(self, values: Mapping[str, Any], sizes: Mapping[str, int] | None = None) -> None:
        super().__init__(values)
        #: ``(environment, functions, activation)`` once a condition has built it.
        self.activation: tuple[celpy.Environment, Any, Activation] | None = None
        #: Each top-level value's size, as the context converter counted it.
        self.sizes: Mapping[str, int] = {} if sizes is None else sizes


class TranspiledProgram:
    """A condition compiled to a Python function; :meth:`evaluate` is thread-safe.

    The function never sees shared mutable state: each context gets an activation of
    its own (kept by a :class:`PreparedContext` for the other conditions of the same
    change, which only read it), and the code's own names are locals of each call.
    """

    def __init__(
        self,
        function: Callable[[Activation], Any],
        environment: celpy.Environment,
        functions: Mapping[str, Callable[..., Any]] | None,
        new_activation: Callable[[], Activation],
        source: str,
    ) -> None:
        self._function = function
        self._environment = environment
        self._functions = functions
        self._new_activation = new_activation
        self._base = new_activation()
        self.source = source

    def evaluate(self, context: Mapping[str, Any]) -> Any:
        """The condition's value; raises ``CELEvalError`` (or what the interpreter would)."""
        if isinstance(context, PreparedContext):
            cached = context.activation
            if (
                cached is not None
                and cached[0] is self._environment
                and cached[1] is self._functions
            ):
                activation = cached[2]
            else:
                activation = self._activation(context)
                # Programs of one environment and functions build equal activations.
                context.activation = (self._environment, self._functions, activation)
        else:
            activation = self._activation(context)
        try:
            value = self._function(activation)
        except _Escape as escape:
            raise escape.error from None
        if isinstance(value, CELEvalError):
            # A copy: the value may be an error kept in the literal table for every call.
            raise CELEvalError(*value.args)
        return value

    def _activation(self, context: Mapping[str, Any]) -> Activation:
        """A new activation holding ``context``; raises what loading the values raises."""
        if any("." in name for name in context):
            # A dotted name is loaded into the package containers, which a clone
            # shares with the base activation: build a whole new one instead.
            activation = self._new_activation()
        else:
            activation = _clone(self._base)
        if context:
            activation.identifiers.load_values(context)
        return activation


def transpile(
    environment: celpy.Environment,
    tree: lark.Tree,
    functions: Mapping[str, Callable[..., Any]] | None = None,
) -> TranspiledProgram | None:
    """Compile a parse tree to a :class:`TranspiledProgram`, or ``None`` to interpret it.

    ``None`` means the condition uses a construct left to the interpreter; the
    caller then builds cel-python's ``InterpretedRunner``. ``tree`` is not modified.
    Raises :class:`UnsafeSourceError` if the generated code fails the source check,
    and ``SyntaxError`` or ``RecursionError`` if Python cannot compile it.
    """
    if not _transpilable(tree):
        return None

    def new_activation() -> Activation:
        return Activation(
            package=environment.package,
            annotations=environment.annotations,
            functions=functions,
        )

    copy = _transpiler_tree(tree)
    facade = Transpiler(ast=copy, activation=new_activation())
    generator = _Phase1(facade)
    generator.visit(copy)
    phase_2 = Phase2Transpiler(facade)
    phase_2.visit(copy)
    body = "\n".join("    " + line for line in phase_2.statements(copy) if line.strip())
    source = f"def condition(base_activation):\n{body}\n    return CEL\n"
    _check_source(source)
    namespace: dict[str, Any] = {
        "__builtins__": {},
        "celpy": _CELPY,
        "_functions": tuple(generator.function_table),
        "_literals": tuple(generator.literal_table),
        "_variable": _variable,
        "_select": _select,
        "_list": _list,
        "_map": _map,
        "_has": _has,
        "_conditional": _conditional,
        "_comprehension": _comprehension,
    }
    exec(compile(source, "<cel condition>", "exec"), namespace)
    return TranspiledProgram(namespace["condition"], environment, functions, new_activation, source)


def _check_source(source: str) -> None:
    """Refuse source with any node, name, attribute or constant the generator never emits.

    This holds whatever text the condition had: the only code that can run is one
    function of lambdas calling the table entries, the helpers of this module and
    cel-python's ``result()``, on the activation, table entries and identifier strings.
    """
    module = python_ast.parse(source)
    definitions = [
        node for node in python_ast.walk(module) if isinstance(node, python_ast.FunctionDef)
    ]
    if module.body != definitions or len(definitions) != 1:
        raise UnsafeSourceError("expected one function definition")
    for node in python_ast.walk(module):
        if not isinstance(node, _NODE_TYPES):
            raise UnsafeSourceError(f"unexpected {type(node).__name__}")
        if isinstance(node, python_ast.Name):
            if isinstance(node.ctx, python_ast.Store):
                if not _ASSIGNED_NAME.match(node.id):
                    raise UnsafeSourceError(f"unexpected assignment to {node.id!r}")
            elif node.id not in _HELPER_NAMES and not _LOCAL_NAME.match(node.id):
                raise UnsafeSourceError(f"unexpected name {node.id!r}")
        elif isinstance(node, python_ast.arg):
            if node.arg not in ("activation", "base_activation"):
                raise UnsafeSourceError(f"unexpected parameter {node.arg!r}")
        elif isinstance(node, python_ast.Call):
            if node.keywords or not isinstance(
                node.func, python_ast.Name | python_ast.Attribute | python_ast.Subscript
            ):
                raise UnsafeSourceError("unexpected call")
        elif isinstance(node, python_ast.Attribute):
            owner = node.value
            allowed: set[str] = set()
            if isinstance(owner, python_ast.Attribute) and isinstance(owner.value, python_ast.Name):
                allowed = _ATTRIBUTES.get((owner.value.id, owner.attr), set())
            elif isinstance(owner, python_ast.Name) and owner.id == "celpy":
                allowed = {"evaluation"}
            if node.attr not in allowed or not isinstance(node.ctx, python_ast.Load):
                raise UnsafeSourceError(f"unexpected attribute {node.attr!r}")
        elif isinstance(node, python_ast.Subscript):
            if not isinstance(node.ctx, python_ast.Load) or not (
                isinstance(node.value, python_ast.Name)
                and node.value.id in ("_functions", "_literals")
                and isinstance(node.slice, python_ast.Constant)
                and type(node.slice.value) is int
            ):
                raise UnsafeSourceError("unexpected subscript")
        elif isinstance(node, python_ast.Constant):
            value = node.value
            if not (type(value) is int or (type(value) is str and _IDENT.match(value))):
                raise UnsafeSourceError(f"unexpected constant {value!r}")
        elif isinstance(node, python_ast.FunctionDef) and (
            node.name != "condition" or node.decorator_list or node.returns
        ):
            raise UnsafeSourceError(f"unexpected function {node.name!r}")


def _transpilable(tree: lark.Tree) -> bool:
    for node in tree.iter_subtrees():
        if node.data in _INTERPRETED_NODES:
            return False
        if node.data == "ident_arg" and str(node.children[0]) in ("has", "dyn"):
            # The interpreter reads the first argument only; the generator would read all.
            arguments = node.children[1] if len(node.children) == 2 else None
            if not isinstance(arguments, lark.Tree) or len(arguments.children) != 1:
                return False
        if node.data == "member_dot_arg" and str(node.children[1]) in ("min", "reduce"):
            return False
        if (
            node.data == "member_dot_arg"
            and str(node.children[1]) in _MACROS
            and _macro_variable(node) is None
        ):
            return False
    return True


def _macro_variable(node: lark.Tree) -> str | None:
    """The variable a macro binds (``x`` in ``l.all(x, ...)``), when it is a plain name."""
    if len(node.children) != 3:
        return None
    arguments = node.children[2]
    if not isinstance(arguments, lark.Tree) or len(arguments.children) != 2:
        return None
    item: Any = arguments.children[0]
    while isinstance(item, lark.Tree) and len(item.children) == 1 and item.data != "ident":
        item = item.children[0]
    if isinstance(item, lark.Tree) and item.data == "ident" and len(item.children) == 1:
        name = str(item.children[0])
        return name if _IDENT.match(name) else None
    return None


def _clone(activation: Activation) -> Activation:
    """What ``Activation.clone()`` does, without its logging on every call.

    The functions are shared instead of copied: nothing changes them.
    """
    clone = Activation.__new__(Activation)
    clone.identifiers = activation.identifiers.clone()
    clone.functions = activation.functions
    clone.package = activation.package
    return clone


def _transpiler_tree(tree: lark.Tree) -> TranspilerTree:
    """A copy of ``tree`` made of ``TranspilerTree`` nodes, built without recursion.

    cel-python's parser is one per process and builds the tree class of whoever made
    it first, so the transpiler cannot rely on receiving its own class; the copy also
    keeps the transpiler's annotations off the tree the safety checks read.
    """
    copies: dict[int, TranspilerTree] = {}
    order: list[lark.Tree] = []
    stack = [tree]
    while stack:
        node = stack.pop()
        order.append(node)
        stack.extend(child for child in node.children if isinstance(child, lark.Tree))
    for node in reversed(order):
        children = [
            copies[id(child)] if isinstance(child, lark.Tree) else child for child in node.children
        ]
        copies[id(node)] = TranspilerTree(node.data, children, node.meta)
    return copies[id(tree)]


class _Phase1(Phase1Transpiler):
    """cel-python's first transpiler pass, with no text of the condition in its output."""

    def __init__(self, facade: Transpiler) -> None:
        super().__init__(facade)
        self.function_table: list[Callable[..., Any]] = []
        self.literal_table: list[Any] = []

    def _literal(self, value: Any) -> str:
        self.literal_table.append(value)
        return f"_literals[{len(self.literal_table) - 1}]"

    def _function(self, label: str, wrap: Callable[[str, Callable[..., Any]], Any]) -> str:
        try:
            function = self.activation.resolve_function(label)
        except KeyError as error:
            # Calling a CELEvalError returns it: the interpreter's undeclared reference.
            return self._literal(
                CELEvalError(f"undeclared reference to {label!r}", KeyError, error.args)
            )
        self.function_table.append(wrap(label, function))
        return f"_functions[{len(self.function_table) - 1}]"

    def func_name(self, label: str) -> str:
        return self._function(label, _operator if label in _CAUGHT else _function_call)

    def expr(self, tree: TranspilerTree) -> None:
        if len(tree.children) != 3:
            super().expr(tree)
            return
        function = self._function("_?_:_", lambda label, function: function)
        tree.checked_exception = (
            _CONDITIONAL,
            {
                "n": lambda tree: str(tree.expr_number),
                "f": lambda tree: function,
                "cond": lambda tree: cast(TranspilerTree, tree.children[0]).transpiled,
                "left": lambda tree: cast(TranspilerTree, tree.children[1]).transpiled,
                "rght": lambda tree: cast(TranspilerTree, tree.children[2]).transpiled,
            },
        )
        tree.transpiled = f"ex_{tree.expr_number}(activation)"

    def ident(self, tree: TranspilerTree) -> None:
        name = _checked_ident(tree.children[0])
        tree.transpiled = f"_variable(activation, {name!r})"

    def member_dot(self, tree: TranspilerTree) -> None:
        member = cast(TranspilerTree, tree.children[0])
        name = _checked_ident(tree.children[1])
        tree.transpiled = f"_select({member.transpiled}, {name!r})"

    def list_lit(self, tree: TranspilerTree) -> None:
        items = cast(TranspilerTree, tree.children[0]).transpiled if tree.children else ""
        tree.transpiled = f"_list([{items}])"

    def map_lit(self, tree: TranspilerTree) -> None:
        items = cast(TranspilerTree, tree.children[0]).transpiled if tree.children else ""
        tree.transpiled = f"_map([{items}])"

    def literal(self, tree: TranspilerTree) -> None:
        # The interpreter's own conversion, done once: an invalid literal is an error value.
        value = Evaluator(ast=tree, activation=self.activation).literal(tree)
        tree.transpiled = self._literal(value)

    def ident_arg(self, tree: TranspilerTree) -> None:
        name = _checked_ident(tree.children[0])
        if name == "dyn":
            arguments = cast(TranspilerTree, tree.children[1])
            tree.transpiled = cast(TranspilerTree, arguments.children[0]).transpiled
        elif name == "has":
            tree.checked_exception = (
                _HAS,
                {
                    "n": lambda tree: str(tree.expr_number),
                    "exprlist": lambda tree: cast(TranspilerTree, tree.children[1]).transpiled,
                },
            )
            tree.transpiled = f"ex_{tree.expr_number}(activation)"
        else:
            function = self._function(name, _function_call)
            exprlist = (
                cast(TranspilerTree, tree.children[1]).transpiled if len(tree.children) == 2 else ""
            )
            tree.transpiled = f"{function}({exprlist})"

    def member_dot_arg(self, tree: TranspilerTree) -> None:
        name = _checked_ident(tree.children[1])
        member = cast(TranspilerTree, tree.children[0])
        if name not in _MACROS:
            # A method is the function with the receiver first (``Evaluator.method_eval``).
            function = self._function(name, _function_call)
            arguments = [member.transpiled]
            if len(tree.children) == 3:
                arguments.append(cast(TranspilerTree, tree.children[2]).transpiled)
            tree.transpiled = f"{function}({', '.join(arguments)})"
            return
        variable = _macro_variable(tree)
        if variable is None:  # pragma: no cover - refused by _transpilable
            raise UnsafeSourceError("macro without a plain variable name")
        arguments_tree = cast(TranspilerTree, tree.children[2])
        tree.checked_exception = (
            _MACRO,
            {
                "n": lambda tree: str(tree.expr_number),
                "m": lambda tree: repr(name),
                "member": lambda tree: member.transpiled,
                "v": lambda tree: repr(variable),
                "expr": lambda tree: cast(TranspilerTree, arguments_tree.children[1]).transpiled,
            },
        )
        tree.transpiled = f"ex_{tree.expr_number}(activation)"


_CONDITIONAL = Template(
    dedent("""\
    # expr:
    ex_${n}_c = lambda activation: ${cond}
    ex_${n}_l = lambda activation: ${left}
    ex_${n}_r = lambda activation: ${rght}
    ex_${n} = lambda activation: _conditional(${f}, activation, ex_${n}_c, ex_${n}_l, ex_${n}_r)
    """)
)

_HAS = Template(
    dedent("""\
    # ident_arg has:
    ex_${n}_h = lambda activation: ${exprlist}
    ex_${n} = lambda activation: _has(celpy.evaluation.result(activation, ex_${n}_h))
    """)
)

_MACRO = Template(
    dedent("""\
    # member_dot_arg:
    ex_${n}_l = lambda activation: ${member}
    ex_${n}_x = lambda activation: ${expr}
    ex_${n} = lambda activation: _comprehension(${m}, activation, ${v}, ex_${n}_x, ex_${n}_l)
    """)
)


def _checked_ident(token: Any) -> str:
    name = str(token)
    if not _IDENT.match(name):  # the grammar allows nothing else
        raise UnsafeSourceError(f"unexpected identifier {name!r}")
    return name


# --- what the generated code calls: the interpreter's rules, node by node -----------


def _variable(activation: Activation, name: str) -> Any:
    """A name in the activation, or the interpreter's error value for an unknown one."""
    try:
        # What Activation.resolve_variable does, without its logging and its
        # typing.cast(Union[...]) built on every call.
        try:
            if activation.package:
                return activation.identifiers.resolve_name(activation.package, name).value
            # NameContainer.resolve_name without a package: the first container of the
            # chain holding the name, most local first (its logging formats each
            # container's keys on every call, even with debug logging off).
            container: NameContainer | None = activation.identifiers
            while container is not None:
                if name in container:
                    return container[name].value
                container = container.parent
            raise KeyError(name)
        except KeyError:
            return activation.functions[name]
    except KeyError as error:
        return CELEvalError(f"undeclared reference to {name!r}", KeyError, error.args)
    except Exception as error:
        raise _Escape(error) from None


#: MapType.__getitem__ without its key type check, for ``name``, a str (a valid key).
_map_item: Callable[[Any, str], Any] = dict.__getitem__


def _select(member: Any, name: str) -> Any:
    """``member.name`` as cel-python's interpreter evaluates it (``Evaluator.member_dot``)."""
    try:
        if type(member) is not celtypes.MapType:  # a map of the context goes straight on
            if isinstance(member, CELEvalError):
                return member
            if isinstance(member, NameContainer):
                if name in member:
                    return member[name].value
                return CELEvalError(
                    f"No {name!r} in bindings {sorted(member.keys())}", KeyError, None
                )
            if isinstance(member, celtypes.MessageType):
                return member.get(name)
            if not isinstance(member, celtypes.MapType):
                return CELEvalError(
                    f"{member!r} with type: '{type(member)}' does not support field selection",
                    TypeError,
                    None,
                )
        try:
            return _map_item(member, name)
        except KeyError:
            return CELEvalError(f"no such member in mapping: {name!r}", KeyError, None)
    except Exception as error:
        raise _Escape(error) from None


def _result(activation: Activation, expression: Callable[[Activation], Any]) -> Any:
    """cel-python's ``celpy.evaluation.result()`` without its logging on every call.

    The generated code calls it as ``celpy.evaluation.result``: the ``celpy`` its
    code sees is :data:`_CELPY`, which holds this function and nothing else.
    """
    value: Any
    try:
        value = expression(activation)
    except (
        ValueError,
        KeyError,
        TypeError,
        ZeroDivisionError,
        OverflowError,
        IndexError,
        NameError,
    ) as error:
        # The same table as cel-python's: an exception of a subclass not named in it
        # (UnicodeDecodeError aside) fails the look-up with a KeyError, as there.
        message = {
            ValueError: "return error for overflow",
            KeyError: f"no such member in mapping: {error.args[0]!r}",
            TypeError: "no such overload",
            ZeroDivisionError: "divide by zero",
            OverflowError: "return error for overflow",
            IndexError: "invalid_argument",
            UnicodeDecodeError: "invalid UTF-8",
            NameError: (
                f"undeclared reference to {error.args[0]!r} (in container {error.args[1:]!r})"
            ),
        }[error.__class__]
        value = CELEvalError(message, error.__class__, error.args).with_traceback(
            error.__traceback__
        )
        value.__cause__ = error
    return value


_CELPY = SimpleNamespace(evaluation=SimpleNamespace(result=_result))


def _has(value: Any) -> Any:
    """``has()``: whether the member selection gave a value (the interpreter's rule)."""
    return celtypes.BoolType(not isinstance(value, CELEvalError))


def _list(items: list[Any]) -> Any:
    """A list literal; an error among the items is the result (``Evaluator.exprlist``)."""
    for item in items:
        if isinstance(item, CELEvalError):
            return item
    return celtypes.ListType(items)


def _map(items: list[tuple[Any, Any]]) -> Any:
    """A map literal; duplicate or invalid keys are an error value, as interpreted."""
    try:
        return celtypes.MapType(items)
    except (ValueError, TypeError) as error:
        return CELEvalError(error.args[0] if error.args else str(error), type(error), error.args)
    except Exception as error:
        raise _Escape(error) from None


def _conditional(
    function: Callable[..., Any],
    activation: Activation,
    condition: Callable[[Activation], Any],
    left: Callable[[Activation], Any],
    right: Callable[[Activation], Any],
) -> Any:
    """``c ? l : r``, evaluating only the branch a bool ``c`` chooses.

    ``function`` is the ``_?_:_`` of :mod:`.celpy_functions`, which gives the error
    for a condition that is an error or not a bool.
    """
    chosen = condition(activation)
    if not isinstance(chosen, celtypes.BoolType):
        return function(chosen, None, None)
    try:
        return left(activation) if chosen else right(activation)
    except (CELEvalError, _Escape):
        raise
    except Exception as error:
        raise _Escape(error) from None


def _comprehension(
    macro: str,
    activation: Activation,
    variable: str,
    body: Callable[[Activation], Any],
    members: Callable[[Activation], Any],
) -> Any:
    """A macro, run by :func:`.celpy_functions.run_macro` as for the interpreter.

    The body of each element sees an activation holding only the macro's variable,
    whose parent is the enclosing one: nothing is copied per element (copying the
    context's names cost 10 s for 2,600 top-level keys).
    """
    values = members(activation)

    def each(value: Any) -> Any:
        return body(nested_activation(activation, variable, value))

    try:
        return run_macro(macro, values, each)
    except (CELEvalError, _Escape):
        raise
    except Exception as error:
        raise _Escape(error) from None


def nested_activation(activation: Activation, variable: str, value: Any) -> Activation:
    """A child of ``activation`` binding a macro's ``variable`` (a plain name) to ``value``.

    Name look-ups walk the chain of containers, most local first, so the child holds
    one name and shares the rest.
    """
    identifiers = NameContainer(parent=activation.identifiers)
    referent = Referent()
    referent.value = value
    dict.__setitem__(identifiers, variable, referent)
    child = Activation.__new__(Activation)
    child.identifiers = identifiers
    child.functions = activation.functions
    child.package = activation.package
    return child


def _operator(label: str, function: Callable[..., Any]) -> Callable[..., Any]:
    """An operator turning what its interpreter node catches into error values."""
    symbol = OPERATOR_SYMBOLS[label]
    caught = _CAUGHT[label]

    def operator(*arguments: Any) -> Any:
        try:
            return function(*arguments)
        except caught as error:
            if isinstance(error, TypeError):
                return no_overload(symbol, *arguments)
            return CELEvalError(_MESSAGES[type(error)], type(error), None)
        except Exception as error:
            raise _Escape(error) from None

    return operator


def _function_call(label: str, function: Callable[..., Any]) -> Callable[..., Any]:
    """A function or method as the interpreter calls it: the first error argument is the result."""

    def call(*arguments: Any) -> Any:
        for argument in arguments:
            if isinstance(argument, CELEvalError):
                return argument
        try:
            return function(*arguments)
        except ValueError:
            return CELEvalError("return error for overflow", ValueError, None)
        except (TypeError, AttributeError):
            return no_overload(label, *arguments)
        except Exception as error:
            raise _Escape(error) from None

    return call
