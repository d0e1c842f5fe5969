"""The clerks' console: a static page at /atendimento/ that signs in with OIDC (authorization
code + PKCE, a public client) and works the level-2 queues through the agent API."""
