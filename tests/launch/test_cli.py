"""The `rtu-control` command line: help text (what each command does, packaged configs, examples that
pass validation)."""
import re
import shlex

import pytest

from launch.cli import build_parser, config_of, packaged_names

COMMANDS = ("train", "deploy", "emulator", "bench", "sweep", "plot", "warmup")


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
    assert config_of(args) is not None or args.command in ("plot", "warmup") or \
        (args.command == "sweep" and args.report is not None)


@pytest.mark.parametrize("command", COMMANDS)
def test_subcommand_help_says_what_it_does(command):
    text = _help_texts()[command]
    usage_end = text.index("\n\n")
    description = text[usage_end:].split("options:")[0].split("positional arguments:")[0]
    assert len(description.split()) >= 6, f"{command} --help has no description: {text}"


@pytest.mark.parametrize("command, prefix", [("train", "train"), ("deploy", "deploy"),
                                             ("emulator", "emulator"), ("bench", "bench"), ("sweep", "sweep")])
def test_subcommand_help_lists_the_packaged_configs(command, prefix):
    text = " ".join(_help_texts()[command].split())
    names = packaged_names(prefix)
    assert all(n in text for n in names), f"{command} --help misses one of {names}"
    assert f"{prefix}.yaml" in text or f"{prefix}_emulator.yaml" in text
    if command == "train":
        assert len(names) >= 6


# ----------------------------------------------------------------------------- bad input
def _sets(*items):
    return [a for item in items for a in ("--set", item)]


TINY = _sets("steps=10", "agent.n_units=8", "progress=none", "plots=false")
# settings that keep a run short should validation let a bad value through (they come first: the
# case's own settings win)
SHORT = {"train": TINY,
         "deploy": _sets("policy.kind=fixed", "loop.duration=0.1", "output="),
         "emulator": _sets("duration=0.1"),
         "bench": _sets("calls=100", "warmup_calls=1", "numpy_calls=100", "torch_calls=100", "sizes=[small]",
                        "dtypes=[float32]", "cells=[lru]", "torch_gru=false", "output=bench.json"),
         "bench agent": _sets("calls=100", "warmup_calls=1", "sizes=[small]", "dtypes=[float32]",
                              "cells=[none]", "output=bench.json"),
         "bench learning": _sets("steps=10", "seeds=[0]", "cells=[none]", "workers=1", "output=learning")}


def _short(argv):
    """argv with the SHORT settings of its command inserted after the command (not with --resume)."""
    n = 2 if argv[:2] in (["bench", "agent"], ["bench", "learning"]) else 1
    extra = SHORT.get(" ".join(argv[:n]), []) if "--resume" not in argv else []
    return argv[:n] + extra + argv[n:]


def _files(tmp_path):
    """Bad input files for the table below, by placeholder name."""
    (tmp_path / "latin1.yaml").write_bytes(b"env_id: caf\xe9\n")
    (tmp_path / "empty.yaml").write_text("# nothing here\n")
    (tmp_path / "a_folder").mkdir()
    (tmp_path / "a_file").write_text("x\n")
    (tmp_path / "bad.xml").write_text("<mujoco><worldbody>")
    return {name: str(tmp_path / name) for name in ("latin1.yaml", "empty.yaml", "a_folder", "a_file",
                                                    "bad.xml")}


