"""``EpisodeState``: where the agent is in an episode's act -> learn -> credit cycle (``controller.agent``).

The agent's methods move it through named transitions; the flags are read directly. Checkpoints store
the flags by the names in ``CHECKPOINT_FLAGS`` (the agent attributes they were before this class).
"""

FLAGS = ("new_episode", "critic_ready", "pending_credit", "acted", "bad_current", "bad_previous",
         "skip_credit")
CHECKPOINT_FLAGS = {f"_{name}": name for name in FLAGS}   # checkpoint key -> flag


class EpisodeState:
    """Episode bookkeeping of one agent, all flags False except ``new_episode`` after ``restart``:

    * new_episode: the next act starts an episode (recurrent states and traces are zeroed then);
    * critic_ready: the critic has seen the observation of the last act (V and z_v include it);
    * pending_credit: the actor acted and its gradient for that action is not yet in z_π;
    * acted: act() ran since the last update() / learn();
    * bad_current: the observation of the last act was not finite (or the policy output was not);
    * bad_previous: the observation the pending update starts from was not finite;
    * skip_credit: skip() ran, so the next credit restarts the actor's traces instead.
    """

    __slots__ = FLAGS

    def __init__(self):
        self.restart()

    def restart(self):
        """An episode ends or is abandoned: the next act starts a new one."""
        self.new_episode = True
        self.critic_ready = False
        self.pending_credit = False
        self.acted = False
        self.bad_current = False
        self.bad_previous = False
        self.skip_credit = False

    def started(self):
        """The first act of the episode reset the networks."""
        self.new_episode = False

    def acted_on(self, bad):
        """act() chose an action; bad: its observation or the policy output was not finite."""
        self.acted = True
        self.pending_credit = True
        self.bad_current = bad

    def critic_caught_up(self):
        """The critic has seen the observation of the episode's first act."""
        self.critic_ready = True

    def take_credit(self):
        """The actor's gradient for the last action is being taken now; returns whether one was due."""
        due = self.pending_credit
        self.pending_credit = False
        return due

    def learning_from_act(self):
        """update() / learn() / skip() consumes the last act."""
        self.acted = False

    def credited(self):
        """credit() took the gradient: the observation of that act starts the next update."""
        self.bad_previous = self.bad_current

    def skipped(self):
        """skip() advanced the critic without learning: the next credit restarts the actor's traces."""
        self.skip_credit = True
        self.critic_ready = True

    def skip_done(self):
        """The credit after a skip() restarted the actor's traces instead of crediting."""
        self.skip_credit = False
        self.pending_credit = False

    def as_checkpoint(self):
        """{checkpoint key: flag} (``CHECKPOINT_FLAGS``)."""
        return {key: bool(getattr(self, name)) for key, name in CHECKPOINT_FLAGS.items()}

    def load_checkpoint(self, flags):
        """Set every flag from a checkpoint's {key: value} (keys of ``CHECKPOINT_FLAGS``)."""
        for key, name in CHECKPOINT_FLAGS.items():
            setattr(self, name, bool(flags[key]))
