"""`rtu-control deploy` forwards to launch.deploy.main with the packaged emulator config by default."""
from launch.cli import main


def test_deploy_bad_key_exits_2(capsys):
    assert main(["deploy", "--set", "bogus=1"]) == 2
    err = capsys.readouterr().err
    assert "deploy_emulator.yaml" in err and "bogus: unknown key" in err


def test_deploy_sim_adapter_short_run(tmp_path, capsys):
    out = tmp_path / "deploy"
    assert main(["deploy", "--set", "adapter=sim", "--set", "loop.duration=0.1",
                 "--set", f"output={out}"]) == 0
    assert "deploy:" in capsys.readouterr().out
    assert (out / "config.yaml").exists() and (out / "loop_stats.json").exists()


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
