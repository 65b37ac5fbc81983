"""hardware.emulator's command line: a bad config is a clean exit 2 naming the key."""
from hardware.emulator import main as emulator_main


def test_emulator_main_rejects_bad_config(capsys):
    assert emulator_main(["--set", "rate_hz=-3"]) == 2
    assert "rate_hz" in capsys.readouterr().err
