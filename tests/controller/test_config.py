"""YAML -> frozen dataclass loading: every error names the source, the key, expected and found."""
import dataclasses
from typing import Literal

import pytest

from controller.config import ConfigError, check, load_config, to_dict


@dataclasses.dataclass(frozen=True)
class Inner:
    rate_hz: float = 500.0
    mode: Literal["fast", "paced"] = "fast"

    def __post_init__(self):
        check(20.0 <= self.rate_hz <= 1000.0, "rate_hz", "a number in [20, 1000]", self.rate_hz)


@dataclasses.dataclass(frozen=True)
class Outer:
    steps: int = 10
    name: str = "run"
    flags: tuple[str, ...] = ("a",)
    loop: Inner = Inner()


def _write(tmp_path, text):
    path = tmp_path / "cfg.yaml"
    path.write_text(text)
    return path


def test_defaults_without_file():
    assert load_config(Outer) == Outer()


def test_values_and_overrides(tmp_path):
    path = _write(tmp_path, "steps: 5\nloop:\n  rate_hz: 100\n")
    cfg = load_config(Outer, path, ["loop.mode=paced", "flags=[x, y]"])
    assert cfg == Outer(steps=5, flags=("x", "y"), loop=Inner(rate_hz=100.0, mode="paced"))
    assert isinstance(cfg.loop.rate_hz, float)
    with pytest.raises(dataclasses.FrozenInstanceError):
        cfg.steps = 3
    assert to_dict(cfg)["flags"] == ["x", "y"]


@pytest.mark.parametrize("text, overrides, message", [
    ("stepz: 5\n", [], r"cfg.yaml: stepz: unknown key \(allowed under the top level: flags, loop, name, steps\)"),
    ("loop:\n  rate: 5\n", [], r"cfg.yaml: loop.rate: unknown key"),
    ("steps: five\n", [], r"cfg.yaml: steps: expected an integer, found 'five'"),
    ("steps: true\n", [], r"steps: expected an integer, found True"),
    ("loop: 3\n", [], r"loop: expected a mapping for Inner, found 3"),
    ("", ["loop.mode=slow"], r"loop.mode: expected one of 'fast', 'paced', found 'slow'"),
    ("", ["loop.rate_hz=5000"], r"loop.rate_hz: expected a number in \[20, 1000\], found 5000.0"),
    ("", ["steps"], r"--set 'steps': expected key=value"),
    ("flags: x\n", [], r"flags: expected a list of str, found 'x'"),
])
def test_errors_name_file_key_expected_found(tmp_path, text, overrides, message):
    path = _write(tmp_path, text)
    with pytest.raises(ConfigError, match=message):
        load_config(Outer, path, overrides)


def test_invalid_yaml_and_missing_file(tmp_path):
    with pytest.raises(ConfigError, match=r"cfg.yaml: invalid YAML"):
        load_config(Outer, _write(tmp_path, "steps: [1,\n"))
    with pytest.raises(ConfigError, match=r"missing.yaml: cannot read config"):
        load_config(Outer, tmp_path / "missing.yaml")
    with pytest.raises(ConfigError, match=r"expected a mapping at the top level, found list"):
        load_config(Outer, _write(tmp_path, "- 1\n- 2\n"))


def test_float_written_without_a_dot_is_a_number(tmp_path):
    """PyYAML reads 1e-6 as a string (YAML 1.1); float fields accept it, other strings stay errors."""
    import dataclasses

    from controller.config import ConfigError, load_config

    @dataclasses.dataclass(frozen=True)
    class C:
        eps: float = 1.0

    path = tmp_path / "c.yaml"
    path.write_text("eps: 1e-6\n")
    assert load_config(C, path).eps == 1e-6
    assert load_config(C, None, ["eps=2E3"]).eps == 2000.0
    with pytest.raises(ConfigError, match="eps: expected a number, found 'fast'"):
        load_config(C, None, ["eps=fast"])


