#!/bin/sh
# Registers the Keyword search attributes ecs-canary's workflows upsert, so deployments can
# be listed by cluster, service, stage and outcome. Idempotent: safe on every `compose up`.
set -eu

: "${TEMPORAL_ADDRESS:=temporal:7233}"
: "${TEMPORAL_NAMESPACE:=default}"
: "${SEARCH_ATTRIBUTES:=EcsCluster EcsService DeploymentStage DeploymentOutcome}"
: "${WAIT_SECONDS:=180}"

# auto-setup creates the namespace only after the server reports SERVING, so wait for it.
waited=0
until temporal operator namespace describe --address "$TEMPORAL_ADDRESS" \
    --namespace "$TEMPORAL_NAMESPACE" >/dev/null 2>&1; do
    if [ "$waited" -ge "$WAIT_SECONDS" ]; then
        echo "namespace $TEMPORAL_NAMESPACE not ready at $TEMPORAL_ADDRESS after ${WAIT_SECONDS}s" >&2
        exit 1
    fi
    sleep 2
    waited=$((waited + 2))
done

for name in $SEARCH_ATTRIBUTES; do
    if out=$(temporal operator search-attribute create --address "$TEMPORAL_ADDRESS" \
        --namespace "$TEMPORAL_NAMESPACE" --name "$name" --type Keyword 2>&1); then
        echo "registered search attribute $name (Keyword)"
    # A re-run fails with "already exists" (wording varies by server version, so also accept
    # the name being listed); anything else, e.g. no free Keyword slot, is a real failure.
    elif echo "$out" | grep -qi "already exists" \
        || temporal operator search-attribute list --address "$TEMPORAL_ADDRESS" \
            --namespace "$TEMPORAL_NAMESPACE" 2>/dev/null | grep -qw "$name"; then
        echo "search attribute $name already registered"
    else
        echo "$out" >&2
        exit 1
    fi
done
