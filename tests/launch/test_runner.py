"""launch.runner.Runner: the act -> env.step -> learn order, episode bookkeeping (return, length,
termination vs truncation, reset), the hooks' order and effects, stop, continuation across run calls
and the timing totals in the clock's unit."""
import numpy as np
import pytest

from launch.runner import Runner


class ScriptedEnv:
    """Episode lengths from a script; observation = [episode, step in episode]; reward = 0.5 * step in
    episode; the k-th episode ends by termination when k is even, by truncation when odd."""

    def __init__(self, lengths, calls):
        self.lengths, self.calls = list(lengths), calls
        self.episode, self.t = 0, 0

    def reset(self, seed=None):
        self.calls.append(("reset",))
        if self.t:                      # not the very first reset
            self.episode, self.t = self.episode + 1, 0
        return np.array([self.episode, 0.0]), {}

    def step(self, action):
        self.t += 1
        end = self.t == self.lengths[self.episode % len(self.lengths)]
        terminated, truncated = end and self.episode % 2 == 0, end and self.episode % 2 == 1
        self.calls.append(("step", action))
        return np.array([self.episode, self.t], float), 0.5 * self.t, terminated, truncated, {}


class RecordingAgent:
    def __init__(self, calls):
        self.calls = calls

    def act(self, obs):
        self.calls.append(("act", tuple(obs)))
        return len(self.calls)

    def learn(self, reward, obs, terminated, truncated):
        self.calls.append(("learn", reward, tuple(obs), terminated, truncated))


def make(lengths=(3, 2)):
    calls = []
    env = ScriptedEnv(lengths, calls)
    runner = Runner(RecordingAgent(calls), env, env.reset()[0])
    calls.clear()
    return runner, calls


def test_one_tick_is_act_then_step_then_learn_with_the_next_observation():
    runner, calls = make()
    runner.run(2)
    assert [c[0] for c in calls] == ["act", "step", "learn", "act", "step", "learn"]
    assert calls[0] == ("act", (0.0, 0.0)) and calls[1] == ("step", 1)      # the action act returned
    assert calls[2] == ("learn", 0.5, (0.0, 1.0), False, False)
    assert calls[3] == ("act", (0.0, 1.0))                                    # learn's obs is the next act's
    assert runner.step == 2 and runner.ep_length == 2 and runner.ep_return == 1.5
    assert np.array_equal(runner.obs, [0.0, 2.0])


def test_episode_ends_count_return_length_and_termination_then_reset():
    runner, calls = make(lengths=(3, 2))
    ended = []
    runner.run(9, on_episode=lambda ret, length, terminated: ended.append(
        (runner.step, runner.episodes, ret, length, terminated)))
    # episodes: 3 ticks (terminated), 2 (truncated), 3 (terminated); then one tick of the fourth
    assert ended == [(3, 1, 3.0, 3, True), (5, 2, 1.5, 2, False), (8, 3, 3.0, 3, True)]
    assert calls.count(("reset",)) == 3
    assert runner.episodes == 3 and runner.ep_length == 1 and runner.ep_return == 0.5
    resets = [i for i, c in enumerate(calls) if c == ("reset",)]
    assert all(calls[i - 1][0] == "learn" and calls[i + 1][0] == "act" for i in resets)


def test_hooks_run_in_order_with_the_state_up_to_date():
    runner, _ = make(lengths=(2,))
    order = []
    runner.run(2, on_tick=lambda a, e, l: order.append(("tick", runner.step, runner.ep_length)),
               on_episode=lambda r, n, t: order.append(("episode", runner.step, n)),
               after_tick=lambda: order.append(("after", runner.step, runner.ep_length)))
    assert order == [("tick", 1, 1), ("after", 1, 1),
                     ("tick", 2, 2), ("episode", 2, 2), ("after", 2, 0)]   # after: the env was reset


def test_on_tick_returning_true_ends_the_tick_after_its_restart():
    runner, calls = make(lengths=(2,))
    after = []

    def restart_on_the_second_tick(act_time, env_time, learn_time):
        if runner.step == 2:            # the tick that ends the episode: restarted instead
            runner.restart_episode()
            return True
        return False

    runner.run(2, on_tick=restart_on_the_second_tick, on_episode=lambda *a: pytest.fail("no episode end"),
               after_tick=lambda: after.append(runner.step))
    assert after == [1] and runner.episodes == 0 and runner.ep_length == 0 and runner.ep_return == 0.0
    assert calls[-1] == ("reset",)


def test_a_restart_from_after_tick_reaches_the_next_act():
    runner, calls = make(lengths=(5,))
    runner.run(3, after_tick=lambda: runner.restart_episode() if runner.step == 2 else None)
    assert calls[-3] == ("act", (1.0, 0.0))      # the reset's observation (episode 1, step 0)
    assert runner.ep_length == 1


def test_stop_ends_the_run_after_the_current_tick_and_run_continues():
    runner, calls = make(lengths=(50,))
    runner.run(10, after_tick=lambda: runner.stop() if runner.step == 4 else None)
    assert runner.step == 4 and sum(c[0] == "act" for c in calls) == 4
    runner.run(10)
    assert runner.step == 4                      # stopped stays stopped
    runner.stopping = False
    runner.run(10)
    assert runner.step == 10 and sum(c[0] == "act" for c in calls) == 10


def test_two_runs_equal_one_run():
    one, calls_one = make()
    one.run(11)
    two, calls_two = make()
    two.run(4)
    two.run(11)
    assert calls_one == calls_two
    assert (one.step, one.episodes, one.ep_return, one.ep_length) == \
        (two.step, two.episodes, two.ep_return, two.ep_length)


@pytest.mark.parametrize("unit", [int, float])
def test_timing_totals_and_hook_durations_are_in_the_clock_unit(unit):
    ticks = iter(range(0, 10_000, 1))
    clock = lambda: unit(next(ticks) ** 2)  # noqa: E731  (differences grow: each interval is distinct)
    calls = []
    env = ScriptedEnv((100,), calls)
    runner = Runner(RecordingAgent(calls), env, env.reset()[0], clock=clock)
    assert runner.act_time == 0 and type(runner.act_time) is unit
    seen = []
    runner.run(3, on_tick=lambda a, e, l: seen.append((a, e, l)))
    # tick k reads the clock at 4k+1 .. 4k+4 (one read went to the zero); intervals of squares
    expected = [tuple(unit((4 * k + j + 1) ** 2 - (4 * k + j) ** 2) for j in (1, 2, 3)) for k in range(3)]
    assert seen == expected and all(type(v) is unit for tick in seen for v in tick)
    assert (runner.act_time, runner.env_time, runner.learn_time) == tuple(
        sum(t[i] for t in expected) for i in range(3))
