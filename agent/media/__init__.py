"""The device side of the agent: microphones, speakers and cameras, and the signal processing
between them and the Live API.

:mod:`agent.media.audio` captures 16 kHz speech and plays the model's 24 kHz replies;
:mod:`agent.media.camera` turns a camera into one JPEG a second. Every device has a simulated
stand-in that ships with the package. Nothing here touches the network, the config or the
tools: the layers above meet these classes through interfaces of their own.
"""
