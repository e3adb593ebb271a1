"""Shared pieces of ecs-canary: request/result models, configuration and logging."""
