"""`rtu-control deploy` and `emulator`: the packaged configs by default, each config built once and handed to
the module's run(config); the modules' own command lines parse the same arguments; exit statuses."""
import pytest

from launch.cli import main


def test_deploy_bad_key_exits_2(capsys):
    assert main(["deploy", "--set", "bogus=1"]) == 2
    err = capsys.readouterr().err
    assert "deploy_emulator.yaml" in err and "bogus: unknown key" in err


def test_deploy_sim_adapter_short_run(tmp_path, capsys):
    out = tmp_path / "deploy"
    assert main(["deploy", "--set", "adapter=sim", "--set", "loop.duration=0.1",
                 "--set", f"output={out}"]) == 0
    printed = capsys.readouterr().out
    (run,) = list(out.iterdir())     # the run's own timestamped folder
    assert run.name.startswith("HalfCheetah-P-") and f"results in {run}" in printed
    assert (run / "config.yaml").exists() and (run / "loop_stats.json").exists()


def test_emulator_subcommand_rejects_a_bad_rate(capsys):
    from launch.cli import main

    assert main(["emulator", "--set", "rate_hz=-1"]) == 2
    assert "rate_hz" in capsys.readouterr().err


def test_deploy_with_an_adapter_lacking_the_task_channels_is_a_clean_error(capsys):
    from launch.cli import main

    assert main(["deploy", "--set", "adapter=mock"]) == 2
    assert "expected channel 'time'" in capsys.readouterr().err


def _free_udp_port():
    import socket
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_deploy_without_a_robot_stops_after_the_startup_timeout(capsys):
    code = main(["deploy", "--set", "policy.kind=fixed", "--set", f"udp.port={_free_udp_port()}",
                 "--set", "loop.startup_timeout=0.5", "--set", "loop.duration=3", "--set", "output="])
    captured = capsys.readouterr()
    assert code == 1
    assert "no usable sample within loop.startup_timeout = 0.5 s" in captured.err
    assert "rtu-control emulator" in captured.err
    assert "stop: done" not in captured.out


def test_deploy_prints_progress_lines_with_the_unusable_reads(capsys):
    code = main(["deploy", "--set", "adapter=sim", "--set", "policy.kind=fixed", "--set", "loop.rate_hz=100",
                 "--set", "loop.duration=1.3", "--set", "progress_every=0.4", "--set", "output="])
    lines = [line for line in capsys.readouterr().out.splitlines() if line.startswith("deploy: t ")]
    assert code == 0 and len(lines) >= 2
    assert all("unusable reads 0" in line and "on time" in line and "episodes" in line for line in lines)


def test_deploy_says_whether_it_compiles_or_loads_the_agent_kernels(capsys):
    code = main(["deploy", "--set", "adapter=sim", "--set", "agent.n_units=4", "--set", "agent.encoder_width=4",
                 "--set", "agent.head_width=4", "--set", "loop.duration=0.2", "--set", "output="])
    out = capsys.readouterr().out
    assert code == 0
    assert "deploy: loading the agent's compiled kernels from numba's cache" in out \
        or "deploy: compiling the agent's kernels" in out
    assert "deploy: kernels ready in" in out


def _record_runs(monkeypatch, module):
    runs = []
    monkeypatch.setattr(module, "run", lambda config, **options: runs.append(config) or 0)
    return runs


def test_deploy_builds_its_config_once_and_runs_it(monkeypatch):
    from launch import deploy
    loads = []
    real_load = deploy.load_deploy_config
    monkeypatch.setattr(deploy, "load_deploy_config", lambda *a: loads.append(a) or real_load(*a))
    runs = _record_runs(monkeypatch, deploy)
    assert main(["deploy", "--set", "loop.rate_hz=200", "--set", "adapter=sim"]) == 0
    assert len(loads) == 1 and len(runs) == 1
    assert runs[0].loop.rate_hz == 200 and runs[0].adapter == "sim" and runs[0].policy.kind == "agent"


def test_emulator_subcommand_builds_its_config_once_and_runs_it(monkeypatch):
    from hardware import emulator
    runs = _record_runs(monkeypatch, emulator)
    assert main(["emulator", "--set", "rate_hz=250"]) == 0
    assert len(runs) == 1 and runs[0].rate_hz == 250 and runs[0].port == 47800


@pytest.mark.parametrize("module_name, override, field", [
    ("launch.deploy", "loop.rate_hz=300", lambda c: c.loop.rate_hz),
    ("hardware.emulator", "rate_hz=300", lambda c: c.rate_hz)])
def test_the_modules_own_command_lines_parse_the_same_arguments(monkeypatch, capsys, module_name, override,
                                                                field):
    import importlib
    module = importlib.import_module(module_name)
    runs = _record_runs(monkeypatch, module)
    assert module.main(["--set", override]) == 0 and field(runs[0]) == 300
    assert module.main(["--set", "bogus=1"]) == 2 and len(runs) == 1
    assert "bogus: unknown key" in capsys.readouterr().err
