"""The one error vocabulary of the project: "<where>: expected <what>, found <value>".

``ConfigError`` (a ``ValueError``, so ``except ValueError`` keeps working) is the root of every
configuration and argument error: ``controller.config`` raises it for YAML and dataclass fields,
``controller.validation`` for cell arguments, and ``envs.errors.EnvConfigError`` derives from it. This
module imports nothing, so every package can use it.
"""


class ConfigError(ValueError):
    """A configuration value or argument is invalid; the message names where, what was expected and what
    was found."""


def message(where, expected, found):
    """'<where>: expected <expected>, found <found>' (found already formatted by the caller)."""
    return f"{where}: expected {expected}, found {found}"


def check(condition, key, expected, found):
    """Raise ConfigError('<key>: expected <expected>, found <found!r>') unless condition holds."""
    if not condition:
        raise ConfigError(message(key, expected, repr(found)))


def read_bytes(path, error, what):
    """The bytes of the file at ``path`` (a ``pathlib.Path``), or ``error('<path>: cannot read <what>
    (<reason>)')`` when the operating system refuses."""
    try:
        return path.read_bytes()
    except OSError as err:
        raise error(f"{path}: cannot read {what} ({err.strerror})") from None
