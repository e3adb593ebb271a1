"""Fast tests of the pure rules: no ECS emulator, no Temporal server."""
