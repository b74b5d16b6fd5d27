"""Where the configuration becomes objects: the one builder, for start and reload alike.

`Builder` turns an `AgentConfig` into `Parts` (GPIO registry, speaker, microphone, camera,
in-process emulator, Live session), undoing what it started when a part fails; the daemon only
runs what it built. ``agent.build.live`` and ``agent.build.devices`` hold the translations of
the config's sections into the Live client's and the devices' own types.
"""

from agent.build.parts import Builder, ConversationPlan, Parts, PushToTalk, ReloadFailed

__all__ = ["Builder", "ConversationPlan", "Parts", "PushToTalk", "ReloadFailed"]
