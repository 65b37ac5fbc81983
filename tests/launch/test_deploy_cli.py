"""`rtu-control deploy` forwards to hardware.deploy.main with the packaged emulator config by default."""
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