def test_duplicate_keys_are_rejected_naming_file_key_and_lines(tmp_path):
    path = _write(tmp_path, "steps: 5\nloop:\n  rate_hz: 100\n  rate_hz: 200\n")
    with pytest.raises(ConfigError, match=r"cfg.yaml: line 4: duplicate key 'loop.rate_hz' \(first on line 3\)"):
        load_config(Outer, path)
    path = _write(tmp_path, "steps: 5\nname: a\nsteps: 6\n")
    with pytest.raises(ConfigError, match=r"cfg.yaml: line 3: duplicate key 'steps' \(first on line 1\)"):
        load_config(Outer, path)


def test_yaml_merge_keys_may_repeat_a_merged_key(tmp_path):
    path = _write(tmp_path, "base: &b {rate_hz: 100, mode: paced}\nloop:\n  <<: *b\n  rate_hz: 200\n")
    from controller.config import read_yaml
    assert read_yaml(path)["loop"] == {"rate_hz": 200, "mode": "paced"}


def test_duplicate_keys_in_an_override_value_are_rejected():
    with pytest.raises(ConfigError, match=r"--set 'loop=\{rate_hz: 1, rate_hz: 2\}': .*duplicate key 'rate_hz'"):
        load_config(Outer, None, ["loop={rate_hz: 1, rate_hz: 2}"])


def test_a_file_that_is_not_utf8_is_named(tmp_path):
    path = tmp_path / "latin.yaml"
    path.write_bytes(b"name: caf\xe9\n")
    with pytest.raises(ConfigError, match=r"latin.yaml: cannot read config: not UTF-8 text \(byte 0xe9 at "
                                          r"offset 9\)"):
        load_config(Outer, path)


def test_a_directory_is_not_a_config_file(tmp_path):
    with pytest.raises(ConfigError, match=r"cannot read config \(Is a directory\)"):
        load_config(Outer, tmp_path)


@pytest.mark.parametrize("text,expected", [("1e6", 1_000_000), ("1.0e+6", 1_000_000), ("300000", 300_000)])
def test_integer_budgets_may_be_written_in_exponent_form(text, expected):
    @dataclasses.dataclass(frozen=True)
    class Budget:
        steps: int = 1

    assert load_config(Budget, None, [f"steps={text}"]).steps == expected


@pytest.mark.parametrize("text", ["1.5", "1e-3", "inf", "nan", "true", "'abc'"])
def test_integer_fields_refuse_what_is_not_an_integer(text):
    @dataclasses.dataclass(frozen=True)
    class Budget:
        steps: int = 1

    with pytest.raises(ConfigError, match="steps: expected an integer"):
        load_config(Budget, None, [f"steps={text}"])


@pytest.mark.parametrize("raise_it, pattern", [
    (lambda: check(False, "agent.alpha", "a finite number > 0", -1.0),
     r"^agent\.alpha: expected a finite number > 0, found -1\.0$"),
    (lambda: __import__("controller.validation").validation.positive_int(0, "RTUCell.n_in"),
     r"^RTUCell\.n_in: expected a positive integer, found 0$"),
    (lambda: __import__("envs.errors").errors.check_int("n_cues", 1, 2, 8),
     r"^n_cues: expected an integer in \[2, 8\], found 1$"),
    (lambda: __import__("envs.errors").errors.check_float("gamma", 2.0, 0.0, 1.0, where="returns"),
     r"^returns\.gamma: expected a finite number in \[0\.0, 1\.0\], found 2\.0$"),
    (lambda: __import__("envs.errors").errors.check_choice("task", "x", ("a", "b")),
     r"^task: expected one of \['a', 'b'\], found 'x'$"),
    (lambda: __import__("envs.errors").errors.check_int_range("delay", (5, 2), 0, 9),
     r"^delay: expected a \(low, high\) pair with low <= high, found \(5, 2\)$"),
])
def test_one_error_vocabulary_and_one_exception_family(raise_it, pattern):
    """config.check, controller.validation and envs.errors all say '<where>: expected <what>, found
    <value>' and raise a ConfigError (a ValueError)."""
    with pytest.raises(ConfigError, match=pattern) as err:
        raise_it()
    assert isinstance(err.value, ValueError)


def test_env_errors_are_config_errors():
    from envs.errors import EnvConfigError, LayoutError, MaskOptionError, UnknownEnvError

    for cls in (EnvConfigError, LayoutError, MaskOptionError, UnknownEnvError):
        assert issubclass(cls, ConfigError) and issubclass(cls, ValueError)
