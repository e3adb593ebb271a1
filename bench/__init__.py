"""`make bench`: measures ecs-canary against a plain boto3 script on the ECS emulator and writes
BENCHMARKS.md. Never part of `make test`."""
