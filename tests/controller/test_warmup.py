"""`rtu-control warmup` compiles every agent configuration; each exercise leaves a usable agent."""
from controller.warmup import warm_up_agents
from launch.cli import main


def test_warm_up_agents_covers_each_cell_dtype_and_action_kind():
    count, seconds = warm_up_agents(dtypes=("float32",), cells=("rtu-linear", "none"))
    assert count == 4 and seconds >= 0


def test_warmup_command(capsys):
    assert main(["warmup"]) == 0
    out = capsys.readouterr().out
    assert "cell configurations" in out and "16 agent configurations" in out
