"""job-svc: decides the life of training jobs, schedules them on trainers and serves the read models."""
