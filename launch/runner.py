"""The act -> env.step -> learn loop of `rtu-control train`, `bench learning` and `bench agent`: ``Runner``.

One tick, in gymnasium's order (``controller.agent``'s act/learn contract)::

    action = agent.act(obs)                                        # timed: act_time
    obs, reward, terminated, truncated, _ = env.step(action)       # timed: env_time
    agent.learn(reward, obs, terminated, truncated)                # timed: learn_time

then the episode's bookkeeping (return, length; at its end the env is reset). What differs between the
commands goes in hooks: ``train`` records latency histograms, guards against divergence, logs episodes,
writes metrics and checkpoints and paces; ``bench learning`` writes one curve line per episode;
``bench agent`` stores each tick's times and pauses, untimed, between ticks.

Lives in ``launch/`` because it drives gymnasium envs (``controller/`` does not depend on envs).
"""
import time


class Runner:
    """Drives ``agent`` (act / learn) on ``env`` (step / reset, gymnasium's API), one tick at a time.

    State, read by the hooks (and set directly when a run resumes):

    * ``obs``: what the next ``act`` gets, as ``env.step`` / ``env.reset`` returned it;
    * ``step`` (int): ticks done; ``episodes`` (int): episodes ended;
    * ``ep_return`` (float, the sum of ``float(reward)``) and ``ep_length`` (int): the current episode's;
    * ``act_time``, ``env_time``, ``learn_time``: time spent in act, env.step and learn over every
      ``run``, in the unit of ``clock``: int nanoseconds for ``time.perf_counter_ns`` (the default),
      float seconds for ``time.perf_counter``.

    A tick allocates nothing beyond what the agent, the env, the hooks and ``clock`` do.
    """

    def __init__(self, agent, env, obs=None, clock=time.perf_counter_ns):
        self.agent, self.env, self.obs, self.clock = agent, env, obs, clock
        self.step = self.episodes = 0
        self.ep_return, self.ep_length = 0.0, 0
        self.act_time = self.env_time = self.learn_time = type(clock())()   # 0 or 0.0
        self.stopping = False

    def restart_episode(self):
        """Reset the env (``obs`` = its first observation) and zero the episode's return and length;
        the agent is not touched. Hooks call it (e.g. after a rollback)."""
        self.obs, _ = self.env.reset()
        self.ep_return, self.ep_length = 0.0, 0

    def stop(self):
        """Make ``run`` return after the current tick, and later runs at once until ``stopping`` is
        set back to False (safe from a signal handler)."""
        self.stopping = True

    def run(self, until, on_tick=None, on_episode=None, after_tick=None):
        """Tick until ``step == until`` or ``stop()``. Hooks (each optional), called with the state
        above up to date; any of them may call ``restart_episode``:

        * ``on_tick(act_time, env_time, learn_time)`` after every learn, with that tick's durations in
          ``clock``'s unit; returning True says it restarted the episode, which ends the tick there;
        * ``on_episode(ep_return, ep_length, terminated)`` when an episode ends (``step`` and
          ``episodes`` count it), before the env reset;
        * ``after_tick()`` last in every tick, after an episode's end and reset (before the next act).
        """
        act, learn, env_step, reset = self.agent.act, self.agent.learn, self.env.step, self.env.reset
        clock = self.clock
        act_time, env_time, learn_time = self.act_time, self.env_time, self.learn_time
        # the state lives in locals here; it is written back before each hook and read after it
        obs, step, ep_return, ep_length = self.obs, self.step, self.ep_return, self.ep_length
        try:
            for step in range(step + 1, until + 1):
                if self.stopping:
                    step -= 1
                    break
                t0 = clock()
                action = act(obs)
                t1 = clock()
                obs, reward, terminated, truncated, _ = env_step(action)
                t2 = clock()
                learn(reward, obs, terminated, truncated)
                t3 = clock()
                act_time += t1 - t0
                env_time += t2 - t1
                learn_time += t3 - t2
                ep_return += float(reward)
                ep_length += 1
                if on_tick is not None:
                    self.obs, self.step, self.ep_return, self.ep_length = obs, step, ep_return, ep_length
                    restarted = on_tick(t1 - t0, t2 - t1, t3 - t2)
                    obs, ep_return, ep_length = self.obs, self.ep_return, self.ep_length
                    if restarted:
                        continue
                if terminated or truncated:
                    self.episodes += 1
                    if on_episode is not None:
                        self.obs, self.step, self.ep_return, self.ep_length = obs, step, ep_return, ep_length
                        on_episode(ep_return, ep_length, terminated)
                    obs, _ = reset()
                    ep_return, ep_length = 0.0, 0
                if after_tick is not None:
                    self.obs, self.step, self.ep_return, self.ep_length = obs, step, ep_return, ep_length
                    after_tick()
                    obs, ep_return, ep_length = self.obs, self.ep_return, self.ep_length
        finally:
            self.obs, self.step, self.ep_return, self.ep_length = obs, step, ep_return, ep_length
            self.act_time, self.env_time, self.learn_time = act_time, env_time, learn_time
