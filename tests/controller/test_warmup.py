"""`rtu-control warmup` compiles every agent configuration; each exercise leaves a usable agent."""
from controller.warmup import warm_up_agents
from launch.cli import main


def test_warm_up_agents_covers_each_cell_dtype_and_action_kind():
    count, seconds = warm_up_agents(dtypes=("float32",), cells=("rtu-linear", "none"))
    assert count == 6 and seconds >= 0   # 2 cells x 2 action kinds, and the critic-thread agent x 2


def test_warmup_command(capsys):
    assert main(["warmup"]) == 0
    out = capsys.readouterr().out
    assert "cell configurations" in out and "20 agent configurations" in out
