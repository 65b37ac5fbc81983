"""Configuration: YAML -> frozen dataclasses, validated once at the boundary.

``load_config(cls, path=None, overrides=())`` reads a YAML mapping (or nothing: the dataclass defaults),
applies dotted ``key.sub=value`` overrides (values parsed as YAML scalars), and builds ``cls``. Every
problem is reported with the file, the dotted key, what was expected and what was found:

* a file that cannot be read, is not UTF-8, is not valid YAML or repeats a key in one mapping (YAML
  would keep the last value silently; the message gives the dotted key and both lines);
* unknown keys (with the allowed ones listed), a mapping where a value was expected or the reverse;
* wrong types (``int``, ``float``, ``bool``, ``str``, ``tuple[...]``, ``Literal[...]``, nested
  dataclasses; an int is accepted for a float, a bool never for a number);
* range checks that dataclasses declare in ``__post_init__`` by raising ``ConfigError`` via
  ``check(...)``.
"""
import argparse
import dataclasses
import math
import re
import types
import typing
from pathlib import Path

import yaml

from controller.errors import ConfigError, check, read_bytes  # noqa: F401  (ConfigError, check: re-exported)

_FLOAT_LITERAL = re.compile(r"[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?")


def check_output_path(path, key, kind):
    """Raise ConfigError when an output path names the wrong kind of thing already on disk: kind
    "folder" (a results folder: an existing file is wrong) or "file" (an existing folder is wrong).
    An empty path (no output) passes."""
    if not path:
        return
    p = Path(path)
    if kind == "folder" and p.exists() and not p.is_dir():
        raise ConfigError(f"{key}: expected a folder, found a file ({path})")
    if kind == "file" and p.is_dir():
        raise ConfigError(f"{key}: expected a file path, found a folder ({path})")


def _type_name(tp):
    origin = typing.get_origin(tp)
    if origin is typing.Literal:
        return "one of " + ", ".join(repr(a) for a in typing.get_args(tp))
    if origin in (tuple, list):
        args = typing.get_args(tp)
        return f"a list of {_type_name(args[0])}" if args else "a list"
    if origin is dict or tp is dict:
        return "a mapping"
    if origin in (typing.Union, types.UnionType):
        return " or ".join(_type_name(a) for a in typing.get_args(tp))
    if tp is type(None):
        return "null"
    return getattr(tp, "__name__", str(tp))


def _convert(value, tp, key):
    """value (from YAML) converted to the annotated type tp, or ConfigError naming key."""
    origin = typing.get_origin(tp)
    if dataclasses.is_dataclass(tp):
        if not isinstance(value, dict):
            raise ConfigError(f"{key}: expected a mapping for {tp.__name__}, found {value!r}")
        return _build(tp, value, key)
    if origin is typing.Literal:
        if value not in typing.get_args(tp):
            raise ConfigError(f"{key}: expected {_type_name(tp)}, found {value!r}")
        return value
    if origin in (typing.Union, types.UnionType):
        for arg in typing.get_args(tp):
            try:
                return _convert(value, arg, key)
            except ConfigError:
                continue
        raise ConfigError(f"{key}: expected {_type_name(tp)}, found {value!r}")
    if origin in (tuple, list):
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{key}: expected {_type_name(tp)}, found {value!r}")
        args = typing.get_args(tp)
        item = args[0] if args else typing.Any
        return tuple(_convert(v, item, f"{key}[{i}]") for i, v in enumerate(value))
    if origin is dict or tp is dict:
        if not isinstance(value, dict) or not all(isinstance(k, str) for k in value):
            raise ConfigError(f"{key}: expected a mapping with string keys, found {value!r}")
        args = typing.get_args(tp)
        item = args[1] if len(args) == 2 else typing.Any
        return {k: _convert(v, item, f"{key}.{k}") for k, v in value.items()}
    if tp is typing.Any:
        return value
    if tp is type(None):
        if value is not None:
            raise ConfigError(f"{key}: expected null, found {value!r}")
        return None
    if tp is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{key}: expected true or false, found {value!r}")
        return value
    if tp is int:
        # 1e6 and 1.0e+6 are how RL budgets are written; YAML 1.1 reads the first as a string
        if isinstance(value, str) and _FLOAT_LITERAL.fullmatch(value.strip()):
            value = float(value)
        if isinstance(value, float) and math.isfinite(value) and value == int(value):
            value = int(value)
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{key}: expected an integer, found {value!r}")
        return value
    if tp is float:
        if isinstance(value, str):
            # YAML 1.1 (PyYAML) reads "1e-6" (no dot) as a string: accept float literals written so
            try:
                value = float(value) if _FLOAT_LITERAL.fullmatch(value.strip()) else value
            except ValueError:
                pass
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{key}: expected a number, found {value!r}")
        return float(value)
    if tp is str:
        if not isinstance(value, str):
            raise ConfigError(f"{key}: expected a string, found {value!r}")
        return value
    raise TypeError(f"{key}: unsupported annotation {tp!r}")


def _build(cls, data, prefix=""):
    hints = typing.get_type_hints(cls)
    fields = {f.name for f in dataclasses.fields(cls) if f.init}
    unknown = sorted(set(data) - fields)
    if unknown:
        where = f"{prefix}." if prefix else ""
        raise ConfigError(f"{where}{unknown[0]}: unknown key (allowed under "
                          f"{prefix or 'the top level'}: {', '.join(sorted(fields))})")
    kwargs = {}
    for name, value in data.items():
        key = f"{prefix}.{name}" if prefix else name
        kwargs[name] = _convert(value, hints[name], key)
    try:
        return cls(**kwargs)
    except ConfigError as err:
        if prefix and not str(err).startswith(prefix):
            raise ConfigError(f"{prefix}.{err}") from None
        raise


