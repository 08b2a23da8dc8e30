"""The Task Service: projects, tasks, deploys, runs, and their schedules."""