BAD_INPUT = [  # argv (placeholders: names of _files), what the message must contain
    (["train", "--config", "latin1.yaml"], "latin1.yaml: cannot read config: not UTF-8 text"),
    (["train", "--config", "empty.yaml"], "empty.yaml: no settings"),
    (["train", "--config", "a_folder"], "a_folder: cannot read config (Is a directory)"),
    (["train", "--set", "seed=-1"], "seed: expected an integer >= 0, found -1"),
    (["train", "--set", "env_id=Foo-v0"], "env_id: expected a registered gymnasium id"),
    (["train", "--set", "env_id=FrozenLake-v1"], "env_id: expected an env with a 1-D Box observation"),
    (["train", "--set", "env_kwargs.foo=1"], "env_kwargs"),
    (["train", "--set", "output=a_file"], "output: expected a folder, found a file"),
    (["train", "--set", "latency_budget_us=.inf"], "latency_budget_us: expected a finite number > 0"),
    (["train", "--resume", "a_file"], "--resume"),
    (["deploy", "--set", "udp.env_id=Foo-v0"], "udp.env_id: expected a registered gymnasium id"),
    (["deploy", "--set", "udp.env_id=", "--set", "udp.mjcf=missing.xml"],
     "udp.mjcf: expected an MJCF file, found 'missing.xml' (no such file)"),
    (["deploy", "--set", "udp.host=no.such.host.invalid"], "udp.host: expected a host name or address"),
    (["deploy", "--set", "adapter=sim", "--set", "sim.env_id=", "--set", "sim.mjcf=a_folder"],
     "sim.mjcf: expected an MJCF file"),
    (["deploy", "--set", "adapter=sim", "--set", "sim.env_id=", "--set", "sim.mjcf=bad.xml"],
     "bad.xml"),
    (["deploy", "--set", "adapter=sim", "--set", "sim.seed=-1"], "sim.seed: expected an integer >= 0"),
    (["deploy", "--set", "policy.seed=-1"], "policy.seed: expected an integer >= 0"),
    (["deploy", "--set", "loop.seed=-1"], "loop.seed: expected an integer >= 0"),
    (["deploy", "--set", "loop.duration=.inf"], "loop.duration: expected a finite number of seconds >= 0"),
    (["deploy", "--set", "loop.learn_margin=.inf"], "loop.learn_margin: expected a finite number"),
    (["deploy", "--set", "policy.gain=.nan"], "policy.gain: expected a finite number"),
    (["deploy", "--set", "policy.act_cost=1"], "policy.act_cost: expected seconds"),
    (["deploy", "--set", "adapter=sim", "--set", "output=a_file"],
     "output: expected a folder, found a file"),
    (["deploy", "--set", "adapter=sim", "--set", "safety.safe_command=fixed"], "safety.safe_values"),
    (["deploy", "--set", "udp.bind_host=192.0.2.1"], "udp"),
    (["emulator", "--set", "env_id=Foo-v0"], "env_id: expected a registered gymnasium id"),
    (["emulator", "--set", "env_id=", "--set", "mjcf=missing.xml"], "mjcf: expected an MJCF file"),
    (["emulator", "--set", "env_id=", "--set", "mjcf=bad.xml"], "bad.xml"),
    (["emulator", "--set", "host=no.such.host.invalid"], "host: expected a host name or address"),
    (["emulator", "--set", "seed=-1"], "seed: expected an integer >= 0"),
    (["emulator", "--set", "stats_path=a_folder"], "stats_path: expected a file path, found a folder"),
    (["bench", "--set", "seed=-1"], "seed: expected an integer >= 0"),
    (["bench", "--set", "output=a_folder"], "output: expected a file path, found a folder"),
    (["bench", "agent", "--set", "seed=-1"], "seed: expected an integer >= 0"),
    (["bench", "learning", "--set", "env_ids=[Foo-v0]"], "env_ids[0]: expected a registered gymnasium id"),
    (["bench", "learning", "--set", "seeds=[-1]"], "seeds: expected integers >= 0"),
    (["bench", "learning", "--set", "env_ids=[FrozenLake-v1]"], "env_ids[0]: expected an env with a 1-D Box"),
    (["bench", "learning", "--set", "env_kwargs.foo=1"], "env_kwargs"),
    (["bench", "learning", "--set", "output=a_file"], "output: expected a folder, found a file"),
    (["plot", "a_folder"], "a_folder: not a training run folder"),
]