def build_config(cls, data, prefix=""):
    """A frozen config dataclass from a mapping (YAML values): every key checked and converted as
    ``load_config`` does, errors naming ``prefix.key``."""
    return _build(cls, data, prefix)


def parse_override(text):
    """'a.b=c' -> (['a', 'b'], value parsed as a YAML scalar)."""
    if "=" not in text:
        raise ConfigError(f"--set {text!r}: expected key=value (e.g. seed=1)")
    key, raw = text.split("=", 1)
    key = key.strip()
    if not key or any(not part for part in key.split(".")):
        raise ConfigError(f"--set {text!r}: expected a dotted key before '='")
    try:
        value = _load_yaml(raw) if raw.strip() else ""
    except yaml.YAMLError as err:
        raise ConfigError(f"--set {text!r}: value is not valid YAML ({err})") from None
    except _DuplicateKey as err:
        raise ConfigError(f"--set {text!r}: {err}") from None
    return key.split("."), value


def set_dotted(data, path, value, where):
    """Put ``value`` at the key path ``path`` (list of names) of the nested dict ``data``, in place;
    the mappings on the way are copied, not shared. ConfigError "<where>: a.b is not a mapping" when a
    value on the way is not a mapping."""
    node = data
    for i, part in enumerate(path[:-1]):
        child = node.get(part, {})
        if not isinstance(child, dict):
            raise ConfigError(f"{where}: {'.'.join(path[:i + 1])} is not a mapping")
        node[part] = dict(child)
        node = node[part]
    node[path[-1]] = value


def apply_overrides(data, overrides):
    """A copy of the nested dict data with each 'a.b=c' override applied."""
    data = dict(data)
    for text in overrides:
        path, value = parse_override(text)
        set_dotted(data, path, value, f"--set {text!r}")
    return data


class _DuplicateKey(Exception):
    """A mapping repeats a key (YAML would silently keep the last value)."""


_MERGE_TAG = "tag:yaml.org,2002:merge"


def _check_unique_keys(node, prefix=""):
    """Raise _DuplicateKey naming the dotted key and both lines when a mapping under node repeats a key."""
    if isinstance(node, yaml.MappingNode):
        seen = {}
        for key_node, value_node in node.value:
            if key_node.tag == _MERGE_TAG:   # '<<: *anchor' merges may be overridden by design
                continue
            name = key_node.value if isinstance(key_node, yaml.ScalarNode) else str(key_node.value)
            dotted = f"{prefix}.{name}" if prefix else name
            line = key_node.start_mark.line + 1
            if name in seen:
                raise _DuplicateKey(f"line {line}: duplicate key {dotted!r} (first on line {seen[name]})")
            seen[name] = line
            _check_unique_keys(value_node, dotted)
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            _check_unique_keys(item, f"{prefix}[{i}]")


def _load_yaml(text):
    """yaml.safe_load that rejects duplicate mapping keys (raises _DuplicateKey or yaml.YAMLError)."""
    loader = yaml.SafeLoader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return None
        _check_unique_keys(node)
        return loader.construct_document(node)
    finally:
        loader.dispose()


def read_yaml(path):
    """The mapping in a YAML file, or ConfigError naming the file and the problem (unreadable, not
    UTF-8, invalid YAML, a repeated key, not a mapping)."""
    path = Path(path)
    raw = read_bytes(path, ConfigError, "config")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as err:
        raise ConfigError(f"{path}: cannot read config: not UTF-8 text (byte 0x{raw[err.start]:02x} at "
                          f"offset {err.start})") from None
    try:
        data = _load_yaml(text)
    except yaml.YAMLError as err:
        raise ConfigError(f"{path}: invalid YAML: {err}") from None
    except _DuplicateKey as err:
        raise ConfigError(f"{path}: {err}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping at the top level, found {type(data).__name__}")
    return data


def load_config(cls, path=None, overrides=()):
    """Build the frozen dataclass cls from an optional YAML file and dotted overrides."""
    data = read_yaml(path) if path is not None else {}
    data = apply_overrides(data, overrides)
    source = str(path) if path is not None else "defaults"
    try:
        return _build(cls, data)
    except ConfigError as err:
        raise ConfigError(f"{source}: {err}") from None


def add_config_arguments(parser, default, example):
    """``--config FILE`` and repeatable ``--set KEY=VALUE`` (into ``args.config``, ``args.overrides``):
    the arguments of every config-driven command, rtu-control's subcommands and the modules' own
    ``main`` alike. ``default`` says which config applies without --config; ``example`` is one override."""
    parser.add_argument("--config", default=None, help=f"YAML config file (default: {default})")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help=f"override one config value, e.g. --set {example} (repeatable)")
    return parser


def run_command_line(cls, run, argv, prog, doc, example):
    """The exit status of a module's own command line ``prog [--config FILE] [--set KEY=VALUE ...]``:
    ``run(config)`` with ``cls`` built once from the file (without --config: the dataclass defaults) and
    the overrides; 2, with the message on stderr, when a value is invalid (argparse exits 2 on bad
    syntax). ``doc``: the module's docstring, whose first line describes the command."""
    import sys
    parser = argparse.ArgumentParser(prog=prog, description=doc.strip().splitlines()[0])
    args = add_config_arguments(parser, f"the {cls.__name__} defaults", example).parse_args(argv)
    try:
        config = load_config(cls, args.config, args.overrides)
    except ConfigError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    return run(config)


def to_dict(config):
    """Plain nested dict (tuples as lists) of a config dataclass, e.g. for writing the resolved config."""
    def plain(v):
        if isinstance(v, tuple):
            return [plain(x) for x in v]
        if isinstance(v, dict):
            return {k: plain(x) for k, x in v.items()}
        return v
    return plain(dataclasses.asdict(config))
