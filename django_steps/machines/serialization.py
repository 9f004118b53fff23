"""Read and write workflow definition files: the ``django-steps/1`` format in YAML or JSON.

A file holds a format marker and a list of workflows, each in the shape of
:meth:`WorkflowDefinition.to_dict`::

    format: django-steps/1
    workflows:
      - name: Claims
        steps: [...]
        transitions: [...]

A hand-written file may also hold a single workflow mapping (``name``, ``steps``,
``transitions``...), with or without the ``format`` key. YAML needs PyYAML (the
``yaml`` extra); JSON needs nothing.

YAML anchors and aliases are refused: each alias copies its anchored node, so a
few kilobytes of nested aliases expand to millions of objects. Strings that YAML
would read back differently (U+0085, U+2028 and U+2029 are line breaks to a YAML
reader) are written double-quoted with escapes, so every name round-trips.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from ..exceptions import DefinitionError
from .definition import WorkflowDefinition

__all__ = [
    "FILE_FORMATS",
    "FORMAT_MARKER",
    "definitions_from_data",
    "document",
    "dump_definitions",
    "format_for_path",
    "parse_definitions",
    "read_definitions",
]

FORMAT_MARKER = "django-steps/1"
FILE_FORMATS = ("yaml", "json")
_SUFFIXES = {".json": "json", ".yaml": "yaml", ".yml": "yaml"}


def document(definitions: Iterable[WorkflowDefinition]) -> dict[str, Any]:
    """The plain data of a definitions file."""
    return {
        "format": FORMAT_MARKER,
        "workflows": [definition.to_dict() for definition in definitions],
    }


def dump_definitions(definitions: Iterable[WorkflowDefinition], format: str = "yaml") -> str:
    """Definitions as the text of a definitions file; the same input gives the same bytes."""
    data = document(definitions)
    if format == "json":
        return json.dumps(data, indent=2, ensure_ascii=False) + "\n"
    if format == "yaml":
        yaml = _yaml()
        safe_dumper: Any = yaml.SafeDumper

        class IndentedDumper(safe_dumper):
            """Indents list items under their key, which reads better by hand."""

            def increase_indent(self, flow: bool = False, indentless: bool = False) -> None:
                super().increase_indent(flow, False)

        IndentedDumper.add_representer(str, _represent_str)

        text: str = yaml.dump(
            data,
            Dumper=IndentedDumper,
            sort_keys=False,
            allow_unicode=True,
            default_flow_style=False,
            width=4096,
        )
        return text
    raise DefinitionError(
        f"Unknown file format {format!r}; choose one of {', '.join(FILE_FORMATS)}."
    )


def parse_definitions(text: str, format: str | None = None) -> list[WorkflowDefinition]:
    """Parse the text of a definitions file.

    ``format`` is ``"yaml"``, ``"json"`` or ``None`` (JSON when the text starts with
    ``{`` or ``[``, else YAML). Raises :class:`DefinitionError` naming the problem:
    a syntax error with its line, an unknown format marker, a malformed workflow,
    or the same workflow name twice.
    """
    if format is None:
        format = "json" if text.lstrip().startswith(("{", "[")) else "yaml"
    if format == "json":
        try:
            data = json.loads(text)
        except json.JSONDecodeError as error:
            raise DefinitionError(
                f"The file is not valid JSON: {error.msg} at line {error.lineno}, "
                f"column {error.colno}."
            ) from None
        except (RecursionError, ValueError) as error:  # nesting, or an int of 4,300+ digits
            raise DefinitionError(f"The file cannot be read as JSON: {error}") from None
    elif format == "yaml":
        yaml = _yaml()
        try:
            data = yaml.load(text, Loader=_loader(yaml))
        except yaml.YAMLError as error:
            raise DefinitionError(f"The file is not valid YAML: {error}") from None
        except (RecursionError, ValueError) as error:
            raise DefinitionError(f"The file cannot be read as YAML: {error}") from None
    else:
        raise DefinitionError(
            f"Unknown file format {format!r}; choose one of {', '.join(FILE_FORMATS)}."
        )
    return definitions_from_data(data)


def definitions_from_data(data: Any) -> list[WorkflowDefinition]:
    """Definitions from parsed file data (a document or a single workflow mapping)."""
    if not isinstance(data, Mapping):
        raise DefinitionError(
            "A definitions file must hold a mapping: either 'format' and 'workflows', "
            "or a single workflow with 'name' and 'steps'."
        )
    marker = data.get("format", FORMAT_MARKER)
    if marker != FORMAT_MARKER:
        raise DefinitionError(
            f"Unsupported definitions file format {marker!r}; this version of django-steps "
            f"reads {FORMAT_MARKER!r}."
        )
    if "workflows" in data:
        extra = sorted(set(data) - {"format", "workflows"})
        if extra:
            raise DefinitionError(
                f"Unknown top-level key(s) {', '.join(map(repr, extra))}; a definitions file "
                "holds 'format' and 'workflows'."
            )
        items = data["workflows"]
        if not isinstance(items, list):
            raise DefinitionError("'workflows' must be a list of workflow mappings.")
    else:
        items = [{key: value for key, value in data.items() if key != "format"}]
    definitions = []
    seen: set[str] = set()
    for index, item in enumerate(items, start=1):
        try:
            definition = WorkflowDefinition.from_dict(item)
        except DefinitionError as error:
            raise DefinitionError(
                f"Workflow #{index} in the file: {error}", workflow=error.workflow
            ) from None
        if definition.name in seen:
            raise DefinitionError(
                f"Workflow {definition.name!r} appears more than once in the file.",
                workflow=definition.name,
            )
        seen.add(definition.name)
        definitions.append(definition)
    return definitions


def read_definitions(path: str | Path) -> list[WorkflowDefinition]:
    """Read a definitions file; the format follows the extension (.json, .yaml, .yml)."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as error:
        raise DefinitionError(f"Cannot read definitions file {str(path)!r}: {error}") from None
    try:
        return parse_definitions(text, _SUFFIXES.get(path.suffix.lower()))
    except DefinitionError as error:
        raise DefinitionError(f"{path}: {error}", workflow=error.workflow) from None


def format_for_path(path: str | Path, default: str = "yaml") -> str:
    """``"json"`` for a .json path, ``"yaml"`` for .yaml/.yml, else ``default``."""
    return _SUFFIXES.get(Path(path).suffix.lower(), default)


# Characters a YAML reader takes for line breaks, though PyYAML writes them raw in
# plain and single-quoted scalars; double-quoted scalars escape them (\N, \L, \P).
_YAML_LINE_BREAKS = frozenset("\x85\u2028\u2029")


def _represent_str(dumper: Any, value: str) -> Any:
    style = '"' if _YAML_LINE_BREAKS.intersection(value) else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


def _loader(yaml: Any) -> Any:
    """PyYAML's safe loader, refusing aliases (``*name``) as a YAML error with its line."""

    class NoAliasLoader(yaml.SafeLoader):
        def compose_node(self, parent: Any, index: Any) -> Any:
            if self.check_event(yaml.AliasEvent):
                event = self.peek_event()
                raise yaml.composer.ComposerError(
                    None,
                    None,
                    f"found the alias *{event.anchor}: definitions files may not use YAML "
                    "anchors and aliases (each alias copies its anchor, so a small file can "
                    "expand without bound); write the values out",
                    event.start_mark,
                )
            return super().compose_node(parent, index)

    return NoAliasLoader


def _yaml() -> Any:
    try:
        import yaml
    except ImportError:
        raise DefinitionError(
            "YAML definitions files need PyYAML: pip install 'django-steps[yaml]', or use JSON."
        ) from None
    return yaml