@pytest.mark.parametrize("argv, message", BAD_INPUT, ids=lambda v: " ".join(v) if isinstance(v, list) else "")
def test_bad_input_exits_2_naming_the_key_or_file_and_writes_nothing(argv, message, tmp_path, monkeypatch,
                                                                    capsys):
    from launch.cli import main

    files = _files(tmp_path)
    monkeypatch.chdir(tmp_path)
    argv = [files.get(a, a) for a in _short(argv)]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert message in err, err
    assert "Traceback" not in err
    # no results folder, no file (MuJoCo's own warning log, MUJOCO_LOG.TXT, aside)
    assert sorted(p.name for p in tmp_path.iterdir() if p.name != "MUJOCO_LOG.TXT") == sorted(files)


def test_train_failing_at_the_first_reset_leaves_no_results_folder(tmp_path, monkeypatch, capsys):
    from launch.cli import main

    pytest.importorskip("gymnasium")
    try:
        import pygame  # noqa: F401
        pytest.skip("pygame is installed: render_mode=human would open a window")
    except ImportError:
        pass
    monkeypatch.chdir(tmp_path)
    assert main(["train", "--config", "cartpole_p", "--set", "env_kwargs.render_mode=human", *TINY]) == 2
    err = capsys.readouterr().err
    assert "env_kwargs" in err and "render_mode" in err
    assert not (tmp_path / "results").exists()


def test_train_failing_to_write_its_first_checkpoint_removes_the_folder_it_made(tmp_path, monkeypatch, capsys):
    from launch import train
    from launch.cli import main

    def refuse(self):
        raise OSError(28, "No space left on device")

    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(train.Trainer, "checkpoint", refuse)
    assert main(["train", "--config", "cartpole_p", *TINY]) == 2
    assert "No space left on device" in capsys.readouterr().err
    assert not (tmp_path / "results").exists()


def test_emulator_on_a_port_in_use_exits_2_naming_it(capsys):
    import socket

    from launch.cli import main

    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as taken:
        taken.bind(("127.0.0.1", 0))
        port = taken.getsockname()[1]
        assert main(["emulator", "--set", f"port={port}", "--set", "duration=0.1"]) == 2
    err = capsys.readouterr().err
    assert f"127.0.0.1:{port}" in err and "Traceback" not in err


def test_plot_of_a_run_without_episodes_exits_2_naming_it(tmp_path, capsys):
    from launch.cli import main

    (tmp_path / "metrics.jsonl").write_text("")
    (tmp_path / "monitor.csv").write_text("")
    assert main(["plot", str(tmp_path)]) == 2
    assert f"{tmp_path}: no episodes" in capsys.readouterr().err


def test_plot_compare_into_a_folder_exits_2_naming_it(tmp_path, capsys):
    from launch.cli import main

    run = tmp_path / "run"
    run.mkdir()
    (run / "monitor.csv").write_text('#{"t_start": 0, "env_id": "x"}\nr,l,t\n1.0,10,0.1\n2.0,10,0.2\n')
    (tmp_path / "figures").mkdir()
    assert main(["plot", str(run), "--compare", str(tmp_path / "figures")]) == 2
    assert "--compare" in capsys.readouterr().err and not (tmp_path / "figures.png").exists()


def test_plot_with_a_bad_config_value_names_the_file_and_key(tmp_path, capsys):
    from launch.cli import main

    (tmp_path / "monitor.csv").write_text('#{"t_start": 0, "env_id": "x"}\nr,l,t\n1.0,10,0.1\n2.0,10,0.2\n')
    (tmp_path / "config.yaml").write_text("moving_average: abc\n")
    assert main(["plot", str(tmp_path)]) == 2
    assert f"{tmp_path / 'config.yaml'}: moving_average: expected an integer >= 1, found 'abc'" in \
        capsys.readouterr().err


def test_version_prints_the_installed_package_version(capsys):
    from importlib import metadata

    from launch.cli import main

    with pytest.raises(SystemExit) as stop:
        main(["--version"])
    assert stop.value.code == 0
    assert capsys.readouterr().out == f"rtu-control {metadata.version('rtu-control')}\n"
