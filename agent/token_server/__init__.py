"""``edge-agent token-server``: ephemeral Live API tokens for devices, minted on the owner's
machine.

The Gemini API key never leaves this server. A device authenticates with its own secret
(HTTP Basic, ``device-id:secret``), gets one token per connection, locked to the configured
model and setup, good for one session, and startable only for a minute. Runs behind the
owner's HTTPS reverse proxy, or serves TLS itself. Needs ``pip install
'edge-agent[token-server]'`` (google-genai, whose ``auth_tokens.create`` mints the tokens).
"""
