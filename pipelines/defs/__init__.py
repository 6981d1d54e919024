"""One package per domain (dagster-open-platform's `defs/<domain>/`): each holds its assets, the checks of
those assets, its jobs, schedules and sensors, and exposes one `defs` that `pipelines/definitions.py` merges."""
