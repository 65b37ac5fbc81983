"""The `rtu-control` command line: help text (what each command does, packaged configs, examples that
pass validation)."""
import re
import shlex

import pytest

from launch.cli import build_parser, config_of, packaged_names

COMMANDS = ("train", "deploy", "emulator", "bench", "plot", "warmup")


def _subparsers():
    parser = build_parser()
    action = next(a for a in parser._actions if a.dest == "command")
    return parser, action.choices


def _help_texts():
    parser, subs = _subparsers()
    return {"": parser.format_help(), **{name: sub.format_help() for name, sub in subs.items()}}


def _examples():
    """Every command line shown in a help text: the lines of its 'examples:' section, and each
    '--set key=value' example of an option's help, tried on the command it belongs to."""
    found = []
    for name, text in _help_texts().items():
        lines = text.splitlines()
        if "examples:" in lines:
            for line in lines[lines.index("examples:") + 1:]:
                if not line.strip():
                    break
                found.append(shlex.split(line, comments=True)[1:])
        options = " ".join(lines[:lines.index("examples:")] if "examples:" in lines else lines)
        for item in re.findall(r"--set ([a-z_][\w.]*=[^\s,;)]+)", " ".join(options.split())):
            found.append([name, "--set", item])
    return found


def test_help_shows_examples():
    examples = _examples()
    assert {e[0] for e in examples} >= {"train", "deploy", "emulator", "bench"}


@pytest.mark.parametrize("argv", _examples(), ids=" ".join)
def test_every_help_example_passes_validation(argv):
    args = build_parser().parse_args(argv)
    assert config_of(args) is not None or args.command in ("plot", "warmup")


@pytest.mark.parametrize("command", COMMANDS)
def test_subcommand_help_says_what_it_does(command):
    text = _help_texts()[command]
    usage_end = text.index("\n\n")
    description = text[usage_end:].split("options:")[0].split("positional arguments:")[0]
    assert len(description.split()) >= 6, f"{command} --help has no description: {text}"


@pytest.mark.parametrize("command, prefix", [("train", "train"), ("deploy", "deploy"),
                                             ("emulator", "emulator"), ("bench", "bench")])
def test_subcommand_help_lists_the_packaged_configs(command, prefix):
    text = " ".join(_help_texts()[command].split())
    names = packaged_names(prefix)
    assert all(n in text for n in names), f"{command} --help misses one of {names}"
    assert f"{prefix}.yaml" in text or f"{prefix}_emulator.yaml" in text
    if command == "train":
        assert len(names) >= 6
