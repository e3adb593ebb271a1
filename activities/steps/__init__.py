"""One module per kind of verification step; `activities.verification_steps` holds the
activities themselves."""
